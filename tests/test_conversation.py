"""Conversations: follow-up turns answered per model in its own thread, and few-shot examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from playground.cli import main
from playground.config import Settings, load_settings
from playground.conversation import exchanges, literal_template, plan_follow_up
from playground.errors import PlaygroundError, TemplateError
from playground.flows.capture import draft_from_spec, spec_from_result
from playground.flows.run import Flow
from playground.models.base import Message, ModelParams
from playground.prompts import render
from playground.records import PromptVariant, Run
from playground.runner import prepare_run, run_cells
from playground.store import open_store
from tests.support import FAULT_MODEL, FaultServer

LOCAL = "local/smollm2-135m-instruct"
SERVER = "srv/smollm2-135m-instruct"
SHORT = ModelParams(temperature=0.0, seed=7, max_tokens=4)  # threads, not prose, are tested
FEW_SHOT = [
    Message(role="user", content="Capital of France?"),
    Message(role="assistant", content="Paris."),
    Message(role="user", content="Capital of {{ country }}?"),
    Message(role="assistant", content="Rome."),
]


def first_turn(
    settings: Settings, model_ids: list[str], variant: PromptVariant | None = None
) -> Run:
    """Run one variant on the models, save every cell, and return the stored run."""
    variant = variant or PromptVariant(system="Answer briefly.", user="{{ question }}")
    run = prepare_run(
        settings,
        [variant],
        model_ids,
        dict.fromkeys(model_ids, SHORT),
        {"question": "Name a fruit.", "country": "Italy"},
    )
    run.results = run_cells(run.results, settings)
    open_store(settings).runs.save_run(run)
    return open_store(settings).runs.get_run(run.id)


def next_turn(settings: Settings, previous: Run, text: str) -> Run:
    """Plan, run and save a follow-up; return the stored turn."""
    turn = plan_follow_up(previous, text)
    turn.results = run_cells(turn.results, settings)
    open_store(settings).runs.save_run(turn)
    return open_store(settings).runs.get_run(turn.id)


@pytest.fixture
def two_parrots(write_config: Any, fault_server: FaultServer) -> Settings:
    """Two endpoints that answer with different words and record what they were sent."""
    write_config(
        "".join(
            f'[endpoints.{name}]\nbase_url = "{fault_server.url(f"say-{name}")}"\n'
            f'models = ["{FAULT_MODEL}"]\nmax_retries = 0\n'
            for name in ("apple", "pear")
        )
    )
    return load_settings()


@pytest.fixture
def real_models(write_config: Any, llama_server: str) -> Settings:
    """The embedded model and the same GGUF behind llama_cpp.server (endpoint `srv`)."""
    write_config(
        f'[endpoints.srv]\nbase_url = "{llama_server}"\nmodels = ["smollm2-135m-instruct"]\n'
    )
    return load_settings()


def test_a_follow_up_sends_each_model_its_own_earlier_answer(
    two_parrots: Settings, fault_server: FaultServer
) -> None:
    models = [f"apple/{FAULT_MODEL}", f"pear/{FAULT_MODEL}"]
    previous = first_turn(two_parrots, models)
    turn = next_turn(two_parrots, previous, "And a vegetable?")
    for name in ("apple", "pear"):
        sent = fault_server.chat_requests(f"say-{name}")[-1]["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
        assert sent[2]["content"].strip() == name  # its own answer, never the other column's
        assert sent[3]["content"] == "And a vegetable?"
    assert [r.parent_id for r in turn.results] == [r.id for r in previous.results]
    assert turn.parent_run_id == previous.id and turn.follow_up == "And a vegetable?"


def test_threads_of_the_embedded_model_and_llama_server_are_kept_apart_and_stored(
    real_models: Settings,
) -> None:
    previous = first_turn(real_models, [LOCAL, SERVER])
    second = next_turn(real_models, previous, "Say it again in one word.")
    third = next_turn(real_models, second, "Thanks.")
    before = {r.model_id: r for r in second.results}
    for result in third.results:
        assert result.ok, result.error
        assert result.turn == 3
        own = before[result.model_id].text
        assert result.messages[-2] == Message(role="assistant", content=own)
        assert [e.user for e in exchanges(result)] == ["Name a fruit.", "Say it again in one word."]
    store = open_store(real_models)
    assert [run.id for run in store.runs.conversation(third.id)] == [
        previous.id,
        second.id,
        third.id,
    ]
    assert store.runs.follow_ups(previous.id) == [second.id]
    exported = [row for row in store.exports.export_results() if row["run_id"] == third.id]
    assert {row["parent_run_id"] for row in exported} == {second.id}
    assert all(len(row["messages"]) == 6 for row in exported)  # system + 3 user + 2 answers


def test_few_shot_examples_reach_the_model_in_order(
    two_parrots: Settings, fault_server: FaultServer
) -> None:
    variant = PromptVariant(system="Be terse.", user="Capital of Spain?", examples=FEW_SHOT)
    run = first_turn(two_parrots, [f"apple/{FAULT_MODEL}"], variant)
    sent = fault_server.chat_requests("say-apple")[-1]["messages"]
    assert sent == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Capital of Italy?"},  # examples are templates too
        {"role": "assistant", "content": "Rome."},
        {"role": "user", "content": "Capital of Spain?"},
    ]
    stored = run.results[0]
    assert stored.examples == FEW_SHOT and stored.turn == 1  # the store keeps the templates


def test_few_shot_examples_change_the_configuration_hash() -> None:
    plain = PromptVariant(user="hi")
    from playground.runner import plan_cells

    settings = load_settings()
    with_examples = PromptVariant(user="hi", examples=FEW_SHOT[:2])
    a, b = (plan_cells([v], [LOCAL], {}, {}, settings)[0] for v in (plain, with_examples))
    assert a.config_hash != b.config_hash


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        (
            [Message(role="user", content="a"), Message(role="user", content="b")],
            "Few-shot message 2 of the prompt is a user message where a assistant message "
            "belongs; examples alternate user and assistant, so change its role or remove it.",
        ),
        (
            [Message(role="assistant", content="a")],
            "Few-shot message 1 of the prompt is a assistant message where a user message "
            "belongs; examples alternate user and assistant, so change its role or remove it.",
        ),
        (
            [Message(role="user", content="a")],
            "The last few-shot message of the prompt is a user message with no assistant "
            "answer after it; add the answer or remove the message.",
        ),
        (
            [Message(role="user", content="a"), Message(role="assistant", content=" ")],
            "Few-shot message 2 of the prompt is empty; write it or remove it.",
        ),
        (
            [Message(role="user", content="{{ oops"), Message(role="assistant", content="b")],
            "Template syntax error in the few-shot message 1 (user) on line 1: `{{` is never "
            "closed with `}}`; fix the template and run again.",
        ),
    ],
)
def test_bad_few_shot_lists_are_one_sentence_and_nothing_is_sent(
    home: Path, examples: list[Message], message: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        prepare_run(load_settings(), [PromptVariant(user="hi", examples=examples)], [LOCAL], {}, {})
    assert str(caught.value) == message
    assert open_store(load_settings()).runs.count_runs() == 0


@pytest.mark.parametrize(
    ("previous", "text", "message"),
    [
        (
            None,
            "more?",
            "Nothing has run yet, so there is no answer to follow up; press Run first.",
        ),
        ("answered", "   ", "The follow-up is empty; write a message and send it again."),
        (
            "failed",
            "more?",
            "No model answered the last turn, so there is no thread to continue; fix the error "
            "and press Run again.",
        ),
    ],
)
def test_follow_ups_that_cannot_be_sent_say_why(
    home: Path, previous: str | None, text: str, message: str
) -> None:
    run = None
    if previous is not None:
        from playground.records import Result

        cell = Result(model_id=LOCAL, messages=[Message(role="user", content="hi")], params=SHORT)
        cell.text, cell.error = ("hello", None) if previous == "answered" else ("", "boom")
        run = Run(results=[cell])
    with pytest.raises(PlaygroundError) as caught:
        plan_follow_up(run, text)  # type: ignore[arg-type]
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "text",
    ["plain", "a {{ brace }} and {% tag %}", "{# c #} {% endraw %} end", "}} {{", "{%- endraw -%}"],
)
def test_answers_put_in_a_spec_render_back_to_themselves(text: str) -> None:
    assert render(literal_template(text), {}) == text


def test_a_follow_up_exports_to_a_flow_spec_that_replays_the_same_messages(
    real_models: Settings, tmp_path: Path
) -> None:
    variant = PromptVariant(system="Answer briefly.", user="{{ question }}", examples=FEW_SHOT)
    previous = first_turn(real_models, [LOCAL], variant)
    previous.results[0].text += " {{ not a variable }}"  # an answer may contain braces
    turn = next_turn(real_models, previous, "Why?")
    result = turn.results[0]
    spec = spec_from_result(result, turn, "fruit-chat", "two turns", real_models)
    roles = [m.role for m in spec.prompt.messages]
    assert roles == ["system"] + ["user", "assistant"] * 3 + ["user"]
    replayed = Flow(spec, real_models).execute({}).results[0]
    assert replayed.messages == result.messages
    # the command line replays it too, from the YAML an engineer receives
    path = tmp_path / "fruit-chat.yaml"
    path.write_text(yaml.safe_dump(spec.to_data(), sort_keys=False), encoding="utf-8")
    ran = CliRunner().invoke(main, ["flow", "run", str(path), "--json"], catch_exceptions=False)
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout)["messages"] == [m.model_dump() for m in result.messages]
    # and the Playground loads it with its few-shot examples, the conversation as examples
    draft = draft_from_spec(spec, real_models)
    assert draft.variants[0].user == "Why?"
    assert len(draft.variants[0].examples) == 6


def test_runs_continue_answers_a_follow_up_from_the_command_line(real_models: Settings) -> None:
    previous = first_turn(real_models, [LOCAL, SERVER])
    ran = CliRunner().invoke(
        main, ["runs", "continue", previous.id[:8], "One more?", "--json"], catch_exceptions=False
    )
    assert ran.exit_code == 0, ran.output
    document = json.loads(ran.stdout)
    assert document["parent_run_id"] == previous.id
    texts = {r.model_id: r.text for r in previous.results}
    for answer in document["results"]:
        assert answer["turn"] == 2
        assert answer["messages"][-2] == {"role": "assistant", "content": texts[answer["model"]]}
    shown = CliRunner().invoke(main, ["runs", "show", previous.id, "--json"])
    assert json.loads(shown.stdout)["follow_ups"] == [document["run_id"]]


def test_runs_continue_with_an_empty_message_is_one_error_line(real_models: Settings) -> None:
    previous = first_turn(real_models, [LOCAL])
    ran = CliRunner().invoke(main, ["runs", "continue", previous.id, " "])
    assert ran.exit_code == 1
    assert ran.output == "Error: The follow-up is empty; write a message and send it again.\n"


def test_turns_and_few_shot_examples_round_trip_on_every_backend(backend_store: Any) -> None:
    from tests.history_fixtures import make_run

    first = make_run(models=("local/a", "local/b"), texts=("Apples.", "Pears."))
    first.results[0].examples = FEW_SHOT[:2]
    backend_store.runs.save_run(first)
    second = plan_follow_up(backend_store.runs.get_run(first.id), "Why?")
    for result in second.results:
        result.text = "Because."
        backend_store.runs.save_result(second, result, second.results.index(result))
    third = plan_follow_up(backend_store.runs.get_run(second.id), "Sure?")
    backend_store.runs.save_run(third)
    turns = backend_store.runs.conversation(third.id)
    assert [t.id for t in turns] == [first.id, second.id, third.id]
    stored = turns[1].results[0]
    assert stored.examples == FEW_SHOT[:2] and stored.parent_id == first.results[0].id
    assert stored.messages[-2] == Message(role="assistant", content="Apples.")
    assert backend_store.runs.follow_ups(second.id) == [third.id]
    assert turns[2].results[1].turn == 3


def test_a_flow_with_few_shot_examples_is_evaluated_with_them(
    two_parrots: Settings, fault_server: FaultServer, tmp_path: Path
) -> None:
    from playground.eval.batch import BatchRunner, check_plan, plan_from_paths
    from playground.eval.results import load_report

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"question": "A red fruit?"}\n', encoding="utf-8")
    flow = tmp_path / "few-shot.yaml"
    flow.write_text(
        "schema: playground.flow/v1\nname: few-shot\n"
        "inputs:\n  question: {type: string}\n"
        "prompt:\n  messages:\n"
        "    - {role: system, content: One word.}\n"
        '    - {role: user, content: "A yellow fruit?"}\n'
        "    - {role: assistant, content: Banana.}\n"
        '    - {role: user, content: "{{ question }}"}\n'
        f"model:\n  id: apple/{FAULT_MODEL}\n"
        f"evaluation:\n  dataset: {rows}\n  scorers:\n    - {{type: contains, value: apple}}\n",
        encoding="utf-8",
    )
    plan = plan_from_paths(two_parrots, [str(flow)])
    check_plan(two_parrots, plan)
    assert BatchRunner(two_parrots, plan, concurrency=1, use_cache=False).run() == "done"
    report = load_report(two_parrots, plan.batch_id)
    assert report.configs[0].passed == 1
    sent = fault_server.chat_requests("say-apple")[-1]["messages"]
    expected = ["One word.", "A yellow fruit?", "Banana.", "A red fruit?"]
    assert [m["content"] for m in sent] == expected


def test_playground_run_sends_few_shot_examples_from_the_command_line(
    two_parrots: Settings, fault_server: FaultServer
) -> None:
    ran = CliRunner().invoke(
        main,
        [
            "run", "--model", f"apple/{FAULT_MODEL}", "--prompt", "Capital of Spain?",
            "--example", "user=Capital of France?", "--example", "assistant=Paris.", "--json",
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    sent = fault_server.chat_requests("say-apple")[-1]["messages"]
    assert [m["content"] for m in sent] == ["Capital of France?", "Paris.", "Capital of Spain?"]


@pytest.mark.parametrize(
    ("examples", "code", "message"),
    [
        (
            ["system=x"],
            2,
            "Error: Invalid value for --example: 'system' is not a few-shot role; start each "
            "example with user= or assistant=.",
        ),
        (
            ["user=a"],
            1,
            "Error: The last few-shot message of the prompt is a user message with no "
            "assistant answer after it; add the answer or remove the message.",
        ),
    ],
)
def test_bad_few_shot_options_are_one_line(
    two_parrots: Settings, examples: list[str], code: int, message: str
) -> None:
    args = ["run", "--model", f"apple/{FAULT_MODEL}", "--prompt", "hi"]
    for example in examples:
        args += ["--example", example]
    ran = CliRunner().invoke(main, args)
    assert ran.exit_code == code
    assert message in ran.output
