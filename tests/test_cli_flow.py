"""`playground flow ...`: exit 0 on success, 1 with one `Error:` line, 2 for bad usage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from playground.cli import main
from tests.flow_samples import GOOD, write_spec


def invoke(*args: str) -> tuple[int, str, str]:
    """Run the CLI; return exit code, stdout and stderr."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _written(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file()] if home.exists() else []


def test_validate_a_good_file(home: Path) -> None:
    path = write_spec(Path.cwd())
    code, out, _ = invoke("flow", "validate", str(path))
    assert code == 0
    assert (
        out == f"ok: {path} is a valid gear-support spec (local/smollm2-135m-instruct, 1 input)\n"
    )


BAD_FILES = [
    ("yaml", "schema: [x", "Error: YAML syntax error in {path} on line 1: expected ',' or ']', "
     "but got '<stream end>'; fix the file."),
    ("not mapping", "just text\n", "Error: A flow spec must be a YAML mapping in {path}, but this "
     "is a str; start from `schema: playground.flow/v1`."),
    ("schema", GOOD.replace("flow/v1", "flow/v2"), "Error: Unknown schema 'playground.flow/v2' "
     "in {path}; this Prompt Playground reads playground.flow/v1."),
    ("role", GOOD.replace("role: system", "role: tool"), "Error: Field 'prompt.messages[0].role' "
     "in {path} is 'tool': the role must be system, user or assistant; fix it."),
    ("param", GOOD.replace("max_tokens: 24", "max_tokens: 0"), "Error: Field "
     "'model.params.max_tokens' in {path} is 0: input should be greater than or equal to 1; "
     "fix it."),
    ("version", GOOD.replace("name: gear-support", "name: gear-support\nversion: 0"), "Error: "
     "Field 'version' in {path} is 0: input should be greater than or equal to 1; fix it."),
    ("name", GOOD.replace("name: gear-support", "name: ../x"), "Error: Field 'name' in {path} is "
     "'../x': it must be 2-63 lowercase letters, digits or dashes, starting with a letter or digit"
     "; fix it."),
    ("jinja", GOOD.replace('"{{ question }}"', '"{% if %}"'), "Error: Field "
     "'prompt.messages[1].content' in {path} has a Jinja2 template syntax error on line 1: "
     "Expected an expression, got 'end of statement block'; fix it."),
    ("sandbox", GOOD.replace('"{{ question }}"', '"{{ question.__class__.__mro__ }}"'), "Error: "
     "Field 'prompt.messages[1].content' tries something the template sandbox forbids (access to "
     "attribute '__class__' of 'str' object is unsafe.); use only variables and filters."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected_error"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
@pytest.mark.parametrize("command", ["validate", "run", "save", "export"])
def test_bad_specs_exit_1_with_one_line_and_write_nothing(
    home: Path, text: str, expected_error: str, command: str
) -> None:
    path = write_spec(Path.cwd(), text)
    extra = {"export": ["--format", "python", "--out", "out"]}.get(command, [])
    code, out, err = invoke("flow", command, str(path), *extra)
    assert code == 1
    assert err == expected_error.format(path=path) + "\n"
    assert out == ""
    assert _written(home) == []
    assert not Path("out").exists()


def test_binary_file_is_refused(home: Path) -> None:
    path = Path("garbage.yaml")
    path.write_bytes(b"\x00\x01\x02PK\x03\x04")
    code, _, err = invoke("flow", "validate", str(path))
    assert (code, err) == (1, f"Error: The flow spec in {path} is binary, not YAML text; "
                               "pick the .yaml file.\n")  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected_error"),
    [
        (["--input", "questoin=x"],
         "Error: Flow gear-support has no input 'questoin'; it takes question.\n"),
        (["--input", "question="],
         "Error: Variable 'question' in the flow message 1 (user) is empty; fill it in and run "
         "again.\n"),
    ],
)  # fmt: skip
def test_run_input_errors_exit_1_and_save_nothing(
    home: Path, args: list[str], expected_error: str
) -> None:
    path = write_spec(Path.cwd())
    code, out, err = invoke("flow", "run", str(path), *args)
    assert (code, out, err) == (1, "", expected_error)
    assert _written(home) == []


def test_required_input_missing(home: Path) -> None:
    path = write_spec(Path.cwd(), GOOD.replace(', default: "Is the trail tent waterproof?"', ""))
    code, _, err = invoke("flow", "run", str(path))
    assert code == 1
    assert err == (
        "Error: Input 'question' is required by flow gear-support; pass --input question=... "
        "(or question=... in Python).\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["flow", "run"],
        ["flow", "run", "x.yaml", "--input", "novalue"],
        ["flow", "export", "x.yaml", "--format", "docx", "--out", "o"],
        ["flow", "export", "x.yaml", "--format", "python"],
        ["flow", "label", "gear-support", "zero", "production"],
        ["flow", "nope"],
    ],
)
def test_bad_usage_exits_2(home: Path, args: list[str]) -> None:
    code, _, _ = invoke(*args)
    assert code == 2


