"""What the Knowledge page shares with the Playground: the cached knowledge base and embedder.

chromadb and torch are imported inside the cached getters, so pages that never touch a store
do not pay for them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import streamlit as st

from playground.config import Settings
from ui.resources import settings

if TYPE_CHECKING:
    from playground.rag.embeddings import Embedder
    from playground.rag.store import DocumentInfo, FileReport, KnowledgeBase, StoredChunk

UPLOAD_TYPES = ["txt", "md", "markdown", "pdf", "html", "htm"]


@st.cache_resource(show_spinner=False)
def _knowledge_base(home: str, url: str, _settings: Settings) -> KnowledgeBase:
    from playground.rag.store import KnowledgeBase

    return KnowledgeBase(_settings)


def knowledge_base() -> KnowledgeBase:
    """The knowledge stores of the current settings (one client per data home or server)."""
    config = settings()
    return _knowledge_base(str(config.home.resolve()), config.vector_store.url or "", config)


@st.cache_resource(show_spinner="Loading the embedding model…")
def embedder(name: str) -> Embedder:
    """The embedding model, loaded once per process."""
    from playground.rag.embeddings import get_embedder

    return get_embedder(name)


def uploads(files: Sequence[Any]) -> list[Any]:
    """Streamlit's uploaded files as the library's UploadedFile records."""
    from playground.rag.store import UploadedFile

    return [UploadedFile(f.name, f.getvalue()) for f in files]


def upload_limit_mb(kb: KnowledgeBase) -> int:
    """The uploader's per-file limit in whole MB: the configured limit, rounded up."""
    return max(1, math.ceil(kb.max_file_bytes / (1024 * 1024)))


def upload_help(kb: KnowledgeBase) -> str:
    """The uploader's help: what it takes and the configured size limit."""
    from playground.rag.loaders import format_size

    limit = format_size(kb.max_file_bytes).replace(".0 MB", " MB")
    return (
        f"Up to {limit} per file ([knowledge] max_file_mb in playground.toml or "
        "$PLAYGROUND_MAX_FILE_MB). A file with the name of a stored document replaces it."
    )


_LISTED = 5  # names in a summary before "and N more"


def show_reports(reports: Sequence[FileReport]) -> None:
    """One summary of what landed, then each warning and error on its own."""
    from playground.rag.loaders import chunk_count

    done = [r for r in reports if r.ok]
    if len(done) == 1:
        [report] = done
        label = _STATUS_LABEL.get(report.status, report.status.capitalize())
        st.success(
            f"{label} {report.source} ({chunk_count(report.chunks)}).",
            icon=":material/check_circle:",
        )
    elif done:
        st.success(_summary(done), icon=":material/check_circle:")
    for report in reports:
        for warning in report.warnings:
            st.warning(warning, icon=":material/warning:")
        if report.error:
            st.error(report.error, icon=":material/error:")


_STATUS_LABEL = {"added": "Added", "replaced": "Replaced", "unchanged": "Unchanged"}


def _summary(done: Sequence[FileReport]) -> str:
    """'Added 2 documents (3 chunks): a.md, b.pdf.' with other statuses counted apart."""
    from playground.rag.loaders import chunk_count

    parts = []
    for status, label in _STATUS_LABEL.items():
        group = [r for r in done if r.status == status]
        if group:
            noun = "document" if len(group) == 1 else "documents"
            total = chunk_count(sum(r.chunks for r in group))
            parts.append(f"{label if not parts else label.lower()} {len(group)} {noun} ({total})")
    names = [r.source for r in done]
    listed = ", ".join(names[:_LISTED])
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return f"{', '.join(parts)}: {listed}{more}."


_NO_PAGE = "—"  # formats without pages (text, Markdown, HTML)


def documents_rows(documents: Sequence[DocumentInfo]) -> list[dict[str, object]]:
    """Rows for the documents table."""
    return [
        {
            "document": d.source,
            "chunks": d.chunks,
            "pages": str(d.pages) if d.pages else _NO_PAGE,
            "ingested": d.ingested_at.replace("T", " ").removesuffix("Z"),
        }
        for d in documents
    ]


def chunk_rows(chunks: Sequence[StoredChunk]) -> list[dict[str, object]]:
    """Rows for the chunk browser."""
    return [
        {
            "document": c.source,
            "page": _NO_PAGE if c.page is None else str(c.page),
            "position": c.position,
            "text": c.text,
            "hash": c.content_hash,
        }
        for c in chunks
    ]


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|<>~$])")


def chunk_markdown(text: str) -> str:
    """A chunk as Markdown that shows it as written: wrapped, line breaks kept, no markup."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text.strip())
    return re.sub(r"(?<!\n)\n(?!\n)", "  \n", escaped)
