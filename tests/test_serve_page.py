"""The Monitor page: figures per flow version, charts, worst calls and firing alerts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.config import load_settings
from playground.models.base import Message, ModelParams, Usage
from playground.records import Result, Run, utc_now
from playground.serve.charts import monitor_figures
from playground.serve.monitor import monitor_report
from playground.store import Store

PAGE = str(Path(__file__).resolve().parent.parent / "views" / "monitor.py")


def served_run(version: int, latency: float, error: str | None = None, ago_h: float = 0) -> Run:
    """A stored served call of gear-support at a version."""
    when = utc_now() - timedelta(hours=ago_h)
    result = Result(
        model_id="local/smollm2-135m-instruct",
        messages=[Message(role="user", content="Is the tent waterproof?")],
        params=ModelParams(max_tokens=8),
        text="" if error else "Yes, it is.",
        error=error,
        usage=Usage(12, 4),
        latency_ms=latency,
        cost_usd=0.001,
        created_at=when,
    )
    return Run(
        source="serve",
        variables={"question": "Is the tent waterproof?"},
        flow_name="gear-support",
        flow_version=version,
        results=[result],
        created_at=when,
    )


def seed(store: Store) -> list[Run]:
    runs = [served_run(1, 100.0 + i, ago_h=30) for i in range(3)]
    runs += [served_run(2, 200.0 + 10 * i) for i in range(4)]
    runs.append(served_run(2, 900.0, error="Cannot reach http://x for the model; check it."))
    runs.append(Run(source="app", results=[]))  # not served: never on the Monitor
    for run in runs:
        store.runs.save_run(run)
    return runs


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "error", "success")
             for e in at.get(kind)]  # fmt: skip
    return "\n".join(str(p) for p in parts)


def test_empty_monitor_says_how_to_serve(store: Store) -> None:
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert "No served calls in the last 24 hours; serve a flow" in texts(at)


def test_monitor_shows_versions_charts_worst_calls_and_a_firing_alert(
    store: Store, write_config: object
) -> None:
    write_config(  # type: ignore[operator]
        '[[alerts]]\nname = "errors"\nmetric = "error_rate"\noperator = ">"\nvalue = 0.1\n'
        'window = "1h"\n'
    )
    runs = seed(store)
    store.traces.flip_alert("errors", True, 0.2)
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert "Alert **errors** is firing: error_rate > 0.1 over 1h (now 0.2, since " in texts(at)
    assert texts(at).split("since ", 1)[1].split(")", 1)[0].endswith(" UTC")  # not ISO
    table = at.dataframe[0].value
    assert list(table["version"]) == ["v2"]  # the 24 h window leaves version 1 out
    assert table["requests"].iloc[0] == 5 and table["error rate"].iloc[0] == "20%"
    assert table["p50"].iloc[0] == "215 ms"
    # no feedback and no online scores yet: a dash, never "None" or NaN in front of people
    assert table["mean stars"].iloc[0] == "—" and table["online pass rate"].iloc[0] == "—"
    worst = at.dataframe[1].value
    assert worst["run_id"].iloc[0] == runs[7].id and "Cannot reach" in worst["why"].iloc[0]
    assert worst["when"].iloc[0].endswith(" UTC")  # a time for people, not ISO
    for frame in (table, worst):
        assert not frame.isna().any().any(), frame[frame.isna().any(axis=1)]
    assert len(at.get("plotly_chart")) == 7

    at.selectbox(key="mon_window").set_value("Last 7 days").run()
    assert not at.exception
    assert list(at.dataframe[0].value["version"]) == ["v1", "v2"]


def test_figures_have_a_series_per_version(store: Store) -> None:
    seed(store)
    report = monitor_report(load_settings(), "7d")
    figures = monitor_figures(report)
    names = {trace.name for trace in figures["requests"].data}
    assert names == {"gear-support@v1", "gear-support@v2"}
    assert sum(sum(t.y) for t in figures["errors"].data) == 1


def test_add_to_dataset_turns_picked_calls_and_their_feedback_into_eval_rows(
    store: Store,
) -> None:
    from playground.eval.datasets import Datasets, iter_rows

    runs = seed(store)
    failed, slow = runs[7], runs[6]
    store.ratings.add_rating(slow.results[0].id, 2, "too slow and vague", "serve")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert at.button(key="mon_add").disabled  # nothing picked yet
    at.multiselect(key="mon_pick").set_value([failed.id, slow.id]).run()
    assert at.text_input(key="mon_dataset").value == "gear-support-production"
    at.button(key="mon_add").click().run()
    assert not at.exception
    assert "Added 2 call(s) to dataset gear-support-production@" in texts(at)
    info = Datasets(load_settings()).get("gear-support-production")
    rows = {row["run_id"]: row for row in iter_rows(info)}
    assert set(rows) == {failed.id, slow.id}
    assert rows[slow.id]["question"] == "Is the tent waterproof?"  # the flow's input column
    assert rows[slow.id]["answer"] == "Yes, it is."
    assert (rows[slow.id]["stars"], rows[slow.id]["comment"]) == (2, "too slow and vague")
    assert rows[failed.id]["error"].startswith("Cannot reach") and rows[failed.id]["stars"] is None
    assert rows[slow.id]["version"] == 2

    # the same call again adds nothing; a new one makes a new version with all rows
    at.multiselect(key="mon_pick").set_value([slow.id, runs[5].id]).run()
    at.button(key="mon_add").click().run()
    message = texts(at)
    assert "Added 1 call(s) to dataset gear-support-production@" in message
    version = message.split("gear-support-production@", 1)[1].split(" ", 1)[0]
    newest = Datasets(load_settings()).get("gear-support-production", version)
    assert newest.rows == 3 and newest.version != info.version

    at.text_input(key="mon_dataset").set_value("Bad Name!").run()
    at.button(key="mon_add").click().run()
    assert not at.exception
    assert "Dataset name 'Bad Name!' is not allowed" in texts(at)


@pytest.mark.browser
def test_monitor_page_in_chromium_shows_the_alert_and_charts(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from tests.browser_helpers import chromium, fresh_page, open_app, running_app, screenshot

    home = tmp_path / "home"
    store = Store(f"sqlite:///{home / 'playground.db'}")
    seed(store)
    store.traces.flip_alert("errors", True, 0.2)
    store.close()
    config = tmp_path / "playground.toml"
    config.write_text(
        '[[alerts]]\nname = "errors"\nmetric = "error_rate"\noperator = ">"\nvalue = 0.1\n'
        'window = "1h"\n',
        encoding="utf-8",
    )
    with running_app(home, cwd=tmp_path) as url, chromium() as browser, fresh_page(browser) as page:
        open_app(page, f"{url}/monitor", "Monitor")
        expect(page.get_by_text("is firing: error_rate > 0.1 over 1h")).to_be_visible()
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
        expect(page.locator(".js-plotly-plot")).to_have_count(7)  # they draw one by one
        expect(page.get_by_text("no data in this window").first).to_be_visible()
        screenshot(page, tmp_path, "monitor")

        # Add to dataset: pick the failed call, add it, see where it went
        picker = page.get_by_role("combobox", name="Calls")
        picker.click()
        picker.press_sequentially("Cannot")  # typing filters the calls and opens the list
        page.get_by_role("option").filter(has_text="Cannot reach").first.click()
        page.keyboard.press("Escape")
        add = page.get_by_role("button", name="Add to dataset")
        expect(add).to_be_enabled(timeout=30_000)  # after the rerun that the pick causes
        add.click()
        expect(
            page.get_by_text("Added 1 call(s) to dataset gear-support-production@")
        ).to_be_visible(timeout=30_000)
        screenshot(page, tmp_path, "monitor-added")
