"""The Shared run page (AppTest): ?run=ID read-only, ?run=A&vs=B comparison, unknown ids."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.history_fixtures import T0, make_run

PAGE = str(Path(__file__).resolve().parent.parent / "views" / "run.py")


def page(**params: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    return at


def test_without_an_id_it_explains_where_links_come_from(store):
    assert "?run=ID" in page().info[0].value


def test_unknown_id_is_a_clear_message(store):
    at = page(run="doesnotexist")
    assert at.error[0].value.startswith("No run with id `doesnotexist`")


def test_a_shared_run_shows_answers_ratings_and_no_editing_widgets(store):
    run = make_run(errors={"openai/gpt-4o-mini": "The endpoint answered 500; try again later."})
    store.runs.save_run(run)
    store.ratings.add_rating(run.results[0].id, 4, "good enough", session_id="s")
    at = page(run=run.id)
    markdown = [m.value for m in at.markdown]
    assert "Answer from local/smollm2-135m-instruct: yes, it is waterproof." in markdown
    assert at.error[0].value == "The endpoint answered 500; try again later."
    captions = [c.value for c in at.caption]
    assert "★ 4.0 (1)" in captions and "💬 good enough" in captions
    assert len(at.button) == 0 and len(at.text_input) == 0 and len(at.get("feedback")) == 0


def test_a_shared_comparison_puts_the_older_run_first(store):
    old = make_run(models=("local/a",), created_at=T0)
    new = make_run(models=("local/a",), temperature=1.0, created_at=T0 + timedelta(days=1))
    store.runs.save_run(old)
    store.runs.save_run(new)
    at = page(run=new.id, vs=old.id)
    assert [h.value for h in at.subheader] == ["Baseline (older)", "Newer"]
    assert "- temperature 0.7 -> 1.0" in [m.value for m in at.markdown]


def test_a_run_on_a_model_that_no_longer_exists_still_displays(store):
    run = make_run(models=("gone-endpoint/llama",), texts=("Still here.",))
    store.runs.save_run(run)
    at = page(run=run.id)
    assert "Still here." in [m.value for m in at.markdown]
    assert at.warning[0].value.startswith("gone-endpoint/llama is no longer available.")


def _saved(store, run_id: str, text: str):
    run = make_run(models=("local/a",), texts=(text,))
    run.id = run_id
    store.runs.save_run(run)
    return run


def test_the_eight_characters_of_a_heading_open_the_run(store):
    """Defect 13: /shared?run=1a2b3c4d (what a 'Run 1a2b3c4d' heading shows) works."""
    _saved(store, "1a2b3c4d-aaaa-bbbb", "The one wanted.")
    _saved(store, "9f9f9f9f-cccc-dddd", "Another run.")
    at = page(run="1a2b3c4d")
    assert not at.error
    assert "The one wanted." in [m.value for m in at.markdown]


def test_an_ambiguous_prefix_is_one_sentence_asking_for_more(store):
    _saved(store, "abcd0001-x", "one")
    _saved(store, "abcd0002-y", "two")
    at = page(run="abcd")
    assert [e.value for e in at.error] == [
        "Run id abcd is ambiguous: it starts abcd0001-x, abcd0002-y; give more characters."
    ]
    assert not [m.value for m in at.markdown if m.value in ("one", "two")]


def test_stored_answers_render_headings_small_with_a_raw_view(store):
    """Defect 14: a '## Features' answer is a bold line on the Shared run page, raw on demand."""
    _saved(store, "feedbeef-1", "## Features\n\n- light")
    at = page(run="feedbeef")
    shown = [m.value for m in at.markdown]
    assert any(v.startswith("**Features**") and v.endswith("- light") for v in shown)
    assert not any(v.lstrip().startswith("#") for v in shown)
    assert [c.value for c in at.code] == ["## Features\n\n- light"]
