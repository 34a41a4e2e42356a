"""The PromptFlow and Prompty exports run in PromptFlow 1.18 itself, in an isolated venv.

The venv is cached under $XDG_CACHE_HOME (or ~/.cache)/prompt-playground/, keyed by the
PromptFlow series and Python version, so only the first run pays for the install.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground.flows.exporters import export_flow
from playground.flows.loader import parse_spec
from tests.flow_samples import GOOD

PF_SERIES = "1.18"
PF_PACKAGES = [f"promptflow=={PF_SERIES}.*", "promptflow-tools", "keyrings.alt"]
QUESTION = "Is the trail tent waterproof?"


def _venv_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    python = f"py{sys.version_info.major}.{sys.version_info.minor}"
    return cache / "prompt-playground" / f"pf-venv-{PF_SERIES}-{python}"


def _pf_venv() -> Path:
    """The cached venv with promptflow 1.18 (created once, under a lock)."""
    venv = _venv_dir()
    ready = venv / ".ready"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions must not build it at once
        if ready.exists():
            return venv
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
             *PF_PACKAGES],
            check=True, timeout=1500,
        )  # fmt: skip
        ready.touch()
    return venv


def _pf_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PF_HOME_DIRECTORY=str(tmp_path / "pf-home"),  # connections and config stay in the test
        PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",  # no desktop keyring here
        PROMPTFLOW_DISABLE_TELEMETRY="true",
    )
    env.pop("VIRTUAL_ENV", None)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _last_json(text: str) -> dict[str, object]:
    start = text.rfind("\n{")
    return json.loads(text[start + 1 :] if start >= 0 else text)  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_exports_run_in_promptflow_prompty_and_plain_python(
    tmp_path: Path, llama_server: str
) -> None:
    venv = _pf_venv()
    pf = str(venv / "bin" / "pf")
    env = _pf_env(tmp_path)
    spec = parse_spec(GOOD)
    flow_dir, prompty_dir, python_dir = tmp_path / "pf", tmp_path / "prompty", tmp_path / "py"
    export_flow(spec, "promptflow", flow_dir)
    export_flow(spec, "prompty", prompty_dir)
    (script,) = export_flow(spec, "python", python_dir)

    # The plain script, with the main venv's python.
    plain = _run(
        [sys.executable, str(script), "--base-url", llama_server, "--json",
         "--input", f"question={QUESTION}"],
        dict(os.environ), tmp_path,
    )  # fmt: skip
    expected = json.loads(plain)["text"]
    assert expected

    # PromptFlow: no tracing service, no telemetry; the connection gets the server and a key.
    _run([pf, "config", "set", "telemetry.enabled=false", "trace.destination=none"], env, tmp_path)
    _run(
        [pf, "connection", "create", "--file", str(flow_dir / "connection.yaml"),
         "--set", "api_key=not-needed", f"base_url={llama_server}"],
        env, tmp_path,
    )  # fmt: skip
    out = _run([pf, "flow", "test", "--flow", str(flow_dir), "--inputs", f"question={QUESTION}"],
               env, tmp_path)  # fmt: skip
    assert _last_json(out)["answer"] == expected

    # Prompty: loadable by Prompty.load, and it gives the same answer.
    prompty = prompty_dir / "gear-support.prompty"
    code = (
        "import json, sys\n"
        "from promptflow.core import Prompty\n"
        "p = Prompty.load(source=sys.argv[1], "
        "model={'configuration': {'base_url': sys.argv[2]}})\n"
        "print(json.dumps({'answer': p(question=sys.argv[3])}))\n"
    )
    out = _run([str(venv / "bin" / "python"), "-c", code, str(prompty), llama_server, QUESTION],
               env, tmp_path)  # fmt: skip
    assert _last_json(out)["answer"] == expected
