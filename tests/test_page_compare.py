"""The Compare page (AppTest): ranked configurations, metrics, charts, filters, drill-down."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

from playground.config import load_settings
from playground.flows.registry import FlowRegistry
from playground.store import Store
from tests.history_fixtures import T0, make_run

PAGE = str(Path(__file__).resolve().parent.parent / "views" / "compare.py")


def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    return at


def rated(store: Store) -> None:
    """Three runs of local/a vs openai/b: b gets 5 stars and wins the votes; a gets 2-3."""
    for stars_a, stars_b in ((2, 5), (3, 5), (3, 4)):
        run = make_run(models=("local/a", "openai/b"))
        run.results[1].cost_usd = 0.0004
        store.runs.save_run(run)
        a, b = run.results
        store.ratings.add_rating(a.id, stars_a, session_id="s")
        store.ratings.add_rating(b.id, stars_b, session_id="s")
        store.ratings.add_preference(run.id, [a.id, b.id], "best", best=b.id, session_id="s")


def test_empty_store_says_what_to_do(store):
    at = page()
    assert "No runs match." in at.info[0].value


def test_configurations_are_ranked_with_every_metric(store):
    rated(store)
    at = page()
    table = at.dataframe[0].value
    assert list(table["rank"]) == [1, 2]
    assert (
        table["configuration"].iloc[0]
        == "#1 openai/b t=0.7 · default · Is the trail tent waterproof?"
    )
    assert list(table["quality"]) == ["4.67 (3.23-5.00, n=3)", "2.67 (1.23-4.10, n=3)"]
    assert list(table["win rate"]) == ["100%", "0%"]
    assert int(table["BT score"].iloc[0]) > 1000 > int(table["BT score"].iloc[1])
    assert list(table["harm"]) == ["not checked", "not checked"]
    assert list(table["latency"]) == ["800 ms", "800 ms"]
    assert list(table["cost / call"]) == ["$0.000400", "$0"]
    assert list(table["honesty"]) == ["—", "—"]
    assert len(at.get("plotly_chart")) == 3
    shown = " ".join(str(v) for v in table.to_numpy().ravel())
    assert "None" not in shown and "nan" not in shown


def test_without_ratings_charts_say_so(store):
    store.runs.save_run(make_run())
    at = page()
    assert len(at.dataframe[0].value) == 2
    assert at.info[0].value.startswith("No ratings yet")
    assert len(at.get("plotly_chart")) == 0


def test_model_and_template_filters(store):
    rated(store)
    store.runs.save_run(make_run(models=("local/a",), prompt="Pack list for a winter hike"))
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
    assert sorted(runs["stars"]) == ["★ 4.0", "★ 5.0", "★ 5.0"]
    assert list(runs.columns[:2]) == ["open", "when"]  # the link first, never cut off
    assert set(runs["latency"]) == {"800 ms"} and set(runs["cost"]) == {"$0.000400"}


def test_a_selected_configuration_saves_as_a_flow_from_its_best_answer(store):
    rated(store)
    at = page()
    at.session_state["cmp_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    chosen = at.dataframe[0].value["hash"].iloc[0]
    assert f"cmp_flow_{chosen}_name" not in [t.key for t in at.text_input]  # drawn once open
    at.session_state[f"cmp_flow_{chosen}_open"] = True  # what clicking "Save as flow" does
    at.run()
    at.text_input(key=f"cmp_flow_{chosen}_name").input("best-config").run()
    at.button(key=f"cmp_flow_{chosen}_save").click().run()
    assert not at.exception
    assert at.success[0].value == "Saved best-config v1"
    (summary,) = FlowRegistry(load_settings()).list()
    assert (summary.name, summary.latest) == ("best-config", 1)
    spec = FlowRegistry(load_settings()).get("best-config", 1)
    assert spec.model.id == "openai/b"
    assert spec.model.params.temperature == 0.7 and spec.model.params.max_tokens == 128
    assert (spec.evidence.ratings.count, spec.evidence.ratings.mean) == (3, 4.67)
    assert len(spec.evidence.runs) == 3


def test_the_best_answer_is_the_best_rated_then_the_newest(store):
    runs = [make_run(models=("local/a",), created_at=T0 + timedelta(minutes=i)) for i in range(3)]
    for run in runs:
        store.runs.save_run(run)
    config = runs[0].results[0].config_hash
    assert (
        store.leaderboard.best_answer(config)[1].id == runs[2].results[0].id
    )  # nothing rated: newest
    store.ratings.add_rating(runs[0].results[0].id, 5, session_id="s")
    store.ratings.add_rating(runs[1].results[0].id, 3, session_id="s")
    best_run, best = store.leaderboard.best_answer(config)
    assert (best_run.id, best.id) == (runs[0].id, runs[0].results[0].id)
    assert store.leaderboard.best_answer("no-such-hash") is None


def test_configurations_differing_in_system_prompt_or_variant_have_different_labels(store):
    for system, variant in (("Be brief.", "brief"), ("Answer in detail.", "detailed")):
        run = make_run(models=("local/a",), system=system)
        run.results[0].variant_name = variant
        store.runs.save_run(run)
    store.runs.save_run(make_run(models=("local/a",), temperature=0.7, created_at=T0))  # no system
    at = page()
    labels = list(at.dataframe[0].value["configuration"])
    unranked = [label.split(" ", 1)[1] for label in labels]
    assert len(set(unranked)) == 3, labels
    assert any("brief · system: Be brief." in label for label in labels), labels
    assert any("detailed · system: Answer in det" in label for label in labels), labels


def test_a_configuration_that_only_failed_shows_no_cost_or_latency(store):
    store.runs.save_run(
        make_run(models=("openai/b",), errors={"openai/b": "Cannot reach the server."})
    )
    at = page()
    (row,) = at.dataframe[0].value.to_dict("records")
    assert (row["cost / call"], row["latency"], row["TTFT"], row["errors"]) == ("—", "—", "—", 1)


def test_charts_of_free_configurations_say_so_instead_of_a_negative_cost_axis(store):
    run = make_run(models=("local/a",))
    store.runs.save_run(run)
    store.ratings.add_rating(run.results[0].id, 4, session_id="s")
    at = page()
    (_stars, latency) = at.get("plotly_chart")  # no cost chart: every call cost $0
    assert any(i.value.startswith("Every rated configuration cost $0 per call") for i in at.info)
    layout = json.loads(latency.proto.spec)["layout"]
    assert layout["xaxis"]["rangemode"] == "tozero"
