"""`playground rag` commands: ingest files into a knowledge store, query, list, delete."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import TracebackType

import click

from playground.cli.common import PlaygroundGroup, echo_json, settings, stderr


@click.group(cls=PlaygroundGroup)
def rag() -> None:
    """Knowledge stores: ingest documents, query them, list and delete stores."""


# Shorter ingests print only their result; longer ones show where they are on stderr.
PROGRESS_AFTER_S = 2.0
LOG_LINE_EVERY_S = 10.0  # when stderr is not a terminal (a CI log): one line this often
_TTY_REDRAW_S = 0.2


class IngestProgress:
    """Progress of an ingest on stderr: one line redrawn on a terminal, a line now and then
    in a log; nothing for an ingest that ends within a few seconds."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self._last: float | None = None
        self._width = 0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self.started < PROGRESS_AFTER_S:
            return
        every = _TTY_REDRAW_S if self.tty else LOG_LINE_EVERY_S
        if self._last is not None and now - self._last < every and fraction < 1.0:
            return
        self._last = now
        line = f"{fraction:4.0%} {message} ({now - self.started:.0f} s)"
        if self.tty:
            click.echo("\r" + line.ljust(self._width), err=True, nl=False)
            self._width = max(self._width, len(line))
        else:
            click.echo(line, err=True)

    def __enter__(self) -> IngestProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.tty and self._width:  # leave the terminal clean for the per-file lines
            click.echo("\r" + " " * self._width + "\r", err=True, nl=False)


@rag.command()
@click.option("--store", "store_name", required=True, help="Store to add to (created if missing).")
@click.option("--chunk-size", type=int, default=None, help="Characters per chunk (new stores).")
@click.option("--chunk-overlap", type=int, default=None, help="Overlap in characters (new stores).")
@click.option(
    "--embedding-model",
    default=None,
    help="sentence-transformers name or path (new stores; default all-MiniLM-L6-v2).",
)
@click.option(
    "--max-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Largest file to accept in MB [default: $PLAYGROUND_MAX_FILE_MB or 20].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def ingest(
    store_name: str,
    chunk_size: int | None,
    chunk_overlap: int | None,
    embedding_model: str | None,
    max_mb: float | None,
    as_json: bool,
    paths: tuple[Path, ...],
) -> None:
    """Chunk, embed and store files (.txt .md .pdf .html); directories recurse.

    Each document is named by its path relative to the deepest folder holding everything
    given (one folder: paths inside it); links that leave a folder are skipped.
    """
    from playground.rag.chunking import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE
    from playground.rag.loaders import chunk_count
    from playground.rag.sources import collect_sources
    from playground.rag.store import KnowledgeBase, UploadedFile, parse_chunking

    kb = KnowledgeBase(settings(), int(max_mb * 1024 * 1024) if max_mb else None)
    chunking = None
    if chunk_size is not None or chunk_overlap is not None:
        chunking = parse_chunking(
            chunk_size or DEFAULT_CHUNK_SIZE,
            DEFAULT_CHUNK_OVERLAP if chunk_overlap is None else chunk_overlap,
        )
    collected = collect_sources(list(paths))
    for skipped in collected.skipped:
        stderr(f"Warning: {skipped}")
    if not collected.files:
        raise click.UsageError("No .txt, .md, .pdf or .html files found in the given paths.")
    uploads = [UploadedFile.from_path(f.name, f.path) for f in collected.files]
    with IngestProgress() as progress:
        reports = kb.ingest(
            store_name,
            uploads,
            progress=progress,
            chunking=chunking,
            embedding_model=embedding_model,
        )
    if as_json:
        echo_json({"store": store_name, "files": [r.to_json() for r in reports]})
    else:
        for report in reports:
            if report.ok:
                click.echo(f"{report.status:<9} {report.source} ({chunk_count(report.chunks)})")
            for warning in report.warnings:
                stderr(f"Warning: {warning}")
            if not report.ok:
                stderr(f"Error: {report.error}")
    failed = sum(not r.ok for r in reports)
    if failed:
        stderr(f"{failed} of {len(reports)} files failed; the others are in '{store_name}'.")
        raise SystemExit(1)


@rag.command()
@click.option("--store", "store_name", required=True, help="Store to search.")
@click.option("-k", "--top-k", "k", type=click.IntRange(1, 50), default=4, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.argument("text")
def query(store_name: str, k: int, as_json: bool, text: str) -> None:
    """Show the chunks of a store closest to TEXT, with their source and score."""
    from playground.rag.store import KnowledgeBase

    hits = KnowledgeBase(settings()).query(store_name, text, k)
    if as_json:
        echo_json(
            {"store": store_name, "query": text, "hits": [h.to_retrieved().to_json() for h in hits]}
        )
        return
    if not hits:
        click.echo(f"Store '{store_name}' has no chunks yet.")
    for rank, hit in enumerate(hits, start=1):
        where = hit.source if hit.page is None else f"{hit.source} p.{hit.page}"
        click.echo(click.style(f"[{rank}] {hit.score:.3f}  {where}  ({hit.id})", bold=True))
        click.echo(hit.text.strip())
        click.echo()


@rag.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def list_stores(as_json: bool) -> None:
    """List knowledge stores with their model, chunk settings and documents."""
    from playground.rag.store import KnowledgeBase

    kb = KnowledgeBase(settings())
    stores = kb.list_stores()
    if as_json:
        echo_json(
            [{**s.to_json(), "documents": [vars(d) for d in kb.documents(s.name)]} for s in stores]
        )
        return
    if not stores:
        click.echo("No knowledge stores yet; create one with `playground rag ingest`.")
    for store in stores:
        documents = kb.documents(store.name)
        click.echo(
            f"{store.name}: {len(documents)} documents, {store.chunks} chunks, "
            f"{store.embedding_model}, chunks {store.chunk_size}/{store.chunk_overlap}"
        )


@rag.command()
@click.option("--store", "store_name", required=True, help="Store to delete.")
@click.option("--document", default=None, help="Delete only this document (its source name).")
def delete(store_name: str, document: str | None) -> None:
    """Delete a knowledge store, or one document of it."""
    from playground.errors import NotFoundError
    from playground.rag.loaders import chunk_count
    from playground.rag.store import KnowledgeBase

    kb = KnowledgeBase(settings())
    if document is None:
        kb.delete_store(store_name)
        click.echo(f"Deleted store '{store_name}'.")
        return
    removed = kb.delete_document(store_name, document)
    if not removed:
        raise NotFoundError(
            f"Store '{store_name}' has no document '{document}'; "
            f"see `playground rag list` for its documents."
        )
    click.echo(f"Deleted {document} ({chunk_count(removed)}) from '{store_name}'.")
