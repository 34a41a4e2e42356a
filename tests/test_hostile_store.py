"""Hostile sizes and characters reaching the run store: kept or refused in one sentence."""

from __future__ import annotations

import pytest

from playground.errors import StoreError
from playground.models.base import Message
from playground.store.runs import MAX_ANSWER_CHARS, MAX_PROMPT_CHARS
from tests.history_fixtures import make_result, make_run


def test_a_huge_answer_is_kept_cut_short_with_a_marker(backend_store):
    run = make_run(models=("local/a",))
    run.results[0].text = "word " * 400_000  # 2,000,000 characters
    backend_store.runs.save_result(run, run.results[0])

    kept = backend_store.runs.get_run(run.id).results[0].text
    assert kept.startswith("word word")
    assert kept.endswith(
        f"[answer truncated: the run store keeps {MAX_ANSWER_CHARS:,} characters, "
        "1,000,000 more were not kept]"
    )
    assert len(kept) < MAX_ANSWER_CHARS + 200


def test_nul_characters_and_long_names_from_outside_do_not_fail_the_save(backend_store):
    # PostgreSQL refuses NUL in text and strings longer than a column: both raised DataError.
    run = make_run(models=("local/a",), variables={"q": "a\x00b"})
    result = run.results[0]
    result.text = "before\x00after"
    result.variant_name = "v" * 500
    result.user_template = "{{ q }}\x00"
    backend_store.runs.save_run(run)

    stored = backend_store.runs.get_run(run.id)
    assert stored.results[0].text == "before\ufffdafter"
    assert stored.results[0].variant_name == "v" * 199 + "…"
    assert stored.variables == {"q": "a\x00b"}


def test_a_prompt_over_the_store_cap_is_one_sentence_not_a_data_error(backend_store):
    run = make_run(models=("local/a",))
    result = make_result(model_id="local/a")
    result.messages = [Message(role="user", content="x" * (MAX_PROMPT_CHARS + 1))]
    run.results = [result]
    with pytest.raises(StoreError) as caught:
        backend_store.runs.save_run(run)
    assert str(caught.value) == (
        f"The prompt of local/a (default) is {MAX_PROMPT_CHARS + 1 + len(result.user_template):,}"
        f" characters with its variables, more than the {MAX_PROMPT_CHARS:,} the run store "
        "keeps; shorten the prompt or its variables."
    )
    assert backend_store.runs.count_runs() == 0
