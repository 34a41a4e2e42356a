"""The History page (AppTest): pages, filters, opening, rerunning, comparing, sharing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

from playground.records import Draft
from tests.history_fixtures import T0, make_run, seed_runs

PAGE = str(Path(__file__).resolve().parent.parent / "views" / "history.py")


def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    return at


def select(at: AppTest, *rows: int, page_no: int = 1) -> AppTest:
    at.session_state[f"hist_table_{page_no}"] = {
        "selection": {"rows": list(rows), "columns": [], "cells": []}
    }
    at.run()
    assert not at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "warning", "error")
             for e in at.get(kind)]  # fmt: skip
    return "\n".join(str(p) for p in parts)


def test_empty_history_says_how_to_start(store):
    assert "No runs yet. Run a prompt in the Playground" in texts(page())


def test_runs_are_paginated_newest_first(store):
    saved = seed_runs(store, 25, models=("local/a",))
    at = page()
    table = at.dataframe[0].value
    assert len(table) == 20
    assert table["run"].iloc[0] == saved[-1].id
    assert "25 runs match." in texts(at)
    at.number_input(key="hist_page").set_value(2).run()
    assert list(at.dataframe[0].value["run"]) == [r.id for r in reversed(saved[:5])]


def test_search_and_model_filter_narrow_the_list(store):
    store.runs.save_run(make_run(models=("local/a",), texts=("Use the blue stove.",)))
    store.runs.save_run(make_run(models=("openai/b",), texts=("Bring a tarp.",)))
    at = page()
    at.text_input(key="hist_search").input("stove").run()
    assert list(at.dataframe[0].value["models"]) == ["local/a"]
    at.text_input(key="hist_search").input("").run()
    at.selectbox(key="hist_model").select("openai/b").run()
    assert list(at.dataframe[0].value["models"]) == ["openai/b"]
    at.text_input(key="hist_search").input("nothing like this").run()
    assert "No run matches these filters." in texts(at)


def test_selecting_a_run_shows_it_with_a_permalink_and_opens_it(store):
    run = make_run(variables={"question": "Is it waterproof?"})
    store.runs.save_run(run)
    store.ratings.add_rating(run.results[0].id, 5, "spot on", session_id="s")
    at = select(page(), 0)
    shown = texts(at)
    assert "Answer from openai/gpt-4o-mini: yes, it is waterproof." in shown
    assert "★ 5.0 (1)" in shown and "spot on" in shown
    assert at.code[0].value == f"/shared?run={run.id}"
    at.button(key="hist_open").click().run()
    draft = at.session_state["pending_draft"]
    assert isinstance(draft, Draft)
    assert draft.model_ids == ["local/smollm2-135m-instruct", "openai/gpt-4o-mini"]
    assert draft.variables == {"question": "Is it waterproof?"}
    assert "pending_autorun" not in at.session_state


def test_rerun_as_it_was_asks_the_playground_to_run(store):
    store.runs.save_run(make_run())
    at = select(page(), 0)
    at.button(key="hist_rerun").click().run()
    assert at.session_state["pending_autorun"] is True
    assert isinstance(at.session_state["pending_draft"], Draft)


def test_two_runs_side_by_side_spell_out_what_changed(store):
    old = make_run(models=("local/a",), temperature=0.7, created_at=T0)
    new = make_run(models=("local/a",), temperature=0.2, system="Be brief.",
                   created_at=T0 + timedelta(hours=1))  # fmt: skip
    store.runs.save_run(old)
    store.runs.save_run(new)
    at = select(page(), 0, 1)
    shown = texts(at)
    assert "- temperature 0.7 -> 0.2\n- system message changed" in shown
    assert [h.value for h in at.subheader] == ["Side by side", "Baseline (older)", "Newer"]
    assert at.code[0].value == f"/shared?run={old.id}&vs={new.id}"


def test_a_run_whose_model_is_gone_still_displays_and_opens(store):
    run = make_run(models=("retired/model-x",), texts=("An old answer.",))
    store.runs.save_run(run)
    at = select(page(), 0)
    shown = texts(at)
    assert "An old answer." in shown
    assert "retired/model-x is no longer available." in shown
    at.button(key="hist_open").click().run()
    assert not at.exception
    assert "retired/model-x is no longer available" in at.session_state["pending_draft"].note


def test_export_buttons_are_offered(store):
    store.runs.save_run(make_run())
    at = page()
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Answers CSV", "Answers JSON", "Ratings CSV", "Ratings + votes JSON"]


def test_times_and_missing_ratings_read_as_words(store):
    run = make_run()
    store.runs.save_run(run)
    at = page()
    (row,) = at.dataframe[0].value.to_dict("records")
    assert (row["when"], row["best stars"]) == ("1 Nov 2026, 09:00 UTC", "not rated")
    at = select(at, 0)
    assert f"Run `{run.id}` · 1 Nov 2026, 09:00 UTC · app · " in texts(at)
    assert "None" not in texts(at) + " ".join(str(v) for v in row.values())


def test_rerun_as_it_was_asks_before_replacing_an_edited_editor(store):
    """Defect 16: "Rerun as it was" replaced the Playground's editor without asking."""
    store.runs.save_run(make_run())
    at = page()
    at.session_state["pg_variant_ids"] = [0]  # the Playground was used in this session
    at = select(at, 0)
    at.button(key="hist_rerun").click().run()
    assert "pending_draft" not in at.session_state  # nothing replaced yet
    assert at.button(key="hist_confirm_replace").label == "Replace and run"
    at.button(key="hist_confirm_replace").click().run()
    assert at.session_state["pending_autorun"] is True
    assert isinstance(at.session_state["pending_draft"], Draft)


def test_cancelling_the_question_keeps_the_editor(store):
    store.runs.save_run(make_run())
    at = page()
    at.session_state["pg_variant_ids"] = [0]
    at = select(at, 0)
    at.button(key="hist_open").click().run()
    at.button(key="hist_cancel_replace").click().run()
    assert "pending_draft" not in at.session_state


def test_two_runs_prompts_are_diffed_word_by_word(store):
    """Comfort: a text diff of two runs' prompts in History."""
    old = make_run(models=("local/a",), prompt="Is the trail tent waterproof?", created_at=T0)
    new = make_run(
        models=("local/a",), prompt="Is the dome tent waterproof?", created_at=T0 + timedelta(1)
    )
    store.runs.save_run(old)
    store.runs.save_run(new)
    at = select(page(), 0, 1)
    (expander,) = [e for e in at.expander if e.label == "Prompt changes, word by word"]
    shown = [m.value for m in expander.markdown]
    assert "**User message**  \nIs the :red[~~trail~~] :green[**dome**] tent waterproof?" in shown
