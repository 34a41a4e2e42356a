"""Chunking: paragraph, then sentence, then character boundaries; sizes and overlap hold."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playground.errors import IngestError
from playground.rag.chunking import ChunkSettings, chunk_document, chunk_text, split_sentences
from playground.rag.loaders import LoadedDocument, PageText
from playground.rag.store import parse_chunking

SMALL = ChunkSettings(chunk_size=120, chunk_overlap=30)


def test_short_paragraphs_are_packed_together_and_never_split() -> None:
    text = "First paragraph is short.\n\nSecond one too.\n\nThird closes it."
    assert chunk_text(text, SMALL) == [text]


def test_paragraph_boundaries_come_before_sentence_boundaries() -> None:
    para_a = "Alpha sentence one is here. " * 3
    para_b = "Bravo sentence two is here. " * 3
    chunks = chunk_text(f"{para_a.strip()}\n\n{para_b.strip()}", SMALL)
    assert chunks[0] == para_a.strip()
    assert chunks[-1].endswith(para_b.strip())


def test_long_paragraph_is_split_at_sentence_ends() -> None:
    sentences = [f"Sentence number {i} talks about tent poles." for i in range(8)]
    chunks = chunk_text(" ".join(sentences), ChunkSettings(chunk_size=120, chunk_overlap=0))
    assert chunks == [" ".join(sentences[i : i + 2]) for i in range(0, 8, 2)]


def test_overlap_starts_at_a_sentence_when_a_sentence_fits() -> None:
    sentences = [f"Fact {i} is short. Sentence {i} is long enough to matter." for i in range(8)]
    chunks = chunk_text(" ".join(sentences), ChunkSettings(chunk_size=120, chunk_overlap=40))
    assert len(chunks) > 2
    assert all(c.startswith(("Fact", "Sentence")) and c.endswith(".") for c in chunks)


def test_sentence_longer_than_a_chunk_is_cut_at_spaces() -> None:
    words = " ".join(f"word{i}" for i in range(80))
    chunks = chunk_text(words, SMALL)
    assert all(len(c) <= SMALL.chunk_size for c in chunks)
    assert all(not c.startswith(" ") and not c.endswith(" ") for c in chunks)
    assert {w for c in chunks for w in c.split()} == set(words.split())


def test_consecutive_chunks_overlap() -> None:
    sentences = [f"Fact {i} about the stove." for i in range(20)]
    chunks = chunk_text(" ".join(sentences), SMALL)
    for before, after in itertools.pairwise(chunks):
        assert split_sentences(after)[0] in split_sentences(before)


def test_no_overlap_means_no_repeated_sentences() -> None:
    sentences = [f"Fact {i} about the stove." for i in range(20)]
    chunks = chunk_text(" ".join(sentences), ChunkSettings(chunk_size=120, chunk_overlap=0))
    joined = [s for c in chunks for s in split_sentences(c)]
    assert joined == sentences


def test_chunks_keep_source_page_position_and_hash() -> None:
    document = LoadedDocument(
        "manual.pdf", [PageText("Page one text.", 1), PageText("Page two text.", 2)]
    )
    chunks = chunk_document(document, SMALL)
    assert [(c.source, c.page, c.position) for c in chunks] == [
        ("manual.pdf", 1, 0),
        ("manual.pdf", 2, 1),
    ]
    assert chunks[0].content_hash != chunks[1].content_hash
    assert re.fullmatch(r"[0-9a-f]{16}", chunks[0].content_hash)


@pytest.mark.parametrize(
    ("size", "overlap", "expected_error"),
    [
        (800, 100, None),
        (100, 0, None),
        (50, 10, "Chunk settings 50/10 are invalid"),
        (400, 200, "Chunk settings 400/200 are invalid (chunk_overlap must be less than half"),
        (400, -1, "Chunk settings 400/-1 are invalid"),
    ],
)
def test_chunk_settings_are_validated(size: int, overlap: int, expected_error: str | None) -> None:
    if expected_error is None:
        assert parse_chunking(size, overlap).chunk_size == size
    else:
        with pytest.raises(IngestError) as caught:
            parse_chunking(size, overlap)
        assert str(caught.value).startswith(expected_error)


_words = st.text(alphabet="abcdefghij", min_size=1, max_size=30)
_sentence = st.lists(_words, min_size=1, max_size=30).map(
    lambda ws: " ".join(ws).capitalize() + "."
)
_paragraph = st.lists(_sentence, min_size=1, max_size=8).map(" ".join)
_text = st.lists(_paragraph, min_size=1, max_size=6).map("\n\n".join)


@settings(max_examples=60, deadline=None)
@given(text=_text, size=st.integers(100, 400), overlap=st.integers(0, 49))
def test_chunks_never_exceed_the_size_and_lose_no_word(text: str, size: int, overlap: int) -> None:
    chunks = chunk_text(text, ChunkSettings(chunk_size=size, chunk_overlap=overlap))
    assert all(0 < len(c) <= size for c in chunks)
    assert {w for c in chunks for w in c.split()} == set(text.split())
