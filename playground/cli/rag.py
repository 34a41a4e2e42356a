"""`playground rag` commands: ingest files into a knowledge store, query, list, delete."""

from __future__ import annotations

from pathlib import Path

import click

from playground.cli.common import PlaygroundGroup, echo_json, settings, stderr


@click.group(cls=PlaygroundGroup)
def rag() -> None:
    """Knowledge stores: ingest documents, query them, list and delete stores."""


def _collect(paths: tuple[Path, ...]) -> list[tuple[str, Path]]:
    """(name in the store, file) for every path; directories recurse, names stay relative."""
    from playground.rag.loaders import SUPPORTED_SUFFIXES

    found: list[tuple[str, Path]] = []
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if file.suffix.lower() in SUPPORTED_SUFFIXES and not file.name.startswith("."):
                    found.append((file.relative_to(path).as_posix(), file))
        else:
            found.append((path.name, path))
    return found


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
    """Chunk, embed and store files (.txt .md .pdf .html); directories recurse."""
    from playground.rag.chunking import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE
    from playground.rag.store import KnowledgeBase, UploadedFile, parse_chunking

    kb = KnowledgeBase(settings(), int(max_mb * 1024 * 1024) if max_mb else None)
    chunking = None
    if chunk_size is not None or chunk_overlap is not None:
        chunking = parse_chunking(
            chunk_size or DEFAULT_CHUNK_SIZE,
            DEFAULT_CHUNK_OVERLAP if chunk_overlap is None else chunk_overlap,
        )
    files = _collect(paths)
    if not files:
        raise click.UsageError("No .txt, .md, .pdf or .html files found in the given paths.")
    uploads = [UploadedFile.from_path(name, path, kb.max_file_bytes) for name, path in files]
    reports = kb.ingest(store_name, uploads, chunking=chunking, embedding_model=embedding_model)
    if as_json:
        echo_json({"store": store_name, "files": [r.to_json() for r in reports]})
    else:
        for report in reports:
            if report.ok:
                click.echo(f"{report.status:<9} {report.source} ({report.chunks} chunks)")
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
        echo_json({"store": store_name, "query": text, "hits": [h.to_retrieved() for h in hits]})
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
    click.echo(f"Deleted {document} ({removed} chunks) from '{store_name}'.")
