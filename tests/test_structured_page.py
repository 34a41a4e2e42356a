"""The Playground's response format, driven through AppTest with the embedded model and a real
llama.cpp server: the picker, formatted JSON with its mark, bad schemas, saved and reloaded runs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.config import load_settings
from playground.models.response_format import ResponseFormat
from playground.records import Draft
from playground.store import open_store
from ui import response_format as rf

PAGE = str(Path(__file__).resolve().parent.parent / "views" / "playground_page.py")
LOCAL = "local/smollm2-135m-instruct"
SERVER = "srv/smollm2-135m-instruct"

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "maxLength": 60}, "sure": {"type": "boolean"}},
    "required": ["answer", "sure"],
    "additionalProperties": False,
}


def page() -> AppTest:
    """A fresh Playground page with a generous timeout for real generations on a busy box."""
    return AppTest.from_file(PAGE, default_timeout=180)


def run_and_wait(at: AppTest, timeout: float = 300) -> AppTest:
    """Press Run, rerun (as the page's polling would) until no cell runs, then draw once more."""
    at.button(key="btn_run").click().run()
    deadline = time.monotonic() + timeout
    if "run_view" not in at.session_state:
        return at  # the click was refused: nothing started
    while at.session_state["run_view"].live:
        assert time.monotonic() < deadline, "the run did not finish in time"
        time.sleep(0.2)
        at.run()
    return at.run()


def greedy(at: AppTest, *model_ids: str, max_tokens: int = 96) -> None:
    """Repeatable, short enough answers."""
    for model_id in model_ids:
        at.session_state[f"pg_p_{model_id}_max_tokens"] = max_tokens
        at.session_state[f"pg_p_{model_id}_temperature"] = 0.0
        at.session_state[f"pg_p_{model_id}_seed"] = 7


def badges(at: AppTest) -> list[str]:
    """Labels of the valid/invalid marks under answers (st.badge is Markdown in AppTest)."""
    return [m.value for m in at.markdown if ":material/check_circle:" in m.value or
            ":material/cancel:" in m.value]  # fmt: skip


@pytest.fixture
def server_config(write_config: Callable[[str], Path], llama_server: str) -> Path:
    """playground.toml with the real llama.cpp server as endpoint `srv`."""
    return write_config(
        f'[endpoints.srv]\nbase_url = "{llama_server}"\nmodels = ["smollm2-135m-instruct"]\n'
    )


def test_text_is_the_default_and_answers_show_no_mark(home: Path) -> None:
    at = page().run()
    assert not at.exception
    assert at.radio(key=rf.FORMAT).value == "Text"
    greedy(at, LOCAL, max_tokens=8)
    run_and_wait(at)
    assert not at.exception and not at.error
    assert badges(at) == []
    assert open_store(load_settings()).runs.recent_runs(1)[0].results[0].response_format is None


def test_a_json_schema_run_shows_formatted_json_marked_valid_on_both_models(
    home: Path, server_config: Path
) -> None:
    at = page().run()
    at.multiselect(key="pg_models").set_value([LOCAL, SERVER]).run()
    greedy(at, LOCAL, SERVER)
    at.radio(key=rf.FORMAT).set_value("JSON Schema").run()
    at.text_area(key=rf.SCHEMA).set_value(json.dumps(SCHEMA)).run()
    at.text_area(key="pg_var_question").set_value("Is the trail tent waterproof?")
    run_and_wait(at)
    assert not at.exception and not at.error
    assert len(badges(at)) == 2 and all("Valid" in b for b in badges(at))
    shown = [c.value for c in at.code if c.language == "json"]
    assert len(shown) == 2
    assert all(set(json.loads(text)) == {"answer", "sure"} for text in shown)
    assert all("\n  " in text for text in shown)  # indented, not the raw one-line answer
    (saved,) = open_store(load_settings()).runs.recent_runs(1)
    wanted = ResponseFormat.from_schema(SCHEMA, "test")
    assert [r.response_format for r in saved.results] == [wanted, wanted]


def test_a_schema_that_is_not_json_is_one_sentence_and_nothing_runs(home: Path) -> None:
    at = page().run()
    at.radio(key=rf.FORMAT).set_value("JSON Schema").run()
    at.text_area(key=rf.SCHEMA).set_value('{"type": "object",').run()
    expected = (
        "The JSON Schema under Response format is not valid JSON (Expecting property name "
        "enclosed in double quotes at line 1 column 19); fix the schema."
    )
    assert [e.value for e in at.error] == [expected]  # said where it is typed, before Run
    at.button(key="btn_run").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [expected, expected]  # and again under Run
    assert "run_view" not in at.session_state
    assert open_store(load_settings()).runs.recent_runs(1) == []


def test_a_schema_that_is_not_a_json_schema_is_refused(home: Path) -> None:
    at = page().run()
    at.radio(key=rf.FORMAT).set_value("JSON Schema").run()
    at.text_area(key=rf.SCHEMA).set_value('{"type": "objekt"}').run()
    assert [e.value for e in at.error] == [
        "The JSON Schema under Response format is not a valid JSON Schema: 'objekt' is not "
        "valid under any of the given schemas at $.type; fix the schema."
    ]


def test_a_stored_json_run_reloads_its_format_into_the_picker(home: Path) -> None:
    at = page().run()
    greedy(at, LOCAL, max_tokens=48)
    at.radio(key=rf.FORMAT).set_value("JSON").run()
    run_and_wait(at)
    assert len(badges(at)) == 1
    (saved,) = open_store(load_settings()).runs.recent_runs(1)
    fresh = page()
    fresh.session_state["pending_draft"] = Draft.from_run(
        open_store(load_settings()).runs.get_run(saved.id)
    )
    fresh.run()
    assert not fresh.exception
    assert fresh.radio(key=rf.FORMAT).value == "JSON"


def test_a_shared_json_run_shows_its_answers_marked(home: Path) -> None:
    from playground.models.base import ModelParams
    from playground.records import PromptVariant, Run
    from playground.runner import plan_cells

    fmt = ResponseFormat.from_schema(SCHEMA, "test")
    run = Run(source="cli")
    run.results = plan_cells(
        [PromptVariant(user="q")], [LOCAL], {LOCAL: ModelParams()}, {}, load_settings(),
        response_format=fmt,
    )  # fmt: skip
    run.results[0].text = '{"answer": "yes"}'
    open_store(load_settings()).runs.save_run(run)
    at = AppTest.from_file(str(Path(PAGE).with_name("run.py")), default_timeout=60)
    at.query_params["run"] = run.id
    at.run()
    assert not at.exception
    assert len(badges(at)) == 1 and "Invalid" in badges(at)[0]
    assert "Does not match schema 'answer' at $: 'sure' is a required property." in [
        c.value for c in at.caption
    ]
