"""Structured answers: JSON and JSON Schema formats on the embedded model, a real llama.cpp
server, the run store, flow specs, exports and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from playground.cli import main
from playground.config import load_settings
from playground.errors import ParamError, SpecError
from playground.flows.exporters import build_export, export_flow
from playground.flows.loader import parse_spec
from playground.flows.run import Flow
from playground.flows.spec import FlowSpec
from playground.models.base import ModelParams
from playground.models.response_format import (
    ResponseFormat,
    check_answer,
    load_schema_file,
)
from playground.records import Draft, PromptVariant, Run, config_hash
from playground.runner import prepare_run, run_cells
from playground.store import Store, open_store
from tests.flow_samples import GOOD

LOCAL = "local/smollm2-135m-instruct"
SERVED = "smollm2-135m-instruct"
SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 80},
        "waterproof": {"type": "boolean"},
    },
    "required": ["answer", "waterproof"],
    "additionalProperties": False,
}
GREEDY = ModelParams(temperature=0.0, max_tokens=96, seed=7)
VALID_TENT = "Valid JSON matching schema 'tent'."
QUESTION = [PromptVariant(user="Is the trail tent waterproof? Answer in JSON.")]


@pytest.fixture(autouse=True)
def raise_unexpected(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug must surface as a traceback in tests, not as a tidy one-line message."""
    monkeypatch.setenv("PLAYGROUND_RAISE_ERRORS", "1")


def schema_format() -> ResponseFormat:
    return ResponseFormat.from_schema(SCHEMA, "the test schema", name="tent")


def run_once(model_id: str, fmt: ResponseFormat | None, params: ModelParams = GREEDY) -> Any:
    settings = load_settings()
    run = prepare_run(settings, QUESTION, [model_id], {model_id: params}, {}, response_format=fmt)
    (result,) = run_cells(run.results, settings)
    return run, result


# --- checking answers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "valid", "reason"),
    [
        ('{"answer": "yes", "waterproof": true}', True, "Valid JSON matching schema 'tent'."),
        (
            '{"answer": "yes", "waterproof": "very"}',
            False,
            "Does not match schema 'tent' at $.waterproof: 'very' is not of type 'boolean'.",
        ),
        (
            '{"answer": "yes", "waterpr',
            False,
            "The JSON is cut off before it ends; raise max_tokens and run again.",
        ),
        ("Sure! Here it is.", False, "Not valid JSON: Expecting value at line 1 column 1."),
        ("", False, "The answer is empty, not JSON."),
    ],
)
def test_an_answer_is_marked_valid_or_invalid_with_one_line(
    text: str, valid: bool, reason: str
) -> None:
    check = check_answer(text, schema_format())
    assert check is not None
    assert (check.valid, check.reason) == (valid, reason)


def test_a_text_answer_gets_no_mark_and_keeps_its_config_hash() -> None:
    assert check_answer("plain words", None) is None
    before = config_hash(LOCAL, GREEDY, "", "{{ q }}")
    assert config_hash(LOCAL, GREEDY, "", "{{ q }}", None, ResponseFormat()) == before
    assert config_hash(LOCAL, GREEDY, "", "{{ q }}", None, schema_format()) != before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "{not json",
            "Schema file {path} is not valid JSON (Expecting property name enclosed in double "
            "quotes at line 1 column 2); fix the schema.",
        ),
        (
            '{"type": "objekt"}',
            "Schema file {path} is not a valid JSON Schema: 'objekt' is not valid under any of "
            "the given schemas at $.type; fix the schema.",
        ),
        (
            "[1, 2]",
            "Schema file {path} is not a valid JSON Schema: it is a JSON list, not an object; "
            "fix the schema.",
        ),
    ],
)
def test_a_bad_schema_file_is_one_sentence_naming_the_file(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ParamError) as caught:
        load_schema_file(path)
    assert str(caught.value) == message.format(path=path)


# --- the embedded model -------------------------------------------------------------------


