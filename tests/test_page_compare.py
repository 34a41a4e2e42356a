"""The Compare page (AppTest): ranked configurations, metrics, charts, filters, drill-down."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.config import load_settings
from playground.store import Store, open_store
from tests.history_fixtures import make_run

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "compare.py")


@pytest.fixture
def store(home: Path) -> Store:
    """The run store in a fresh data home."""
    return open_store(load_settings())


def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    return at


def rated(store: Store) -> None:
    """Three runs of local/a vs openai/b: b gets 5 stars and wins the votes; a gets 2-3."""
    for stars_a, stars_b in ((2, 5), (3, 5), (3, 4)):
        run = make_run(models=("local/a", "openai/b"))
        run.results[1].cost_usd = 0.0004
        store.save_run(run)
        a, b = run.results
        store.add_rating(a.id, stars_a, session_id="s")
        store.add_rating(b.id, stars_b, session_id="s")
        store.add_preference(run.id, [a.id, b.id], "best", best=b.id, session_id="s")


def test_empty_store_says_what_to_do(store):
    at = page()
    assert "No runs match." in at.info[0].value


def test_configurations_are_ranked_with_every_metric(store):
    rated(store)
    at = page()
    table = at.dataframe[0].value
    assert list(table["rank"]) == [1, 2]
    assert table["configuration"].iloc[0].startswith("#1 openai/b t=0.7 · Is the trail tent")
    assert list(table["quality"]) == ["4.67 (3.23-5.00, n=3)", "2.67 (1.23-4.10, n=3)"]
    assert list(table["win rate"]) == [1.0, 0.0]
    assert table["BT score"].iloc[0] > 1000 > table["BT score"].iloc[1]
    assert list(table["harm"]) == ["not checked", "not checked"]
    assert list(table["latency ms"]) == [800.0, 800.0]
    assert table["cost $/call"].iloc[0] == pytest.approx(0.0004)
    assert len(at.get("plotly_chart")) == 3


def test_without_ratings_charts_say_so(store):
    store.save_run(make_run())
    at = page()
    assert len(at.dataframe[0].value) == 2
    assert at.info[0].value.startswith("No ratings yet")
    assert len(at.get("plotly_chart")) == 0


def test_model_and_template_filters(store):
    rated(store)
    store.save_run(make_run(models=("local/a",), prompt="Pack list for a winter hike"))
    at = page()
    assert len(at.dataframe[0].value) == 3
    at.selectbox(key="cmp_model").select("openai/b").run()
    assert list(at.dataframe[0].value["hash"].str.len()) == [16]
    at.selectbox(key="cmp_model").select(None).run()
    at.text_input(key="cmp_template").input("winter").run()
    assert len(at.dataframe[0].value) == 1


def test_selecting_a_configuration_lists_its_runs_with_links(store):
    rated(store)
    at = page()
    at.session_state["cmp_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.subheader[0].value.startswith("Runs of #1 openai/b")
    runs = at.dataframe[1].value
    assert len(runs) == 3
    assert runs["open"].iloc[0] == f"/shared?run={runs['run'].iloc[0]}"
    assert sorted(runs["stars"]) == [4.0, 5.0, 5.0]
