"""Retrieval for a run: fill {{ context }} from a store, then score how grounded answers are."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from playground.config import Settings
from playground.prompts import render
from playground.rag.groundedness import (  # noqa: F401 - answer_sentences is re-exported
    GROUNDED_THRESHOLD,
    Grounding,
    answer_sentences,
    groundedness_score,
)
from playground.rag.store import KnowledgeBase, StoredChunk
from playground.records import Result, RetrievalSettings, RetrievedChunk, Run

GROUNDEDNESS_HELP = (
    "Share of the answer's sentences that closely match a sentence of the retrieved chunks "
    "(embedding similarity ≥ 0.55) without contradicting it: every number they state, every "
    "name or day they mention and every negation must agree with that chunk sentence. It shows "
    "whether the answer sticks to the given context, not whether the context or the answer is "
    "correct; it can miss paraphrases and contradictions worded in other ways."
)


@dataclass
class RetrievalOutcome:
    """What a run retrieved: the {{ context }} text, the chunks as saved, and their ids."""

    context: str
    retrieved: list[RetrievedChunk] = field(default_factory=list)
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


GROUNDINGS_KEPT = 64  # scorers of recent retrievals, ~100 KB each


_groundings: OrderedDict[tuple[str, ...], Grounding] = OrderedDict()
_groundings_lock = threading.Lock()


def run_grounding(run: Run) -> Grounding | None:
    """The groundedness scorer of a run's retrieved chunks, None when they hold no text.

    Every cell of a run, every follow-up turn (it keeps turn one's chunks) and every batch
    cell that retrieved the same chunks share one scorer, so the chunks are embedded once.
    """
    texts = tuple(item.text for item in run.retrieved)
    if not any(t.strip() for t in texts):
        return None
    # built under the lock: cells ending together on many threads must not each embed
    with _groundings_lock:
        scorer = _groundings.get(texts)
        if scorer is None:
            scorer = _groundings[texts] = Grounding(list(texts))
            while len(_groundings) > GROUNDINGS_KEPT:
                _groundings.popitem(last=False)
        else:
            _groundings.move_to_end(texts)
    return scorer


def score_results(
    settings: Settings, run: Run, results: list[Result], scorer: Grounding | None = None
) -> None:
    """Give every answered result the run's chunk ids and its groundedness.

    `scorer` defaults to the run's shared one (`run_grounding`).
    """
    chunk_ids = [item.id for item in run.retrieved]
    if scorer is None:
        scorer = run_grounding(run)
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
    """Share of answer sentences the chunks support without contradiction, or None."""
    return groundedness_score(answer, chunk_texts, threshold)


def list_store_names(settings: Settings) -> list[str]:
    """Names of the knowledge stores, sorted."""
    return knowledge_base(settings).store_names()
