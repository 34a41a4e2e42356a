"""The Flows page: list, YAML, diff, labels, export, import and load into the Playground."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from playground.config import load_settings
from playground.flows.loader import parse_spec
from playground.flows.registry import FlowRegistry
from playground.records import Draft
from tests.flow_samples import GOOD

PAGE = str(Path(__file__).resolve().parent.parent / "views" / "flows.py")


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60)


def _two_versions() -> None:
    registry = FlowRegistry(load_settings())
    registry.save(parse_spec(GOOD))
    registry.save(parse_spec(GOOD.replace("temperature: 0.0", "temperature: 0.4")))


def test_empty_home_shows_how_to_start(home: Path) -> None:
    at = _page().run()
    assert not at.exception
    assert "No flows yet" in at.info[0].value


def test_lists_versions_shows_yaml_and_diff(home: Path) -> None:
    _two_versions()
    at = _page().run()
    assert not at.exception
    assert at.selectbox(key="flows_name").value == "gear-support"
    assert at.selectbox(key="flows_version_gear-support").value == 2
    assert "temperature: 0.4" in at.code[0].value
    assert any("temperature 0.0 -> 0.4" in m.value for m in at.markdown)
    assert "+    temperature: 0.4" in at.code[1].value


def test_label_is_set_and_its_move_recorded(home: Path) -> None:
    _two_versions()
    at = _page().run()
    at.text_input(key="flows_label").set_value("staging")
    at.button(key="flows_set_label").click().run()
    assert not at.exception
    assert FlowRegistry(load_settings()).labels("gear-support") == {"staging": 2}


def test_versions_and_label_moves_read_as_words_not_raw_values(home: Path) -> None:
    _two_versions()
    at = _page().run()
    at.button(key="flows_set_label").click().run()
    assert not at.exception
    versions = at.dataframe[0].value
    assert list(versions["version"]) == ["v2", "v1"]
    assert list(versions["parent"]) == ["v1", "—"]
    assert all(
        re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC", c) for c in versions["created"]
    )
    (move,) = at.dataframe[1].value.to_dict("records")
    assert (move["label"], move["to"], move["from"]) == ("production", "v2", "—")
    assert "None" not in " ".join(str(v) for v in [*versions.to_numpy().ravel(), *move.values()])


def test_pointing_a_label_keeps_the_picked_version(home: Path) -> None:
    _two_versions()
    at = _page().run()
    at.selectbox(key="flows_version_gear-support").select(1).run()
    at.button(key="flows_set_label").click().run()
    assert at.selectbox(key="flows_version_gear-support").value == 1
    assert at.selectbox(key="flows_version_gear-support").options == ["v2", "v1"]  # stable text
    assert "Labelled `production`" in [c.value for c in at.caption]


def test_import_pasted_yaml_saves_next_version(home: Path) -> None:
    _two_versions()
    at = _page().run()
    at.text_area(key="flows_paste").set_value(GOOD.replace("temperature: 0.0", "temperature: 1.0"))
    at.button(key="flows_import").click().run()
    assert not at.exception
    assert at.success[0].value == "Saved gear-support v3"
    assert FlowRegistry(load_settings()).get("gear-support", 3).parent == 2


def test_import_of_a_bad_spec_shows_the_one_line_error(home: Path) -> None:
    at = _page().run()
    at.text_area(key="flows_paste").set_value(GOOD.replace("role: system", "role: robot"))
    at.button(key="flows_import").click().run()
    assert not at.exception
    assert at.error[0].value.startswith("Field 'prompt.messages[0].role' is 'robot'")
    assert not (home / "flows").exists() or not list((home / "flows").rglob("*.yaml"))


def test_load_into_playground_sets_the_draft(home: Path) -> None:
    _two_versions()
    at = _page().run()
    at.button(key="flows_load").click().run()
    assert not at.exception
    draft = at.session_state["pending_draft"]
    assert isinstance(draft, Draft)
    assert draft.model_ids == ["local/smollm2-135m-instruct"]
    assert draft.params["local/smollm2-135m-instruct"].temperature == 0.4
    assert draft.variables == {"question": "Is the trail tent waterproof?"}


def _save_widget_script() -> None:
    from playground.models.base import Message, ModelParams
    from playground.records import Result, Run
    from ui.flow_widgets import save_as_flow

    result = Result(
        "local/smollm2-135m-instruct",
        [Message(role="user", content="Hi?")],
        ModelParams(temperature=0.0, seed=7),
        system_template="Be brief.",
        user_template="{{ question }}",
        text="Hello.",
    )
    save_as_flow(result, Run(variables={"question": "Hi?"}, results=[result]), key="flow_r1")


def test_save_as_flow_saves_versions_and_shows_errors(home: Path) -> None:
    at = AppTest.from_function(_save_widget_script, default_timeout=60).run()
    assert not at.text_input  # nothing inside the popover is drawn until it opens
    at.session_state["flow_r1_open"] = True  # what clicking "Save as flow" does
    at.run()
    at.text_input(key="flow_r1_name").set_value("greeter")
    at.button(key="flow_r1_save").click().run()
    assert not at.exception
    assert at.success[0].value == "Saved greeter v1"
    at.button(key="flow_r1_save").click().run()  # the same answer again: nothing new
    assert not at.success
    assert at.info[0].value.startswith("No changes: greeter v1 already holds this configuration")
    assert FlowRegistry(load_settings()).versions("greeter") == [1]
    at.text_input(key="flow_r1_description").set_value("Greets briefly")
    at.button(key="flow_r1_save").click().run()
    assert at.success[0].value == "Saved greeter v2"
    spec = FlowRegistry(load_settings()).get("greeter", 2)
    assert (spec.parent, spec.inputs["question"].default) == (1, "Hi?")
    at.text_input(key="flow_r1_name").set_value("Bad Name!").run()
    at.button(key="flow_r1_save").click().run()
    assert at.error[0].value.startswith("Field 'name' is 'Bad Name!'")
