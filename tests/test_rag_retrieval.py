"""Retrieval for runs: the context a model sees, chunk ids on results, groundedness."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.config import Settings, load_settings
from playground.errors import StoreNotFoundError, TemplateError
from playground.models.base import Message, ModelParams
from playground.rag.retrieval import (
    GROUNDEDNESS_HELP,
    answer_sentences,
    groundedness,
    list_store_names,
    retrieve_for_run,
    score_results,
)
from playground.rag.store import KnowledgeBase, UploadedFile
from playground.records import Result, RetrievalSettings, Run

TENT_TEXT = (
    "The Trail Tent 2P is a two-person backpacking tent weighing 1.6 kg. The fly is rated "
    "waterproof to 3000 mm and all seams are taped. Pitching takes about five minutes."
)
RETURNS_TEXT = "Unused items can be returned within 60 days of delivery for a full refund."


@pytest.fixture
def settings(home: Path) -> Settings:
    """Settings with a store 'gear' holding a tent manual, a returns policy and a PDF page."""
    config = load_settings()
    KnowledgeBase(config).ingest(
        "gear",
        [
            UploadedFile("tent.md", TENT_TEXT.encode()),
            UploadedFile("returns.md", RETURNS_TEXT.encode()),
        ],
    )
    return config


def _result(text: str, error: str | None = None) -> Result:
    return Result(
        "local/x", [Message(role="user", content="q")], ModelParams(), text=text, error=error
    )


def test_retrieve_for_run_renders_the_query_and_numbers_chunks_with_source(
    settings: Settings,
) -> None:
    retrieval = RetrievalSettings(store="gear", top_k=1, query="How do I get a {{ what }}?")
    outcome = retrieve_for_run(settings, retrieval, {"what": "refund for unused items"})
    assert outcome.context == f"[1] (returns.md)\n{RETURNS_TEXT}"
    [item] = outcome.retrieved
    assert set(item.to_json()) == {"id", "text", "source", "page", "score"}
    assert (item.source, item.page, item.text) == ("returns.md", None, RETURNS_TEXT)
    assert outcome.chunk_ids == [item.id]


def test_retrieve_for_run_on_a_missing_store_raises_store_not_found(settings: Settings) -> None:
    with pytest.raises(StoreNotFoundError, match="'manuals' does not exist"):
        retrieve_for_run(settings, RetrievalSettings(store="manuals"), {"question": "q"})


def test_retrieve_for_run_needs_the_query_variables(settings: Settings) -> None:
    with pytest.raises(TemplateError, match="Variable 'question' in the retrieval query"):
        retrieve_for_run(settings, RetrievalSettings(store="gear"), {})


def test_score_results_records_chunk_ids_and_groundedness_on_answered_results_only(
    settings: Settings,
) -> None:
    run = Run(retrieval=RetrievalSettings(store="gear", top_k=2))
    run.retrieved = retrieve_for_run(
        settings, run.retrieval, {"question": "Is it waterproof?"}
    ).retrieved
    grounded = _result("The fly is rated waterproof to 3000 mm. All seams are taped.")
    invented = _result("Paris is the capital of France. The Eiffel Tower is tall.")
    failed = _result("", error="model crashed")
    score_results(settings, run, [grounded, invented, failed])
    ids = [item.id for item in run.retrieved]
    assert grounded.chunk_ids == ids and invented.chunk_ids == ids
    assert grounded.groundedness == 1.0
    assert invented.groundedness == 0.0
    assert failed.chunk_ids is None and failed.groundedness is None


def test_groundedness_is_the_share_of_supported_sentences(settings: Settings) -> None:
    answer = (
        "The tent weighs 1.6 kg and sleeps two people. "
        "It comes with a free lifetime supply of hot chocolate."
    )
    assert groundedness(settings, answer, [TENT_TEXT]) == 0.5


def test_a_number_the_chunks_never_state_makes_a_sentence_ungrounded(settings: Settings) -> None:
    answer = (
        "The fly is rated waterproof to 3,000 mm. The fly is rated waterproof to 25 feet of rain."
    )
    assert groundedness(settings, answer, [TENT_TEXT]) == 0.5


@pytest.mark.parametrize(
    ("answer", "chunks"),
    [("", [TENT_TEXT]), ("   ", [TENT_TEXT]), ("The tent is waterproof.", []), ("Yes.", [" "])],
)
def test_groundedness_is_none_without_an_answer_or_chunks(
    home: Path, answer: str, chunks: list[str]
) -> None:
    assert groundedness(load_settings(), answer, chunks) is None


def test_answer_sentences_drop_bullets_and_fillers() -> None:
    answer = "Sure!\n- The tent weighs 1.6 kg.\n2. It sleeps two people. Yes."
    assert answer_sentences(answer) == ["The tent weighs 1.6 kg.", "It sleeps two people."]


def test_list_store_names(settings: Settings) -> None:
    KnowledgeBase(settings).ingest("policies", [UploadedFile("r.md", RETURNS_TEXT.encode())])
    assert list_store_names(settings) == ["gear", "policies"]


def test_groundedness_help_says_what_it_measures_and_what_it_cannot() -> None:
    assert "\n" not in GROUNDEDNESS_HELP
    assert "not whether" in GROUNDEDNESS_HELP and "retrieved chunks" in GROUNDEDNESS_HELP
