"""Split a document into overlapping chunks on paragraph, then sentence, then character limits.

Sizes are in characters: they are what a user can check by eye, and at the default 800 a chunk
stays well inside all-MiniLM-L6-v2's 256-token window.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from playground.rag.loaders import LoadedDocument

DEFAULT_CHUNK_SIZE = 800
DEFAULT_CHUNK_OVERLAP = 100

# A sentence ends at . ! or ? (optionally followed by a closing quote or bracket) and a space.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")
_PARAGRAPH = re.compile(r"\n\s*\n")


class ChunkSettings(BaseModel):
    """How a store cuts documents: chunk size and overlap in characters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_size: int = Field(DEFAULT_CHUNK_SIZE, ge=100, le=8000)
    chunk_overlap: int = Field(DEFAULT_CHUNK_OVERLAP, ge=0)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkSettings:
        if self.chunk_overlap >= self.chunk_size // 2:
            raise ValueError("chunk_overlap must be less than half of chunk_size")
        return self


@dataclass(frozen=True)
class Chunk:
    """A piece of a document as stored: text plus where it came from."""

    text: str
    source: str
    position: int  # index of the chunk within its document
    page: int | None  # PDF page number (1-based); None for other formats
    content_hash: str  # sha256 of the text, first 16 hex digits

    @property
    def metadata(self) -> dict[str, str | int]:
        """Flat metadata for the vector store (no None values allowed there)."""
        meta: dict[str, str | int] = {
            "source": self.source,
            "position": self.position,
            "content_hash": self.content_hash,
        }
        if self.page is not None:
            meta["page"] = self.page
        return meta


def text_hash(text: str) -> str:
    """Stable short hash of a text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at . ! ? followed by a capital or digit; keeps newlines out."""
    pieces = _SENTENCE_END.split(text.strip())
    return [" ".join(p.split()) for p in pieces if p.strip()]


def _hard_split(text: str, size: int) -> list[str]:
    """Cut text longer than size at the last space before the limit, else mid-word."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > size:
        cut = rest.rfind(" ", size // 2, size + 1)
        cut = cut if cut > 0 else size
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return pieces


@dataclass(frozen=True)
class _Unit:
    """A piece that is never split further, and what joins it to the piece before it."""

    text: str
    joiner: str  # "\n\n" starts a paragraph, " " continues one


def _units(text: str, size: int) -> list[_Unit]:
    """Paragraphs that fit; longer ones become sentences; longer sentences become cuts."""
    units: list[_Unit] = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= size:
            units.append(_Unit(paragraph, "\n\n"))
            continue
        pieces: list[str] = []
        for sentence in split_sentences(paragraph):
            pieces.extend([sentence] if len(sentence) <= size else _hard_split(sentence, size))
        units.extend(_Unit(piece, "\n\n" if i == 0 else " ") for i, piece in enumerate(pieces))
    return units


def _join(units: list[_Unit]) -> str:
    return "".join(unit.joiner + unit.text for unit in units)[len(units[0].joiner) :]


def _tail(units: list[_Unit], overlap: int) -> list[_Unit]:
    """The end of a chunk to repeat at the start of the next: whole units, else sentences,
    else whole words, within overlap characters."""
    kept: list[_Unit] = []
    for unit in reversed(units):
        if len(_join([unit, *kept])) > overlap:
            break
        kept.insert(0, unit)
    if kept or not overlap or not units:
        return kept
    # No whole unit fits: carry its last sentences, else its last words, so that a
    # boundary keeps some context and a chunk rarely starts mid-sentence.
    tail = ""
    for sentence in reversed(split_sentences(units[-1].text)):
        joined = f"{sentence} {tail}".strip()
        if len(joined) > overlap:
            break
        tail = joined
    if not tail:
        for word in reversed(units[-1].text.split()):
            joined = f"{word} {tail}".strip()
            if len(joined) > overlap:
                break
            tail = joined
    return [_Unit(tail, " ")] if tail else []


def chunk_text(text: str, settings: ChunkSettings) -> list[str]:
    """Pack paragraph/sentence units into chunks of at most chunk_size, overlapping."""
    size, overlap = settings.chunk_size, settings.chunk_overlap
    chunks: list[str] = []
    current: list[_Unit] = []
    fresh = 0  # units in `current` that are new, not carried over as overlap
    for unit in _units(text, size):
        if current and len(_join([*current, unit])) > size:
            chunks.append(_join(current))
            current = _tail(current, overlap)
            while current and len(_join([*current, unit])) > size:
                current.pop(0)  # the overlap must never push a chunk over the size
            fresh = 0
        current.append(unit)
        fresh += 1
    if current and fresh:
        chunks.append(_join(current))
    return chunks


def chunk_document(document: LoadedDocument, settings: ChunkSettings) -> list[Chunk]:
    """Chunks of every page of a document, numbered in reading order."""
    chunks: list[Chunk] = []
    for page in document.pages:
        for piece in chunk_text(page.text, settings):
            chunks.append(Chunk(piece, document.source, len(chunks), page.page, text_hash(piece)))
    return chunks
