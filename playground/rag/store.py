"""Knowledge stores: one Chroma collection per store, documents ingested atomically.

A store remembers its chunk settings and the embedding model that built it (collection
metadata), so a query always embeds with the same model and an ingest with another is refused.
Chroma is imported lazily: pages and commands that never touch a store do not pay for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pydantic import ValidationError

from playground.config import Settings
from playground.errors import ConfigError, IngestError, StoreNotFoundError
from playground.files import read_bounded
from playground.rag.chunking import Chunk, ChunkSettings, chunk_document, text_hash
from playground.rag.embeddings import (
    DEFAULT_MODEL,
    Embedder,
    canonical_name,
    get_embedder,
    is_loaded,
    preload_embedder,
)
from playground.rag.loaders import DEFAULT_MAX_BYTES, load_document
from playground.records import RetrievedChunk

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

STORE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$")
_MARKER = "playground_store"
MAX_FILE_ENV = "PLAYGROUND_MAX_FILE_MB"
_PAGE = 1000  # rows per Chroma get/add call; below every server's max batch size
# Chunks per model call. The model sorts a call's texts by length, so a bigger group pads
# less: 400 chunks took 11.1-11.5 s as 256 + 144 and 10.1-10.8 s in one call (raw encode
# 9.5-10.1 s). The progress bar moves between groups, and one group is one Chroma upsert.
ENCODE_GROUP = 512
WRITE_BATCH = 512  # chunks per Chroma upsert, across documents

ProgressCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class StoreInfo:
    """A store as listed: its settings and size."""

    name: str
    embedding_model: str
    chunk_size: int
    chunk_overlap: int
    chunks: int
    created_at: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain dict for --json."""
        return {
            "name": self.name,
            "embedding_model": self.embedding_model,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "chunks": self.chunks,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class DocumentInfo:
    """One document of a store and how many chunks it became."""

    source: str
    chunks: int
    pages: int
    doc_hash: str
    ingested_at: str


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as read back from a store, with its similarity when it answers a query."""

    id: str
    text: str
    source: str
    position: int
    page: int | None
    content_hash: str
    score: float | None = None

    def to_retrieved(self) -> RetrievedChunk:
        """The chunk as a run keeps it: id, text, source, page, score."""
        return RetrievedChunk(self.id, self.text, self.source, self.page, self.score)


@dataclass
class _Pending:
    """A loaded, chunked document waiting to be embedded and written."""

    source: str
    chunks: list[Chunk]
    doc_hash: str
    old_ids: list[str]
    warnings: list[str]
    unchanged: bool
    index: int = 0


@dataclass(frozen=True)
class UploadedFile:
    """A file to ingest: the name it is known by in the store and its bytes (or its path)."""

    name: str
    data: bytes
    size: int | None = None  # set when data was not read because the file is too big
    path: Path | None = None  # read during the ingest, while the model loads

    @classmethod
    def from_path(cls, name: str, path: Path, max_bytes: int | None = None) -> UploadedFile:
        """A file on disk, read when the ingest reaches it."""
        return cls(name, b"", path.stat().st_size, path)

    def read(self, max_bytes: int) -> bytes:
        """The file's bytes; nothing is read from a file over max_bytes (its size says why)."""
        if self.path is None or (self.size is not None and self.size > max_bytes):
            return self.data
        try:
            data = read_bounded(self.path, max_bytes)
        except OSError as exc:
            raise IngestError(
                f"{self.name} could not be read ({exc.strerror or type(exc).__name__}); "
                "check that it exists and is readable."
            ) from None
        if len(data) > max_bytes:  # a device or pipe reports size 0: its bytes tell the truth
            raise IngestError(
                f"{self.name} holds more than the {max_bytes / 1024 / 1024:g} MB limit; split it "
                "into smaller files or raise the limit."
            )
        return data


@dataclass
class FileReport:
    """What happened to one file of an ingest: added, replaced, unchanged or failed."""

    source: str
    status: str
    chunks: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True unless the file failed."""
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """Plain dict for --json."""
        return {
            "source": self.source,
            "status": self.status,
            "chunks": self.chunks,
            "warnings": self.warnings,
            "error": self.error,
        }


def validate_store_name(name: str) -> str:
    """Return the name if it is a valid store name, else raise IngestError saying the rule."""
    if not STORE_NAME.match(name or ""):
        raise IngestError(
            f"Store name '{name}' is invalid; use 3-63 lowercase letters, digits, '-' or '_', "
            "starting and ending with a letter or digit."
        )
    return name


_clients: dict[str, ClientAPI] = {}
_clients_lock = threading.Lock()


def open_client(settings: Settings) -> ClientAPI:
    """The process-wide Chroma client: HttpClient for [vector_store] url, else on-disk."""
    url = settings.vector_store.url
    key = url or str(Path(settings.home, "chroma").resolve())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _connect(url, Path(key))
            _clients[key] = client
    return client


def _connect(url: str | None, path: Path) -> ClientAPI:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if not url:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(
            f"[vector_store] url '{url}' is not an http(s) URL; fix it in playground.toml."
        )
    ssl = parsed.scheme == "https"
    try:
        client = chromadb.HttpClient(
            host=parsed.hostname,
            port=parsed.port or (443 if ssl else 80),
            ssl=ssl,
            settings=chroma_settings,
        )
        client.heartbeat()
    except Exception as exc:
        raise ConfigError(
            f"Cannot reach the Chroma server at {url} ({type(exc).__name__}); start it with "
            "`chroma run` or fix [vector_store] url in playground.toml."
        ) from None
    return client


def max_file_bytes_from_env(settings: Settings | None = None) -> int:
    """The upload size limit: $PLAYGROUND_MAX_FILE_MB, else [knowledge] max_file_mb, else 20 MB."""
    raw = os.environ.get(MAX_FILE_ENV, "").strip()
    if not raw:
        if settings is not None:
            return int(settings.knowledge.max_file_mb * 1024 * 1024)
        return DEFAULT_MAX_BYTES
    try:
        megabytes = float(raw)
        if megabytes <= 0:
            raise ValueError(raw)
    except ValueError:
        raise ConfigError(
            f"{MAX_FILE_ENV}='{raw}' is not a positive number of megabytes; fix or unset it."
        ) from None
    return int(megabytes * 1024 * 1024)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _source_key(source: str) -> str:
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:12]


class KnowledgeBase:
    """Every knowledge store of one installation (embedded Chroma or a Chroma server)."""

    def __init__(self, settings: Settings, max_file_bytes: int | None = None) -> None:
        self.settings = settings
        self._max_file_bytes = max_file_bytes

    @property
    def max_file_bytes(self) -> int:
        """The per-file limit: as given, else read now (a page's cached base sees changes)."""
        return self._max_file_bytes or max_file_bytes_from_env(self.settings)

    @property
    def client(self) -> ClientAPI:
        """The Chroma client (connected on first use)."""
        return open_client(self.settings)

    # -- stores -------------------------------------------------------------------------

    def _collection(self, name: str) -> Collection:
        validate_store_name(name)
        from chromadb.errors import NotFoundError

        try:
            # No embedding function: we always pass vectors, and Chroma's default one would
            # try to download a model the first time it was asked to embed.
            collection = self.client.get_collection(name, embedding_function=None)
        except (NotFoundError, ValueError):
            raise StoreNotFoundError(
                f"Knowledge store '{name}' does not exist; create it with "
                f"`playground rag ingest --store {name} FILE...` or on the Knowledge page."
            ) from None
        return collection

    def _info(self, collection: Collection) -> StoreInfo:
        meta = collection.metadata or {}
        return StoreInfo(
            name=collection.name,
            embedding_model=str(meta.get("embedding_model", "unknown")),
            chunk_size=int(meta.get("chunk_size", 0)),
            chunk_overlap=int(meta.get("chunk_overlap", 0)),
            chunks=collection.count(),
            created_at=str(meta.get("created_at", "")),
        )

    def list_stores(self) -> list[StoreInfo]:
        """Every store built by Prompt Playground, by name."""
        stores = []
        for collection in self.client.list_collections():
            if (collection.metadata or {}).get(_MARKER):
                stores.append(self._info(collection))
        return sorted(stores, key=lambda s: s.name)

    def store_names(self) -> list[str]:
        """Names of every store, sorted."""
        return [
            c.name
            for c in sorted(self.client.list_collections(), key=lambda c: c.name)
            if (c.metadata or {}).get(_MARKER)
        ]

    def get_store(self, name: str) -> StoreInfo:
        """A store's settings and size; StoreNotFoundError if missing."""
        return self._info(self._collection(name))

    def create_store(
        self,
        name: str,
        chunking: ChunkSettings | None = None,
        embedding_model: str | None = None,
    ) -> StoreInfo:
        """Create a store, or return the existing one if it uses the same embedding model."""
        validate_store_name(name)
        model = canonical_name(embedding_model)
        if name in self.store_names():
            info = self.get_store(name)
            self._check_model(info, embedding_model)
            return info
        chunking = chunking or ChunkSettings()
        # Load the model now: a store must never record a model that cannot embed.
        dimension = get_embedder(model).dimension
        collection = self.client.create_collection(
            name,
            metadata={
                _MARKER: 1,
                "embedding_model": model,
                "embedding_dim": dimension,
                "chunk_size": chunking.chunk_size,
                "chunk_overlap": chunking.chunk_overlap,
                "created_at": _now(),
            },
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )
        return self._info(collection)

    @staticmethod
    def _check_model(info: StoreInfo, embedding_model: str | None) -> None:
        if embedding_model and canonical_name(embedding_model) != info.embedding_model:
            raise IngestError(
                f"Store '{info.name}' was built with embedding model '{info.embedding_model}', "
                f"not '{canonical_name(embedding_model)}'; use that model or a new store."
            )

    def delete_store(self, name: str) -> None:
        """Delete a store and all its chunks; StoreNotFoundError if missing."""
        self._collection(name)
        self.client.delete_collection(name)

    # -- documents ----------------------------------------------------------------------

    def _all_metadata(self, collection: Collection, where: dict[str, Any] | None = None) -> Any:
        ids: list[str] = []
        metas: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = collection.get(where=where, include=["metadatas"], limit=_PAGE, offset=offset)
            ids.extend(page["ids"])
            metas.extend(dict(m or {}) for m in page["metadatas"] or [])
            if len(page["ids"]) < _PAGE:
                return ids, metas
            offset += _PAGE

    def documents(self, name: str) -> list[DocumentInfo]:
        """The documents of a store with their chunk counts, by source name."""
        _, metas = self._all_metadata(self._collection(name))
        grouped: dict[str, list[dict[str, Any]]] = {}
        for meta in metas:
            grouped.setdefault(str(meta.get("source", "?")), []).append(meta)
        return [
            DocumentInfo(
                source=source,
                chunks=len(rows),
                pages=len({m["page"] for m in rows if "page" in m}),
                doc_hash=str(rows[0].get("doc_hash", "")),
                ingested_at=str(rows[0].get("ingested_at", "")),
            )
            for source, rows in sorted(grouped.items())
        ]

    def chunks(self, name: str, source: str | None = None) -> list[StoredChunk]:
        """The chunks of a store (or of one document), in document and reading order."""
        collection = self._collection(name)
        where = {"source": source} if source else None
        rows: list[StoredChunk] = []
        offset = 0
        while True:
            page = collection.get(
                where=where, include=["documents", "metadatas"], limit=_PAGE, offset=offset
            )
            for chunk_id, text, meta in zip(
                page["ids"], page["documents"] or [], page["metadatas"] or [], strict=True
            ):
                rows.append(_stored(chunk_id, text, meta))
            if len(page["ids"]) < _PAGE:
                break
            offset += _PAGE
        return sorted(rows, key=lambda c: (c.source, c.position))

    def delete_document(self, name: str, source: str) -> int:
        """Delete one document's chunks; returns how many went (0 if it was not there)."""
        collection = self._collection(name)
        ids, _ = self._all_metadata(collection, {"source": source})
        for start in range(0, len(ids), _PAGE):
            collection.delete(ids=ids[start : start + _PAGE])
        return len(ids)

    def ingest(
        self,
        name: str,
        files: Sequence[UploadedFile],
        progress: ProgressCallback | None = None,
        chunking: ChunkSettings | None = None,
        embedding_model: str | None = None,
    ) -> list[FileReport]:
        """Add files to a store (created if missing); one report per file, failures included.

        Each document lands whole or not at all: its new chunks are written, then its old
        ones removed; a failed write removes what it wrote and keeps the old version.
        The work overlaps: the model loads while files are read and chunked, chunks are
        embedded on a worker thread while later files are read, and writes go to Chroma in
        batches that span documents.
        """
        validate_store_name(name)
        model = canonical_name(embedding_model)
        # torch's import and the model's load take seconds: start them before anything else.
        preload = preload_embedder(model) if files else None
        try:
            return self._ingest(name, files, progress, chunking, embedding_model, model)
        finally:
            if preload is not None:
                preload.join()  # never leave a thread importing torch behind at exit

    def _ingest(
        self,
        name: str,
        files: Sequence[UploadedFile],
        progress: ProgressCallback | None,
        chunking: ChunkSettings | None,
        embedding_model: str | None,
        model: str,
    ) -> list[FileReport]:
        collection = self._collection(name) if name in self.store_names() else None
        if collection is not None:
            info = self._info(collection)
            self._check_model(info, embedding_model)
            model = info.embedding_model
            chunking = ChunkSettings(chunk_size=info.chunk_size, chunk_overlap=info.chunk_overlap)
        chunking = chunking or ChunkSettings()

        reached = [0.0]  # a progress bar must never step back, even by a rounding error

        def report(fraction: float, message: str) -> None:
            reached[0] = min(max(fraction, reached[0]), 1.0)
            if progress is not None:
                progress(reached[0], message)

        stored = self._stored_versions(collection, {f.name for f in files})
        reports: dict[int, FileReport] = {}
        seen: dict[str, str] = {}  # name -> content hash, for names given twice
        encoder = _EncodeWorker(model)
        writer = _Writer(self, name, collection, model, chunking, reports)
        try:
            for index, upload in enumerate(files):
                report(0.1 * index / len(files), f"Reading {upload.name}")
                try:
                    item = self._prepare(upload, chunking, stored.get(upload.name), seen)
                except IngestError as exc:
                    reports[index] = FileReport(upload.name, "failed", error=str(exc))
                    continue
                item.index = index
                if item.unchanged:
                    reports[index] = FileReport(
                        upload.name, "unchanged", len(item.chunks), item.warnings
                    )
                    continue
                encoder.submit(item)
                writer.take(encoder.ready())
            encoder.finish()
            total = encoder.submitted
            while encoder.pending:
                # Wake now and then: a model that loads or a group that embeds for a minute
                # on a busy box still shows the command is alive.
                writer.take(encoder.ready(wait=True, timeout=_TICK_S))
                report(0.1 + 0.85 * encoder.done / total, _embedding_message(model, encoder, total))
            report(0.95, "Storing")
            writer.flush()
        finally:
            encoder.close()
        if writer.collection is None:
            self.create_store(name, chunking, model)  # an empty store, as asked
        report(1.0, "Done")
        return [reports[i] for i in range(len(files))]

    def _stored_versions(
        self, collection: Collection | None, names: set[str]
    ) -> dict[str, tuple[list[str], list[dict[str, Any]]]]:
        """The chunk ids and metadata already stored for each of these document names."""
        if collection is None or not names:
            return {}
        where: dict[str, Any] = (
            {"source": next(iter(names))} if len(names) == 1 else {"source": {"$in": sorted(names)}}
        )
        ids, metas = self._all_metadata(collection, where)
        stored: dict[str, tuple[list[str], list[dict[str, Any]]]] = {}
        for chunk_id, meta in zip(ids, metas, strict=True):
            entry = stored.setdefault(str(meta.get("source", "")), ([], []))
            entry[0].append(chunk_id)
            entry[1].append(meta)
        return stored

    def _prepare(
        self,
        upload: UploadedFile,
        chunking: ChunkSettings,
        stored: tuple[list[str], list[dict[str, Any]]] | None,
        seen: dict[str, str],
    ) -> _Pending:
        """Load and chunk one file and compare it with the version already stored."""
        document = load_document(
            upload.name, upload.read(self.max_file_bytes), self.max_file_bytes, upload.size
        )
        doc_hash = text_hash(f"{chunking.chunk_size}/{chunking.chunk_overlap}\n{document.text}")
        given_before = upload.name in seen
        if seen.setdefault(upload.name, doc_hash) != doc_hash:
            # One name is one document: a second file under it would merge into the first,
            # and re-adding either later would delete the other's chunks.
            raise IngestError(
                f"{upload.name} is in this upload twice with different contents; rename one "
                "of the two files and add it again."
            )
        chunks = chunk_document(document, chunking)
        old_ids, old_metas = stored or ([], [])
        unchanged = given_before or (
            bool(old_ids)
            and all(m.get("doc_hash") == doc_hash for m in old_metas)
            and len(old_ids) == len(chunks)
        )
        return _Pending(upload.name, chunks, doc_hash, list(old_ids), document.warnings, unchanged)

    # -- queries ------------------------------------------------------------------------

    def query(self, name: str, text: str, k: int = 4) -> list[StoredChunk]:
        """The k chunks most similar to text, best first, with cosine similarity scores."""
        if not text.strip():
            raise IngestError("The query is empty; type a question and try again.")
        collection = self._collection(name)
        meta = collection.metadata or {}
        model = str(meta.get("embedding_model", DEFAULT_MODEL))
        embedder = get_embedder(model)
        if int(meta.get("embedding_dim", embedder.dimension)) != embedder.dimension:
            raise ConfigError(
                f"Store '{name}' holds {meta['embedding_dim']}-dimensional vectors but "
                f"'{model}' now makes {embedder.dimension}; rebuild the store."
            )
        # No count() first: Chroma returns fewer hits when the store is smaller than k,
        # and every call costs milliseconds on the query path.
        result = collection.query(
            query_embeddings=embedder.encode_query(text),
            n_results=k,
            include=["documents", "metadatas", "distances"],
        )
        hits = []
        for chunk_id, doc, meta, distance in zip(
            result["ids"][0],
            (result["documents"] or [[]])[0],
            (result["metadatas"] or [[]])[0],
            (result["distances"] or [[]])[0],
            strict=True,
        ):
            hits.append(_stored(chunk_id, doc, meta, round(1.0 - float(distance), 4)))
        return hits


_Span = tuple[_Pending, int, int]  # a document and the [start, end) of its chunks
_TICK_S = 1.0  # longest wait for the encoder between two progress reports


def _embedding_message(model: str, encoder: _EncodeWorker, total: int) -> str:
    if encoder.done == 0 and not is_loaded(model):
        return "Loading the embedding model"
    return f"Embedded {encoder.done} of {total} chunks"


class _EncodeWorker:
    """Embeds chunks on a thread, in groups that span documents, while the caller reads on.

    torch releases the GIL while it computes, so reading, chunking and writing on the
    calling thread overlap the encoding instead of adding to it.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.submitted = 0  # chunks handed over
        self.done = 0  # chunks embedded and taken back
        self._inbox: queue.Queue[list[_Span] | None] = queue.Queue()
        self._outbox: queue.Queue[tuple[list[_Span], Any] | Exception] = queue.Queue()
        self._group: list[_Span] = []
        self._group_size = 0
        self._sent = self._received = 0
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> bool:
        """True while some sent group has not come back."""
        return self._received < self._sent

    def submit(self, item: _Pending) -> None:
        """Queue a document's chunks; full groups go to the thread at once."""
        start, count = 0, len(item.chunks)
        while start < count:
            take = min(count - start, ENCODE_GROUP - self._group_size)
            self._group.append((item, start, start + take))
            self._group_size += take
            start += take
            if self._group_size >= ENCODE_GROUP:
                self._send()
        self.submitted += count

    def finish(self) -> None:
        """Send the last, partial group."""
        self._send()

    def ready(self, wait: bool = False, timeout: float | None = None) -> list[tuple[_Span, Any]]:
        """Embedded spans that came back (waiting up to timeout for one group if wait is set)."""
        results: list[tuple[_Span, Any]] = []
        while self.pending:
            block = wait and not results
            try:
                got = self._outbox.get(block=block, timeout=timeout if block else None)
            except queue.Empty:
                break
            self._received += 1
            if isinstance(got, Exception):
                raise got
            spans, vectors = got
            offset = 0
            for item, start, end in spans:
                results.append(((item, start, end), vectors[offset : offset + end - start]))
                offset += end - start
            self.done += offset
        return results

    def close(self) -> None:
        """Stop the thread; groups not yet embedded are dropped."""
        if self._thread is not None:
            self._closing = True
            self._inbox.put(None)
            self._thread.join()

    def _send(self) -> None:
        if not self._group:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ingest-encoder", daemon=True)
            self._thread.start()
        self._inbox.put(self._group)
        self._sent += 1
        self._group, self._group_size = [], 0

    def _run(self) -> None:
        embedder: Embedder | None = None
        error: Exception | None = None
        while (group := self._inbox.get()) is not None:
            if error is not None or self._closing:
                self._outbox.put(error or IngestError("The ingest was stopped."))
                continue
            try:
                embedder = embedder or get_embedder(self.model)
                texts = [c.text for item, start, end in group for c in item.chunks[start:end]]
                self._outbox.put((group, embedder.encode(texts)))
            except Exception as exc:  # handed to the caller's thread, which raises it
                error = exc
                self._outbox.put(exc)


class _Writer:
    """Writes embedded chunks to Chroma in batches across documents; each lands whole."""

    def __init__(
        self,
        kb: KnowledgeBase,
        name: str,
        collection: Collection | None,
        model: str,
        chunking: ChunkSettings,
        reports: dict[int, FileReport],
    ) -> None:
        self.kb, self.name, self.collection = kb, name, collection
        self.model, self.chunking, self.reports = model, chunking, reports
        self._rows: list[tuple[_Pending, int, Any]] = []  # document, chunk position, vector
        self._written: dict[int, int] = {}  # document index -> chunks written
        self._failed: set[int] = set()
        self._stamp = _now()

    def take(self, results: list[tuple[_Span, Any]]) -> None:
        """Queue embedded chunks; write once a batch is full."""
        for (item, start, end), vectors in results:
            self._rows.extend((item, start + i, vectors[i]) for i in range(end - start))
        if len(self._rows) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write every queued chunk; finish the documents that are now whole."""
        import numpy as np

        rows = [row for row in self._rows if row[0].index not in self._failed]
        self._rows = []
        if not rows:
            return
        if self.collection is None:  # a new store: made once the model has loaded
            self.kb.create_store(self.name, self.chunking, self.model)
            self.collection = self.kb._collection(self.name)
        items = {row[0].index: row[0] for row in rows}
        try:
            for start in range(0, len(rows), _PAGE):
                batch = rows[start : start + _PAGE]
                self.collection.upsert(
                    ids=[_chunk_id(item, pos) for item, pos, _ in batch],
                    embeddings=np.stack([vector for _, _, vector in batch]),
                    documents=[item.chunks[pos].text for item, pos, _ in batch],
                    metadatas=[self._metadata(item, pos) for item, pos, _ in batch],
                )
        except Exception as exc:
            for item in items.values():
                self._fail(item, exc)
            return
        stale: list[str] = []
        for item, _, _ in rows:
            self._written[item.index] = self._written.get(item.index, 0) + 1
        for index, item in items.items():
            if self._written[index] == len(item.chunks):
                keep = {_chunk_id(item, c.position) for c in item.chunks}
                stale.extend(i for i in item.old_ids if i not in keep)
                status = "replaced" if item.old_ids else "added"
                self.reports[index] = FileReport(
                    item.source, status, len(item.chunks), item.warnings
                )
        for start in range(0, len(stale), _PAGE):
            self.collection.delete(ids=stale[start : start + _PAGE])

    def _metadata(self, item: _Pending, position: int) -> dict[str, Any]:
        return {
            **item.chunks[position].metadata,
            "doc_hash": item.doc_hash,
            "ingested_at": self._stamp,
            "doc_chunks": len(item.chunks),
        }

    def _fail(self, item: _Pending, exc: Exception) -> None:
        """Remove what was written of a document (its old version stays) and report it."""
        self._failed.add(item.index)
        if self.collection is not None:
            with contextlib.suppress(Exception):
                self.collection.delete(ids=[_chunk_id(item, c.position) for c in item.chunks])
        self.reports[item.index] = FileReport(
            item.source,
            "failed",
            error=f"{item.source} could not be stored ({type(exc).__name__}: {exc}); "
            "the store is unchanged, try again.",
        )


def _chunk_id(item: _Pending, position: int) -> str:
    return f"{_source_key(item.source)}-{item.doc_hash[:10]}-{position:05d}"


def _stored(chunk_id: str, text: str | None, meta: Any, score: float | None = None) -> StoredChunk:
    meta = meta or {}
    page = meta.get("page")
    return StoredChunk(
        id=chunk_id,
        text=text or "",
        source=str(meta.get("source", "?")),
        position=int(meta.get("position", 0)),
        page=int(page) if page is not None else None,
        content_hash=str(meta.get("content_hash", "")),
        score=score,
    )


def parse_chunking(chunk_size: int, chunk_overlap: int) -> ChunkSettings:
    """ChunkSettings from user input; a bad pair is one IngestError sentence."""
    try:
        return ChunkSettings(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise IngestError(
            f"Chunk settings {chunk_size}/{chunk_overlap} are invalid ({message}); "
            "pick a size of 100-8000 and an overlap below half of it."
        ) from None