def test_the_embedded_model_answers_inside_the_schema(home: Path) -> None:
    _, result = run_once(LOCAL, schema_format())
    assert result.error is None
    check = result.format_check
    assert check is not None and check.valid, (result.text, check)
    assert set(json.loads(result.text)) == {"answer", "waterproof"}


def test_the_embedded_model_in_json_mode_answers_json(home: Path) -> None:
    _, result = run_once(LOCAL, ResponseFormat.any_json(), ModelParams(temperature=0, seed=7))
    assert result.error is None
    assert result.text.lstrip().startswith("{")
    check = result.format_check
    # JSON mode constrains the syntax only: a long object may run into max_tokens
    assert check is not None
    assert check.valid or check.reason.startswith("The JSON is cut off"), check.reason


def test_without_a_format_the_embedded_model_answers_text(home: Path) -> None:
    _, result = run_once(LOCAL, None, ModelParams(temperature=0, max_tokens=16, seed=7))
    assert result.error is None and result.response_format is None
    assert result.format_check is None
    assert not result.text.lstrip().startswith("{")


# --- a real llama.cpp server ----------------------------------------------------------------


def test_a_llama_cpp_server_answers_inside_the_schema(write_config: Any, llama_server: str) -> None:
    write_config(f'[endpoints.srv]\nbase_url = "{llama_server}"\n')
    _, result = run_once(f"srv/{SERVED}", schema_format())
    assert result.error is None
    check = result.format_check
    assert check is not None and check.valid, (result.text, check)


class _Refuser(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that refuses every response_format (400), like old servers."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, {"object": "list", "data": [{"id": "plain"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        message = "response_format is not supported by this server"
        self._send(400, {"error": {"message": message}})


@pytest.fixture
def refuser() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuser)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_a_server_that_cannot_honour_the_format_is_one_sentence(
    write_config: Any, refuser: str
) -> None:
    write_config(f'[endpoints.old]\nbase_url = "{refuser}"\nmax_retries = 0\n')
    _, result = run_once("old/plain", schema_format())
    assert result.error == (
        f"{refuser} cannot honour the JSON Schema response format for old/plain (response_format "
        "is not supported by this server); pick Text, or a model or server that supports "
        "structured output."
    )


# --- saved runs ---------------------------------------------------------------------------


def test_a_saved_run_keeps_its_format_and_reloads_into_the_editor(backend_store: Store) -> None:
    fmt = schema_format()
    run = Run(source="cli")
    run.results = prepare_run(
        load_settings(), QUESTION, [LOCAL], {LOCAL: GREEDY}, {}, response_format=fmt
    ).results
    run.results[0].text = '{"answer": "Yes", "waterproof": true}'
    plain = Run(source="cli")
    plain.results = prepare_run(load_settings(), QUESTION, [LOCAL], {}, {}).results
    backend_store.runs.save_run(run)
    backend_store.runs.save_run(plain)

    (loaded,) = backend_store.runs.get_run(run.id).results
    assert loaded.response_format == fmt
    assert loaded.format_check is not None and loaded.format_check.valid
    assert loaded.config_hash == run.results[0].config_hash
    assert Draft.from_run(backend_store.runs.get_run(run.id)).response_format == fmt
    assert backend_store.runs.get_run(plain.id).results[0].response_format is None


# --- flow specs, flow run, exports ------------------------------------------------------------


def spec_with(fmt: dict[str, Any]) -> FlowSpec:
    data = yaml.safe_load(GOOD)
    data["model"]["response_format"] = fmt
    data["model"]["params"]["max_tokens"] = 96
    return parse_spec(yaml.safe_dump(data, sort_keys=False))


def test_save_as_flow_carries_the_format_and_loads_back_into_the_editor(home: Path) -> None:
    from playground.flows.capture import draft_from_spec, spec_from_result

    settings = load_settings()
    run = prepare_run(
        settings, QUESTION, [LOCAL], {LOCAL: GREEDY}, {}, response_format=schema_format()
    )
    spec = spec_from_result(run.results[0], run, "tent-json", "", settings)
    assert spec.to_data()["model"]["response_format"] == {
        "type": "json_schema",
        "name": "tent",
        "schema": SCHEMA,
    }
    assert draft_from_spec(spec, settings).response_format == schema_format()


