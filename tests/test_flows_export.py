"""Exports hold everything but secrets, and the plain script reproduces the call."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from playground.cli import main
from playground.config import load_settings
from playground.flows.exporters import export_flow, export_zip
from playground.flows.loader import parse_spec
from playground.flows.run import Flow
from tests.flow_samples import GOOD, write_spec

SECRET = "sk-test-Zq8vX1DistinctiveKey42"
RETRIEVAL_SPEC = GOOD.replace("{{ question }}", "{{ question }}\\n\\nContext:\\n{{ context }}") + (
    "retrieval: {store: gear-manuals, top_k: 2, query: '{{ question }}'}\n"
)


def test_promptflow_export_is_a_dag_flow_with_an_llm_node(tmp_path: Path) -> None:
    spec = parse_spec(GOOD)
    export_flow(spec, "promptflow", tmp_path)
    dag = yaml.safe_load((tmp_path / "flow.dag.yaml").read_text())
    (node,) = dag["nodes"]
    assert node["type"] == "llm" and node["api"] == "chat"
    assert node["inputs"]["model"] == "smollm2-135m-instruct"
    assert node["inputs"]["seed"] == 7 and node["inputs"]["temperature"] == 0.0
    assert node["inputs"]["question"] == "${inputs.question}"
    assert dag["inputs"]["question"]["default"] == "Is the trail tent waterproof?"
    template = (tmp_path / "chat.jinja2").read_text()
    assert template.startswith("# system:\nAnswer in one short sentence.\n")
    assert "# user:\n{{ question }}" in template
    connection = yaml.safe_load((tmp_path / "connection.yaml").read_text())
    assert connection["api_key"] == "<user-input>"
    assert connection["name"] == node["connection"]
    assert "promptflow" in (tmp_path / "requirements.txt").read_text()


def test_promptflow_export_has_a_python_node_for_retrieval(tmp_path: Path) -> None:
    export_flow(parse_spec(RETRIEVAL_SPEC), "promptflow", tmp_path)
    dag = yaml.safe_load((tmp_path / "flow.dag.yaml").read_text())
    retrieve, chat = dag["nodes"]
    assert retrieve["type"] == "python" and retrieve["source"]["path"] == "retrieve.py"
    assert chat["inputs"]["context"] == "${retrieve.output}"
    source = (tmp_path / "retrieve.py").read_text()
    compile(source, "retrieve.py", "exec")
    assert "STORE = 'gear-manuals'" in source


def test_block_tags_keep_their_newlines_in_promptflow(tmp_path: Path) -> None:
    text = GOOD.replace('"{{ question }}"', '"{% if question %}\\nQ: {{ question }}{% endif %}"')
    export_flow(parse_spec(text), "prompty", tmp_path)
    body = (tmp_path / "gear-support.prompty").read_text()
    assert "{% if question +%}" in body and "{% endif +%}" in body


def test_export_zip_holds_every_file() -> None:
    archive = zipfile.ZipFile(io.BytesIO(export_zip(parse_spec(GOOD), "promptflow")))
    names = sorted(Path(n).name for n in archive.namelist())
    assert names == ["README.md", "chat.jinja2", "connection.yaml", "flow.dag.yaml",
                     "requirements.txt"]  # fmt: skip


def test_python_export_reproduces_the_call(tmp_path: Path, llama_server: str) -> None:
    (script,) = export_flow(parse_spec(GOOD), "python", tmp_path)
    done = subprocess.run(
        [sys.executable, str(script), "--base-url", llama_server, "--json",
         "--input", "question=Is the trail tent waterproof?"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["model"] == "smollm2-135m-instruct"
    assert answer["text"]
    assert answer["usage"]["completion_tokens"] <= 24


def _files_under(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("*") if p.is_file()]


def test_secrets_never_land_in_a_file(
    home: Path,
    tmp_path: Path,
    llama_server: str,
    write_config: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERVE_KEY", SECRET)
    write_config(  # type: ignore[operator]
        f'[endpoints.served]\nbase_url = "{llama_server}"\napi_key_env = "SERVE_KEY"\n'
    )
    spec_path = write_spec(
        tmp_path, GOOD.replace("local/smollm2-135m-instruct", "served/smollm2-135m-instruct")
        + f"  endpoint: {{base_url: '{llama_server}', api_key_env: SERVE_KEY}}\n",
    )  # fmt: skip
    runner = CliRunner()
    assert runner.invoke(main, ["flow", "save", str(spec_path)]).exit_code == 0
    ran = runner.invoke(main, ["flow", "run", "gear-support", "--json"])
    assert ran.exit_code == 0, ran.output
    assert SECRET not in ran.output
    out = tmp_path / "exports"
    for fmt in ("promptflow", "prompty", "python"):
        result = runner.invoke(main, ["flow", "export", "gear-support", "--format", fmt,
                                      "--out", str(out / fmt)])  # fmt: skip
        assert result.exit_code == 0, result.output
    # Also the in-process path with the spec's own endpoint URL.
    assert Flow.load("gear-support@1", load_settings()).run().error is None
    files = _files_under(home, out)
    assert any(p.suffix == ".db" for p in files) and len(files) > 8
    leaked = [p for p in files if SECRET.encode() in p.read_bytes()]
    assert leaked == []
    assert "SERVE_KEY" in (out / "prompty" / "gear-support.prompty").read_text()


def test_unicode_line_breaks_in_a_default_survive_the_promptflow_yaml() -> None:
    """A NEL (\\x85) or line separator in a spec value reads back unchanged, not as a space."""
    import yaml

    from playground.flows.loader import dump_yaml

    for text in ("cafe\x85", "a\u2028b", "end\u2029\n"):
        assert yaml.safe_load(dump_yaml({"default": text}))["default"] == text
