"""Knowledge stores: one Chroma collection per store, documents ingested atomically.

A store remembers its chunk settings and the embedding model that built it (collection
metadata), so a query always embeds with the same model and an ingest with another is refused.
Chroma is imported lazily: pages and commands that never touch a store do not pay for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
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
from playground.rag.chunking import Chunk, ChunkSettings, chunk_document, text_hash
from playground.rag.embeddings import DEFAULT_MODEL, canonical_name, get_embedder
from playground.rag.loaders import DEFAULT_MAX_BYTES, load_document

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

STORE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$")
_MARKER = "playground_store"
MAX_FILE_ENV = "PLAYGROUND_MAX_FILE_MB"
_PAGE = 1000  # rows per Chroma get/add call; below every server's max batch size

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

    def to_retrieved(self) -> dict[str, Any]:
        """The `retrieved` dict shape runs save: id, text, source, page, score."""
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "page": self.page,
            "score": self.score,
        }


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
    """A file to ingest: the name it is known by in the store and its bytes."""

    name: str
    data: bytes
    size: int | None = None  # set when data was not read because the file is too big

    @classmethod
    def from_path(cls, name: str, path: Path, max_bytes: int) -> UploadedFile:
        """Read a file, unless it is over max_bytes (then only its size is kept)."""
        size = path.stat().st_size
        return cls(name, b"", size) if size > max_bytes else cls(name, path.read_bytes(), size)


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
        self.max_file_bytes = max_file_bytes or max_file_bytes_from_env(settings)

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
        """
        info = self.create_store(name, chunking, embedding_model)
        collection = self._collection(name)
        store_chunking = ChunkSettings(chunk_size=info.chunk_size, chunk_overlap=info.chunk_overlap)

        reached = [0.0]  # a progress bar must never step back, even by a rounding error

        def report(fraction: float, message: str) -> None:
            reached[0] = min(max(fraction, reached[0]), 1.0)
            if progress is not None:
                progress(reached[0], message)

        reports: dict[int, FileReport] = {}
        pending: list[_Pending] = []
        for index, upload in enumerate(files):
            report(0.1 * index / max(len(files), 1), f"Reading {upload.name}")
            try:
                item = self._prepare(collection, upload, store_chunking)
            except IngestError as exc:
                reports[index] = FileReport(upload.name, "failed", error=str(exc))
                continue
            if item.unchanged:
                reports[index] = FileReport(
                    upload.name, "unchanged", len(item.chunks), item.warnings
                )
            else:
                item.index = index
                pending.append(item)
        texts = [c.text for item in pending for c in item.chunks]
        vectors: Any = None
        if texts:
            # One encode call for every new chunk of the upload: the model sorts them by
            # length and pads little, which small per-document calls cannot do.
            report(0.1, f"Embedding {len(texts)} chunks")
            vectors = get_embedder(info.embedding_model).encode(
                texts,
                on_batch=lambda n: report(
                    0.1 + 0.8 * n / len(texts), f"Embedded {n} of {len(texts)}"
                ),
            )
        offset = 0
        for done, item in enumerate(pending):
            report(0.9 + 0.1 * done / len(pending), f"Storing {item.source}")
            item_vectors = vectors[offset : offset + len(item.chunks)]
            offset += len(item.chunks)
            try:
                self._write(collection, item, item_vectors)
            except IngestError as exc:
                reports[item.index] = FileReport(item.source, "failed", error=str(exc))
                continue
            status = "replaced" if item.old_ids else "added"
            reports[item.index] = FileReport(item.source, status, len(item.chunks), item.warnings)
        report(1.0, "Done")
        return [reports[i] for i in range(len(files))]

    def _prepare(
        self, collection: Collection, upload: UploadedFile, chunking: ChunkSettings
    ) -> _Pending:
        """Load and chunk one file and compare it with the version already stored."""
        document = load_document(upload.name, upload.data, self.max_file_bytes, upload.size)
        chunks = chunk_document(document, chunking)
        doc_hash = text_hash(f"{chunking.chunk_size}/{chunking.chunk_overlap}\n{document.text}")
        old_ids, old_metas = self._all_metadata(collection, {"source": upload.name})
        unchanged = (
            bool(old_ids)
            and all(m.get("doc_hash") == doc_hash for m in old_metas)
            and len(old_ids) == len(chunks)
        )
        return _Pending(upload.name, chunks, doc_hash, old_ids, document.warnings, unchanged)

    def _write(self, collection: Collection, item: _Pending, vectors: Any) -> None:
        """Write a document's new chunks, then drop its old ones; on failure undo the write."""
        stamp = _now()
        ids = [
            f"{_source_key(item.source)}-{item.doc_hash[:10]}-{c.position:05d}" for c in item.chunks
        ]
        metas = [
            {
                **c.metadata,
                "doc_hash": item.doc_hash,
                "ingested_at": stamp,
                "doc_chunks": len(item.chunks),
            }
            for c in item.chunks
        ]
        try:
            for start in range(0, len(ids), _PAGE):
                end = start + _PAGE
                collection.upsert(
                    ids=ids[start:end],
                    embeddings=vectors[start:end],
                    documents=[c.text for c in item.chunks[start:end]],
                    metadatas=metas[start:end],
                )
        except Exception as exc:
            with contextlib.suppress(Exception):
                collection.delete(ids=ids)
            raise IngestError(
                f"{item.source} could not be stored ({type(exc).__name__}: {exc}); "
                "the store is unchanged, try again."
            ) from None
        keep = set(ids)
        stale = [i for i in item.old_ids if i not in keep]
        for start in range(0, len(stale), _PAGE):
            collection.delete(ids=stale[start : start + _PAGE])

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
