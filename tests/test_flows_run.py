"""Running a flow headless gives the Playground's answer; capture and diff round out the loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.config import load_settings
from playground.errors import PlaygroundError, TemplateError
from playground.flows.capture import draft_from_spec, spec_from_result
from playground.flows.diff import diff_specs
from playground.flows.loader import parse_spec
from playground.flows.run import Flow
from playground.models.base import ModelParams
from playground.prompts import render_messages
from playground.records import Result, RetrievalSettings, Run
from playground.runner import complete
from tests.flow_samples import GOOD, MODEL_ID, write_spec


def test_same_inputs_give_the_same_text_as_the_playground(home: Path) -> None:
    settings = load_settings()
    flow = Flow(parse_spec(GOOD), settings)
    first = flow.run()
    second = flow.run()
    assert first.error is None and first.text
    assert second.text == first.text
    # The Playground renders system + user with render_messages and calls the runner.
    messages = render_messages(
        "Answer in one short sentence.",
        "{{ question }}",
        {"question": "Is the trail tent waterproof?"},
    )
    assert first.messages == messages
    direct = complete(MODEL_ID, messages, flow.spec.model.params, settings)
    assert direct.text == first.text
    assert first.config_hash == Result(
        MODEL_ID, messages, flow.spec.model.params,
        system_template="Answer in one short sentence.", user_template="{{ question }}",
    ).config_hash  # fmt: skip


def test_flow_load_accepts_a_path(home: Path, tmp_path: Path) -> None:
    flow = Flow.load(str(write_spec(tmp_path)))
    assert flow.spec.name == "gear-support"


@pytest.mark.parametrize(
    ("inputs", "expected_error"),
    [
        ({"questoin": "x"}, "Flow gear-support has no input 'questoin'; it takes question."),
        ({"question": ""}, "Variable 'question' in the flow message 1 (user) is empty"),
    ],
)
def test_bad_inputs_fail_before_any_call(
    home: Path, inputs: dict[str, object], expected_error: str
) -> None:
    flow = Flow(parse_spec(GOOD), load_settings())
    with pytest.raises(TemplateError) as caught:
        flow.run(**inputs)
    assert str(caught.value).startswith(expected_error)


def test_required_input_and_type_coercion(home: Path) -> None:
    text = GOOD.replace(
        'question: {type: string, default: "Is the trail tent waterproof?"}',
        "question: {type: string}\n  n: {type: integer, default: 2}",
    ).replace("{{ question }}", "{{ question }} x{{ n }}")
    flow = Flow(parse_spec(text), load_settings())
    with pytest.raises(TemplateError, match="Input 'question' is required by flow gear-support"):
        flow.variables({})
    assert flow.variables({"question": "q", "n": "5"}) == {"question": "q", "n": 5}
    with pytest.raises(TemplateError, match="Input 'n' is 'five', which is not a integer"):
        flow.variables({"question": "q", "n": "five"})


def test_retrieval_fills_the_context_from_the_named_store(home: Path) -> None:
    from playground.rag.store import KnowledgeBase, UploadedFile

    settings = load_settings()
    doc = b"# Trail tent\n\nThe trail tent has a 3000 mm hydrostatic head and taped seams.\n"
    KnowledgeBase(settings).ingest("gear-manuals", [UploadedFile("tent.md", doc)])
    text = GOOD.replace("{{ question }}", "{{ question }}\\n\\nContext:\\n{{ context }}") + (
        "retrieval: {store: gear-manuals, top_k: 1, query: '{{ question }}'}\n"
    )
    run = Flow(parse_spec(text), settings).execute({})
    assert run.retrieval is not None and run.retrieval.store == "gear-manuals"
    assert "3000 mm hydrostatic head" in run.results[0].messages[1].content
    assert run.results[0].chunk_ids and len(run.results[0].chunk_ids) == 1


def test_a_missing_store_is_one_clear_error(home: Path) -> None:
    text = GOOD.replace("{{ question }}", "{{ question }} {{ context }}") + (
        "retrieval: {store: no-such-store}\n"
    )
    with pytest.raises(PlaygroundError, match="no-such-store"):
        Flow(parse_spec(text), load_settings()).run()


def test_spec_from_result_captures_the_configuration(write_config: object) -> None:
    write_config(  # type: ignore[operator]
        '[endpoints.myserver]\nbase_url = "http://127.0.0.1:9/v1"\napi_key_env = "MYSERVER_KEY"\n'
    )
    settings = load_settings()
    params = ModelParams(temperature=0.2, seed=3, max_tokens=50)
    retrieval = RetrievalSettings(store="gear-manuals", top_k=2)
    result = Result(
        "myserver/llama3.2", [], params, system_template="Be brief.",
        user_template="{{ question }} {{ context }} in {{ lang }}", retrieval=retrieval,
    )  # fmt: skip
    run = Run(variables={"question": "Tent?", "lang": ""}, retrieval=retrieval)
    spec = spec_from_result(result, run, "gear-support", "Tents", settings)
    assert spec.inputs["question"].default == "Tent?"
    assert spec.inputs["lang"].default is None  # empty: required when run
    assert "context" not in spec.inputs
    assert spec.model.endpoint is not None
    assert (spec.model.endpoint.base_url, spec.model.endpoint.api_key_env) == (
        "http://127.0.0.1:9/v1",
        "MYSERVER_KEY",
    )
    assert spec.model.params == params
    assert spec.retrieval is not None and spec.retrieval.top_k == 2
    assert spec.evidence is not None and spec.evidence.runs == [run.id]
    draft = draft_from_spec(spec, settings)
    assert draft.variants[0].user == result.user_template
    assert draft.params["myserver/llama3.2"] == params
    assert draft.retrieval == retrieval


def test_diff_summarises_field_changes() -> None:
    a = parse_spec(GOOD.replace("temperature: 0.0", "temperature: 0.7"))
    b = parse_spec(
        GOOD.replace("temperature: 0.0", "temperature: 0.2").replace(
            "local/smollm2-135m-instruct", "openai/gpt-4o-mini"
        )
    )
    change = diff_specs(a, b, "a.yaml", "b.yaml")
    assert change.summary == "model changed, temperature 0.7 -> 0.2"
    assert "-  id: local/smollm2-135m-instruct" in change.unified
    assert "+  id: openai/gpt-4o-mini" in change.unified
    assert diff_specs(a, a).summary == "no changes"
