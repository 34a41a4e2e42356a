"""What the Knowledge page shares with the Playground: the cached knowledge base and embedder.

chromadb and torch are imported inside the cached getters, so pages that never touch a store
do not pay for them.
"""

from __future__ import annotations

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


def show_reports(reports: Sequence[FileReport]) -> None:
    """One line per file: success, warnings, or the error."""
    for report in reports:
        if report.error:
            st.error(report.error, icon=":material/error:")
            continue
        label = {"added": "Added", "replaced": "Replaced", "unchanged": "Unchanged"}
        st.success(
            f"{label.get(report.status, report.status)} {report.source} ({report.chunks} chunks)",
            icon=":material/check_circle:",
        )
        for warning in report.warnings:
            st.warning(warning, icon=":material/warning:")


def documents_rows(documents: Sequence[DocumentInfo]) -> list[dict[str, object]]:
    """Rows for the documents table."""
    return [
        {
            "document": d.source,
            "chunks": d.chunks,
            "pages": d.pages or None,
            "ingested": d.ingested_at.replace("T", " ").removesuffix("Z"),
        }
        for d in documents
    ]


def chunk_rows(chunks: Sequence[StoredChunk]) -> list[dict[str, object]]:
    """Rows for the chunk browser and the query results."""
    return [
        {
            **({"score": c.score} if c.score is not None else {}),
            "document": c.source,
            "page": c.page,
            "position": c.position,
            "text": c.text,
            "hash": c.content_hash,
        }
        for c in chunks
    ]
