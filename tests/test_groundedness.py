"""Groundedness sees contradictions: flipped negations, changed numbers and swapped names."""

from __future__ import annotations

import pytest

from playground.rag.groundedness import Grounding, entities_in, numbers_in, polarity

HOURS = (
    "Denver, Colorado - 1420 Wynkoop Street. Monday to Saturday 10 am to 8 pm, Sunday 11 am "
    "to 6 pm.\n\nBoise, Idaho - 301 W Main Street. Monday to Saturday 10 am to 7 pm, closed on "
    "Sundays.\n\nFree clinics: on the first Tuesday of each month, each store hosts an evening "
    "clinic at 6:30 pm."
)
RETURNS = (
    "# Returns policy\n\n- Unused items in their original packaging can be returned within 60 "
    "days of delivery for a full refund.\n- Final-sale items cannot be returned."
)
TENT = (
    "# Trail Tent 2P: owner's manual\n\nPacked weight is 1.6 kg including poles and stakes. "
    "All seams are factory taped, so the tent does not need seam sealing."
)
STOVE = "Never use the stove inside a tent, vestibule or car: risk of carbon monoxide poisoning."


@pytest.fixture(scope="module")
def chunks() -> Grounding:
    """The chunks embedded once (real MiniLM) for every case below."""
    return Grounding([HOURS, RETURNS, TENT, STOVE])


@pytest.mark.parametrize(
    "answer",
    [
        "The Boise store is closed on Sundays.",
        "Denver is open Monday to Saturday from 10 am to 8 pm.",
        "Unused items can be returned within 60 days of delivery for a full refund.",
        "The Trail Tent 2P weighs 1.6 kg including poles and stakes.",
        "The seams are factory taped, so the tent does not need seam sealing.",
        "No, never use the stove inside a tent or vestibule.",
        "Each store hosts an evening clinic on the first Tuesday of each month.",
    ],
)
def test_faithful_restatements_stay_grounded(chunks: Grounding, answer: str) -> None:
    assert chunks.score(answer) == 1.0, chunks.check(answer)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("The Boise store is open on Sundays.", "contradicts"),  # the example
        ("Unused items can be returned within 90 days of delivery.", "states 90"),
        ("The Trail Tent 2P weighs 2.6 kg including poles and stakes.", "states 2.6"),
        ("The seams are not taped, so the tent needs seam sealing.", "contradicts"),
        ("You can use the stove inside the vestibule.", "contradicts"),
        ("Final-sale items can be returned.", "contradicts"),
        ("Each store hosts an evening clinic on the first Thursday of each month.", "thursday"),
    ],
)
def test_contradictions_are_not_grounded(chunks: Grounding, answer: str, why: str) -> None:
    checks = chunks.check(answer)
    assert chunks.score(answer) == 0.0, checks
    assert why in checks[0].reason and "\n" not in checks[0].reason


def test_only_the_contradicting_sentence_counts_against_the_answer(chunks: Grounding) -> None:
    answer = "Unused items can be returned within 60 days. Final-sale items can be returned."
    assert chunks.score(answer) == 0.5


def test_the_similarity_only_baseline_misses_what_the_rules_catch(chunks: Grounding) -> None:
    answer = "The Boise store is open on Sundays."
    chunks.check_consistency = False
    try:
        assert chunks.score(answer) == 1.0  # the earlier score called this grounded
    finally:
        chunks.check_consistency = True
    assert chunks.score(answer) == 0.0


def test_rules_read_numbers_negations_and_names() -> None:
    assert numbers_in("about five minutes, 3,000 mm, $6.95") == {"5", "3000", "6.95"}
    assert numbers_in("the Summit 4S and Trail Tent 2P") == set()
    assert "open" in polarity("closed on Sundays")[1]
    assert "tap" in polarity("the seams are not taped")[1]
    assert "tap" in polarity("the seams are taped")[0]
    assert {"boise", "sunday", "4s"} <= entities_in("The Boise store and the 4S are shut Sundays")


def test_a_citation_marker_is_not_a_number_the_chunks_must_state() -> None:
    """The embedded model often starts with "[1]" (the chunk it used): that is no figure."""
    from playground.rag.groundedness import numbers_in

    assert numbers_in("[1] Yes, the tent is waterproof [2, 3].") == set()
    assert numbers_in("[1] It weighs 1.6 kg.") == {"1.6"}


def test_an_answer_citing_its_chunk_is_still_grounded() -> None:
    from playground.rag.groundedness import groundedness_score

    chunk = (
        "# Trail Tent 2P\n\nAll fly and floor seams are factory taped, so the tent is "
        "waterproof out of the box and does not need seam sealing."
    )
    assert groundedness_score("[1] Yes, the trail tent is waterproof.", [chunk]) == 1.0
