"""'Save as flow' from a batch on the Evaluate page writes the evaluation block and figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from playground.config import load_settings
from playground.flows.registry import FlowRegistry
from tests.eval_support import EvalStub, stub_config
from tests.test_page_evaluate import PAGE, finish_batch


def test_save_as_flow_keeps_the_evaluation_block_and_batch_figures(
    home: Path, write_config: Any
) -> None:
    answers = {"return an unused item": "Within 60 days.", "Beacon 300 run on high": "3.5 hours"}
    with EvalStub(answers=answers) as stub:
        write_config(stub_config(stub.base_url))
        at = AppTest.from_file(PAGE, default_timeout=120).run()
        at.multiselect(key="ev_models").set_value(["stub/stub-model"]).run()
        at.button(key="ev_run").click().run()
        finish_batch(at)
        batch_id = at.selectbox(key="ev_show").value
        at.text_input(key="ev_flow_name").set_value("gear-answers").run()
        at.button(key="ev_flow_save").click().run()
        assert not at.exception, at.exception
    [success] = [s.value for s in at.success]
    assert "Saved gear-answers v1" in success and "playground flow test gear-answers@1" in success

    spec = FlowRegistry(load_settings()).get("gear-answers", 1)
    assert spec.model.id == "stub/stub-model"
    assert spec.evaluation is not None
    assert spec.evaluation.dataset.startswith("gear-questions@")  # pinned to the rows it ran
    assert [s.label for s in spec.evaluation.scorers] == ["has-keyword", "latency"]
    assert spec.evaluation.gate.pass_rate == 0.8
    batch = spec.evidence.model_dump()["batch"]
    assert batch["id"] == batch_id and batch["cells"] == 18
    assert (batch["passed"], batch["failed"]) == (3, 15)
    assert batch["pass_rate"] == round(3 / 18, 4) and batch["gate_passed"] is False
    assert batch["ci95"][0] < batch["pass_rate"] < batch["ci95"][1]
    assert len(spec.evidence.runs) == 18
    assert "question" in spec.inputs and spec.inputs["question"].default is None


def test_a_bad_flow_name_is_one_sentence(home: Path, write_config: Any) -> None:
    with EvalStub() as stub:
        write_config(stub_config(stub.base_url))
        at = AppTest.from_file(PAGE, default_timeout=120).run()
        at.multiselect(key="ev_models").set_value(["stub/stub-model"]).run()
        at.button(key="ev_run").click().run()
        finish_batch(at)
        at.text_input(key="ev_flow_name").set_value("Bad Name!").run()
        at.button(key="ev_flow_save").click().run()
    assert not at.exception, at.exception
    [error] = [e.value for e in at.error]
    assert "Bad Name!" in error and "\n" not in error
    assert FlowRegistry(load_settings()).list() == []
