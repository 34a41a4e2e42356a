"""The Evaluate page (AppTest): sample dataset, a model, scorers, estimate, run, results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from tests.eval_support import EvalStub, stub_config

PAGE = str(Path(__file__).resolve().parent.parent / "views" / "evaluate.py")


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error")
             for e in at.get(kind)]  # fmt: skip
    return "\n".join(str(p) for p in parts)


def finish_batch(at: AppTest, timeout: float = 120) -> AppTest:
    """Wait for the page's background batch to end, then rerun the page as the poller would."""
    at.session_state["ev_live"].join(timeout)
    return at.run()


def test_run_the_sample_dataset_and_see_results(home: Path, write_config: Any) -> None:
    answers = {"return an unused item": "Within 60 days.", "Beacon 300 run on high": "3.5 hours"}
    with EvalStub(answers=answers) as stub:
        write_config(stub_config(stub.base_url))
        at = AppTest.from_file(PAGE, default_timeout=120).run()
        assert not at.exception, at.exception
        assert "No batch yet." in texts(at)
        at.multiselect(key="ev_models").set_value(["stub/stub-model"]).run()
        assert "Estimate: 18 cells, 18 model calls" in texts(at)
        at.button(key="ev_run").click().run()
        assert not at.exception, at.exception
        finish_batch(at)
        assert not at.exception, at.exception
    shown = texts(at)
    assert "18/18 cells · done · gate NOT met" in shown
    [summary] = [d.value for d in at.dataframe if "passed" in d.value.columns]
    # two scripted answers pass, and "I do not know." happens to contain the keyword "not"
    assert summary["passed"].tolist() == [3] and summary["failed"].tolist() == [15]
    assert len(at.get("plotly_chart")) == 3  # heatmap, quality vs cost, vs latency
    assert stub.requests == 18


def test_stored_datasets_include_the_imported_sample(home: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.radio(key="ev_source").set_value("Stored").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="ev_stored").value.startswith("gear-questions@")
    assert "18 rows" in texts(at)
    # no model picked: nothing can run, and the page says what is missing
    at.multiselect(key="ev_models").set_value([]).run()
    assert at.button(key="ev_run").disabled
    assert "Pick a dataset, at least one configuration" in texts(at)


def test_cancel_stops_new_cells_and_keeps_the_finished_ones(home: Path, write_config: Any) -> None:
    with EvalStub(latency_s=0.4) as stub:
        write_config(stub_config(stub.base_url, max_concurrency=1))
        at = AppTest.from_file(PAGE, default_timeout=120).run()
        at.multiselect(key="ev_models").set_value(["stub/stub-model"]).run()
        at.button(key="ev_run").click().run()
        assert not at.exception, at.exception
        # while it runs, the page shows a live progress bar and the Run button is disabled
        assert at.button(key="ev_run").disabled
        assert at.button(key="ev_cancel") is not None
        at.button(key="ev_cancel").click().run()
        finish_batch(at)
        assert not at.exception, at.exception
    [warning] = [w.value for w in at.warning]
    assert "cancelled after" in warning and "playground eval resume" in warning
    done = int(warning.split("after ")[1].split(" ")[0])
    assert 0 < done < 18
    assert stub.requests == done  # no cell started after Cancel
    assert not at.button(key="ev_run").disabled


def test_drill_down_and_baseline_compare(home: Path, write_config: Any) -> None:
    answers = {"return an unused item": "Within 60 days."}
    with EvalStub(answers=answers) as stub:
        write_config(stub_config(stub.base_url))
        at = AppTest.from_file(PAGE, default_timeout=120).run()
        at.multiselect(key="ev_models").set_value(["stub/stub-model"]).run()
        at.button(key="ev_run").click().run()
        finish_batch(at)
        first = at.selectbox(key="ev_show").value
        # the second batch answers one more row well: one row goes fail -> pass
        stub.answers["Beacon 300 run on high"] = "3.5 hours"
        at.number_input(key="ev_max_tokens").set_value(65).run()  # new params: no cache hit
        at.button(key="ev_run").click().run()
        finish_batch(at)
        assert not at.exception, at.exception
    assert at.selectbox(key="ev_show").value != first  # the results follow the new batch
    at.selectbox(key="ev_baseline").set_value(first).run()
    assert not at.exception, at.exception
    assert "0 rows went pass → fail" in texts(at)
    [comparison] = [d.value for d in at.dataframe if "pass → fail" in d.value.columns]
    assert comparison["pass → fail"].tolist() == ["none"]
    assert comparison["fail → pass"].tolist() != ["none"]
    assert comparison["significant"].tolist() == ["no"]  # one flipped row proves nothing
    assert comparison["p-value (McNemar)"].tolist() == ["1.000"]
    assert "no difference is significant" in texts(at)
    # drill-down: the first cell's answer and every scorer's verdict with its reason
    at.selectbox(key="ev_cell_pick").set_value(0).run()
    assert not at.exception, at.exception
    [verdicts] = [d.value for d in at.dataframe if "reason" in d.value.columns]
    assert verdicts["scorer"].tolist() == ["has-keyword", "latency"]
    assert all(verdicts["reason"].str.len() > 0)
    assert "No retrieval" in texts(at)