def test_missing_model_endpoint_is_a_run_failure(home: Path, write_config: object) -> None:
    path = write_spec(
        Path.cwd(), GOOD.replace("local/smollm2-135m-instruct", "gone/model")
        + "  endpoint: {base_url: 'http://127.0.0.1:9/v1'}\n",
    )  # fmt: skip
    code, out, err = invoke("flow", "run", str(path), "--json")
    assert code == 1
    document = json.loads(out)
    assert document["error"].startswith("Cannot reach http://127.0.0.1:9/v1 for gone/model")
    assert err == f"Error: {document['error']}\n"
    assert not (home / "playground.db").exists()


def test_save_run_label_list_diff_and_export(home: Path) -> None:
    path = write_spec(Path.cwd())
    assert invoke("flow", "save", str(path)) == (0, "saved gear-support v1\n", "")
    warmer = write_spec(Path.cwd(), GOOD.replace("temperature: 0.0", "temperature: 0.5"), "b.yaml")
    assert invoke("flow", "save", str(warmer)) == (0, "saved gear-support v2 (parent v1)\n", "")
    assert invoke("flow", "label", "gear-support", "1", "production") == (
        0, "gear-support@production -> v1\n", "",
    )  # fmt: skip
    code, out, _ = invoke("flow", "run", "gear-support@production", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["flow"] == "gear-support@1"
    assert result["error"] is None and result["text"]
    for key in ("model", "usage", "ttft_ms", "latency_ms", "tokens_per_s", "cost_usd"):
        assert key in result
    assert set(result["usage"]) >= {"prompt_tokens", "completion_tokens"}
    from playground.config import load_settings
    from playground.store import open_store

    stored = open_store(load_settings()).runs.get_run(result["run_id"])
    assert (stored.source, stored.flow_name, stored.flow_version) == ("flow", "gear-support", 1)
    code, out, _ = invoke("flow", "list", "--json")
    listed = json.loads(out)
    assert listed[0]["name"] == "gear-support" and listed[0]["labels"] == {"production": 1}
    assert [v["version"] for v in listed[0]["versions"]] == [1, 2]
    code, out, _ = invoke("flow", "diff", "gear-support@1", "gear-support@2")
    assert code == 0
    assert out.splitlines()[0] == "temperature 0.0 -> 0.5"
    assert "-    temperature: 0.0" in out and "+    temperature: 0.5" in out
    code, out, _ = invoke("flow", "export", "gear-support@2", "--format", "prompty", "--out", "ex")
    assert (code, out) == (0, "ex/gear-support.prompty\n")
    code, out, _ = invoke("flow", "validate", "gear-support@production")
    assert code == 0
    assert out == (
        "ok: gear-support@1 is a valid gear-support spec (local/smollm2-135m-instruct, 1 input)\n"
    )


def test_export_offers_every_format_the_exporters_know() -> None:
    from playground.cli.flow import EXPORT_FORMATS
    from playground.flows.exporters import FORMATS

    assert EXPORT_FORMATS == FORMATS