def test_a_spec_without_a_format_stays_as_it_was() -> None:
    spec = parse_spec(GOOD)
    assert spec.model.response_format is None
    assert "response_format" not in spec.to_data()["model"]


def test_a_spec_with_a_bad_schema_names_the_field() -> None:
    data = yaml.safe_load(GOOD)
    data["model"]["response_format"] = {"type": "json_schema", "schema": {"type": 5}}
    with pytest.raises(SpecError) as caught:
        parse_spec(yaml.safe_dump(data))
    assert str(caught.value).startswith(
        "Field 'model.response_format' holds a schema that is not a valid JSON Schema ("
    )
    assert str(caught.value).endswith("); fix it.")


def test_a_flow_with_a_schema_runs_inside_it_and_round_trips(home: Path) -> None:
    spec = spec_with({"type": "json_schema", "name": "tent", "schema": SCHEMA})
    assert parse_spec(yaml.safe_dump(spec.to_data(), sort_keys=False)) == spec
    run = Flow(spec, load_settings()).execute({"question": "Is the trail tent waterproof?"})
    (result,) = run.results
    assert result.error is None
    assert result.response_format == schema_format()
    assert result.format_check is not None and result.format_check.valid, result.text


def test_flow_run_json_carries_the_mark(home: Path, tmp_path: Path) -> None:
    spec = spec_with({"type": "json_schema", "name": "tent", "schema": SCHEMA})
    path = tmp_path / "tent.yaml"
    path.write_text(yaml.safe_dump(spec.to_data(), sort_keys=False), encoding="utf-8")
    done = CliRunner().invoke(main, ["flow", "run", str(path), "--json"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    assert document["response_format"]["type"] == "json_schema"
    assert document["format_check"] == {
        "valid": True,
        "reason": "Valid JSON matching schema 'tent'.",
    }


def test_exports_carry_the_format_for_their_server() -> None:
    spec = spec_with({"type": "json_schema", "name": "tent", "schema": SCHEMA})
    prompty = build_export(spec, "prompty")
    (text,) = prompty.values()
    front = yaml.safe_load(text.split("---\n")[1])
    # a local model is served by llama-cpp-python's server, which reads json_object + schema
    assert front["model"]["parameters"]["response_format"] == {
        "type": "json_object",
        "schema": SCHEMA,
    }
    dag = yaml.safe_load(build_export(spec, "promptflow")["flow.dag.yaml"])
    chat = next(n for n in dag["nodes"] if n["name"] == "chat")
    assert chat["inputs"]["response_format"]["schema"] == SCHEMA
    data = spec.to_data()
    data["model"]["id"] = "openai/gpt-4o-mini"
    openai_spec = FlowSpec.model_validate(data)
    (source,) = build_export(openai_spec, "python").values()
    compile(source, "tent.py", "exec")
    assert "'type': 'json_schema'" in source and "'name': 'tent'" in source


def test_an_export_refuses_a_schema_that_promptflow_would_read_as_a_reference() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "description": "${env:HOME}"}},
    }
    spec = spec_with({"type": "json_schema", "schema": schema})
    with pytest.raises(SpecError, match="holds '\\$\\{'"):
        build_export(spec, "prompty")


