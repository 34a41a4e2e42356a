"""Retrieval for a run: fill {{ context }} from a store, then score how grounded answers are."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from playground.config import Settings
from playground.prompts import render
from playground.rag.chunking import split_sentences
from playground.rag.embeddings import get_embedder
from playground.rag.store import KnowledgeBase, StoredChunk
from playground.records import Result, RetrievalSettings, Run

# all-MiniLM-L6-v2 cosine similarity: restatements of a chunk sentence or clause score ~0.6-1.0,
# loose paraphrases and same-topic claims not in the text ~0.35-0.52, unrelated ones < 0.25.
GROUNDED_THRESHOLD = 0.55
GROUNDEDNESS_HELP = (
    "Share of the answer's sentences that closely match a sentence of the retrieved chunks "
    "(embedding similarity ≥ 0.55, and every number they state appears in the chunks): it shows "
    "whether the answer sticks to the given context, not whether the context or the answer is "
    "correct; it can miss paraphrases and cannot see a flipped negation."
)
_MIN_WORDS = 3  # "Yes." or "Sure!" carry no claim to check
_CLAUSE_WORDS = 3
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_CLAUSE_SPLIT = re.compile(r",\s+|;\s+|:\s+|\s+(?:and|but|while|whereas)\s+")


@dataclass
class RetrievalOutcome:
    """What a run retrieved: the {{ context }} text, the chunks as saved, and their ids."""

    context: str
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    chunk_ids: list[str] = field(default_factory=list)


def format_context(chunks: Sequence[StoredChunk]) -> str:
    """Numbered chunks with their source (and page), the way models read them best."""
    blocks = []
    for number, chunk in enumerate(chunks, start=1):
        where = chunk.source if chunk.page is None else f"{chunk.source}, page {chunk.page}"
        blocks.append(f"[{number}] ({where})\n{chunk.text.strip()}")
    return "\n\n".join(blocks)


def knowledge_base(settings: Settings) -> KnowledgeBase:
    """The knowledge stores of these settings (the Chroma client behind it is cached)."""
    return KnowledgeBase(settings)


def retrieve_for_run(
    settings: Settings, retrieval: RetrievalSettings, variables: Mapping[str, object]
) -> RetrievalOutcome:
    """Render the query template, fetch top_k chunks; StoreNotFoundError if the store is gone."""
    query = render(retrieval.query, variables, "retrieval query")
    hits = knowledge_base(settings).query(retrieval.store, query, retrieval.top_k)
    return RetrievalOutcome(
        context=format_context(hits),
        retrieved=[hit.to_retrieved() for hit in hits],
        chunk_ids=[hit.id for hit in hits],
    )


def score_results(settings: Settings, run: Run, results: list[Result]) -> None:
    """Give every answered result the run's chunk ids and its groundedness."""
    chunk_ids = [str(item["id"]) for item in run.retrieved]
    texts = [str(item.get("text", "")) for item in run.retrieved]
    scorer = _Scorer(texts) if texts else None
    for result in results:
        if result.error is not None:
            continue
        result.chunk_ids = list(chunk_ids)
        result.groundedness = scorer.score(result.text, GROUNDED_THRESHOLD) if scorer else None


def groundedness(
    settings: Settings,
    answer: str,
    chunk_texts: list[str],
    threshold: float = GROUNDED_THRESHOLD,
) -> float | None:
    """Share of answer sentences whose best similarity to a chunk passes threshold, or None."""
    if not answer.strip() or not any(t.strip() for t in chunk_texts):
        return None
    return _Scorer(chunk_texts).score(answer, threshold)


def list_store_names(settings: Settings) -> list[str]:
    """Names of the knowledge stores, sorted."""
    return knowledge_base(settings).store_names()


def answer_sentences(answer: str) -> list[str]:
    """The claims of an answer: its sentences and list items, short fillers dropped."""
    sentences: list[str] = []
    for line in answer.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", line)  # list bullets are not words
        sentences.extend(split_sentences(line))
    long_ones = [s for s in sentences if len(s.split()) >= _MIN_WORDS]
    return long_ones or sentences


def _numbers(text: str) -> set[str]:
    """The numbers a text states, with thousands separators dropped (3,000 == 3000)."""
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _clauses(sentence: str) -> list[str]:
    """Clauses of a long sentence: an answer often restates just one of them."""
    if len(sentence.split()) < 2 * _CLAUSE_WORDS:
        return []
    parts = [p.strip() for p in _CLAUSE_SPLIT.split(sentence)]
    return [p for p in parts if len(p.split()) >= _CLAUSE_WORDS] if len(parts) > 1 else []


class _Scorer:
    """Embeds the chunks once (whole and per sentence) and scores any number of answers."""

    def __init__(self, chunk_texts: Sequence[str]) -> None:
        pieces: list[str] = []
        for text in chunk_texts:
            if text.strip():
                # A whole chunk dilutes one matching sentence; its sentences alone miss
                # claims spread over two of them. Compare against both.
                pieces.append(text)
                for sentence in split_sentences(" ".join(text.split())):
                    pieces.append(sentence)
                    pieces.extend(_clauses(sentence))
        # Embeddings barely see digits: "25 feet of rain" sits as close to a chunk as
        # "3000 mm"; a number the chunks never state is an invented detail.
        self.numbers = set().union(*(_numbers(text) for text in chunk_texts))
        self.embedder = get_embedder()
        self.vectors = self.embedder.encode(pieces) if pieces else None

    def score(self, answer: str, threshold: float) -> float | None:
        """Share of the answer's sentences that pass threshold; None for an empty answer."""
        sentences = answer_sentences(answer)
        if not sentences or self.vectors is None:
            return None
        answer_vectors = self.embedder.encode(sentences)
        best = (answer_vectors @ self.vectors.T).max(axis=1)
        supported = [
            bool(score >= threshold) and _numbers(sentence) <= self.numbers
            for sentence, score in zip(sentences, best, strict=True)
        ]
        return round(sum(supported) / len(supported), 3)
