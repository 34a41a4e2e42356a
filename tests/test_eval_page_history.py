"""A dataset from History: selected runs become rows, the best-rated answer the reference."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

from playground.config import load_settings
from playground.eval.datasets import Datasets, iter_rows
from playground.store import Store
from tests.history_fixtures import T0, make_run

ROOT = Path(__file__).resolve().parent.parent
HISTORY = str(ROOT / "views" / "history.py")
EVALUATE = str(ROOT / "views" / "evaluate.py")


def seed(store: Store) -> list[str]:
    """Two rated runs and one nobody rated, newest first in History."""
    ids = []
    for i, (question, stars) in enumerate(
        [("Is the tent waterproof?", (2, 5)), ("How long is the warranty?", (4, 3)),
         ("Does the stove fold?", None)]
    ):  # fmt: skip
        run = make_run(
            models=("local/a", "openai/b"),
            prompt="{{ question }}",
            texts=(f"a says about {question}", f"b says about {question}"),
            variables={"question": question},
            created_at=T0 + timedelta(minutes=i),
        )
        store.runs.save_run(run)
        if stars is not None:
            for result, n in zip(run.results, stars, strict=True):
                store.ratings.add_rating(result.id, n, session_id="s")
        ids.append(run.id)
    return ids


def test_selected_runs_become_a_dataset_with_the_best_answer_as_reference(store: Store) -> None:
    ids = seed(store)
    at = AppTest.from_file(HISTORY, default_timeout=60).run()
    assert not at.exception, at.exception
    at.session_state["hist_table_1"] = {
        "selection": {"rows": [0, 1, 2], "columns": [], "cells": []}
    }
    at.run()
    at.button(key="hist_dataset").click().run()
    assert not at.exception, at.exception
    [note] = [s.value for s in at.success]
    assert "3 rows, 2 with a best-rated answer" in note

    [info] = Datasets(load_settings()).list()
    assert info.name == "from-history"
    rows = {row["source_run"]: row for row in iter_rows(info)}
    assert set(rows) == set(ids)
    tent, warranty, stove = (rows[i] for i in ids)
    assert tent["question"] == "Is the tent waterproof?"
    assert tent["expected"] == "b says about Is the tent waterproof?"  # 5 stars beat 2
    assert warranty["expected"] == "a says about How long is the warranty?"  # 4 beat 3
    assert stove["expected"] == "" and stove["expected_stars"] is None  # nobody rated it

    # the Evaluate page offers it as a stored dataset with its columns
    evaluate = AppTest.from_file(EVALUATE, default_timeout=60).run()
    evaluate.radio(key="ev_source").set_value("Stored").run()
    assert not evaluate.exception, evaluate.exception
    assert evaluate.selectbox(key="ev_stored").value == info.ref


def test_runs_without_variables_are_refused_in_one_sentence(store: Store) -> None:
    store.runs.save_run(make_run(models=("local/a",)))
    at = AppTest.from_file(HISTORY, default_timeout=60).run()
    at.session_state["hist_table_1"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    at.button(key="hist_dataset").click().run()
    assert not at.exception, at.exception
    [error] = [e.value for e in at.error]
    assert "no template variables" in error and "\n" not in error
    assert Datasets(load_settings()).list() == []