def test_the_python_export_asks_the_served_model_for_the_schema(
    tmp_path: Path, llama_server: str
) -> None:
    spec = spec_with({"type": "json_schema", "name": "tent", "schema": SCHEMA})
    (script,) = export_flow(spec, "python", tmp_path)
    done = subprocess.run(
        [sys.executable, str(script), "--base-url", llama_server, "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(json.loads(done.stdout)["text"])
    assert set(answer) == {"answer", "waterproof"}


# --- playground run --response-format -------------------------------------------------------


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_run_with_a_schema_file_prints_the_answer_and_its_mark(home: Path, tmp_path: Path) -> None:
    schema = tmp_path / "tent.json"
    schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
    done = cli(
        "run", "--model", LOCAL, "--prompt", "Is the trail tent waterproof? Answer in JSON.",
        "--param", "temperature=0", "--param", "seed=7", "--param", "max_tokens=96",
        "--response-format", str(schema), "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    (result,) = json.loads(done.stdout)["results"]
    assert result["format_check"] == {"valid": True, "reason": VALID_TENT}
    saved = open_store(load_settings()).runs.get_run(json.loads(done.stdout)["run_id"])
    assert saved.results[0].response_format == ResponseFormat.from_schema(SCHEMA, "x", "tent")


def test_run_in_json_mode_marks_the_answer_on_stderr(home: Path) -> None:
    done = cli(
        "run", "--model", LOCAL, "--prompt", "Give a JSON object with a key colour.",
        "--param", "temperature=0", "--param", "seed=7", "--param", "max_tokens=64",
        "--response-format", "json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert done.stdout.lstrip().startswith("== local/")
    assert (
        "   valid: Valid JSON." in done.stderr or "   invalid: The JSON is cut off" in done.stderr
    )


def test_run_with_a_bad_schema_file_is_a_usage_error_naming_it(home: Path, tmp_path: Path) -> None:
    schema = tmp_path / "broken.json"
    schema.write_text('{"type": "object",', encoding="utf-8")
    done = cli("run", "--model", LOCAL, "--prompt", "hi", "--response-format", str(schema))
    assert done.exit_code == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: Invalid value for --response-format: Schema file {schema} is not valid JSON "
        "(Expecting property name enclosed in double quotes at line 1 column 19); fix the schema."
    )
    assert "Traceback" not in done.stderr


def test_run_with_a_missing_schema_file_names_it(home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    done = cli("run", "--model", LOCAL, "--prompt", "hi", "--response-format", str(missing))
    assert done.exit_code == 2
    assert f"Cannot read schema file {missing} (No such file or directory)." in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_promptflow_and_prompty_exports_answer_inside_the_schema(
    tmp_path: Path, llama_server: str
) -> None:
    from tests.test_flows_promptflow import _last_json, _pf_env, _pf_venv, _run

    venv = _pf_venv()
    env = _pf_env(tmp_path)
    spec = spec_with({"type": "json_schema", "name": "tent", "schema": SCHEMA})
    flow_dir, prompty_dir = tmp_path / "pf", tmp_path / "prompty"
    export_flow(spec, "promptflow", flow_dir)
    export_flow(spec, "prompty", prompty_dir)
    pf = str(venv / "bin" / "pf")
    _run([pf, "config", "set", "telemetry.enabled=false", "trace.destination=none"], env, tmp_path)
    _run(
        [pf, "connection", "create", "--file", str(flow_dir / "connection.yaml"),
         "--set", "api_key=not-needed", f"base_url={llama_server}"],
        env, tmp_path,
    )  # fmt: skip
    out = _run([pf, "flow", "test", "--flow", str(flow_dir)], env, tmp_path)
    check = check_answer(str(_last_json(out)["answer"]), schema_format())
    assert check is not None and check.valid, (out[-500:], check)
    code = (
        "import json, sys\n"
        "from promptflow.core import Prompty\n"
        "p = Prompty.load(source=sys.argv[1], model={'configuration': {'base_url': sys.argv[2]}})\n"
        "print(json.dumps({'answer': p()}))\n"
    )
    prompty = prompty_dir / f"{spec.name}.prompty"
    out = _run(
        [str(venv / "bin" / "python"), "-c", code, str(prompty), llama_server], env, tmp_path
    )
    answer = _last_json(out)["answer"]
    # Prompty parses a JSON answer itself when response_format asks for JSON
    text = answer if isinstance(answer, str) else json.dumps(answer)
    check = check_answer(text, schema_format())
    assert check is not None and check.valid, (out[-500:], check)
