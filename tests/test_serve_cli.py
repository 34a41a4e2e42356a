"""`playground flow serve`, `flow build` and `monitor` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from playground.cli import main
from playground.config import Settings, load_settings
from playground.flows.loader import read_spec_file
from playground.store import open_store
from tests.serve_support import endpoint_spec, save_flow, served
from tests.support import FaultServer, free_port, stop_process, wait_http


@pytest.fixture
def settings(home: Path) -> Settings:
    """Settings of the fresh home."""
    return load_settings()


def _serve(args: list[str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "flow", "serve", *args, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", timeout=60, proc=proc)
    return proc, url


def _ok_calls(text: str) -> float:
    """The served calls with outcome ok in a /metrics text."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "playground_serve_calls_total" and sample.labels["outcome"] == "ok"
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_flow_serve_listens_on_loopback_and_records_runs(
    settings: Settings, fault_server: FaultServer, tmp_path: Path, workers: int
) -> None:
    save_flow(settings, endpoint_spec(fault_server.url("ok")), label="production")
    log = tmp_path / "serve.log"
    proc, url = _serve(["stub-flow@production", "--workers", str(workers)], log)
    try:
        answers = [
            httpx.post(
                f"{url}/v1/flows/stub-flow/run", json={"inputs": {"question": f"q{i}"}}, timeout=20
            )
            for i in range(4)
        ]
        # new connections, so with two workers both answer some scrapes: each shows all 4
        scrapes = [_ok_calls(httpx.get(f"{url}/metrics", timeout=10).text) for _ in range(6)]
    finally:
        stop_process(proc)
    assert [a.status_code for a in answers] == [200] * 4
    assert scrapes == [4.0] * 6
    assert "Serving stub-flow@v1 at http://127.0.0.1:" in log.read_text()
    store = open_store(settings)
    assert {store.runs.get_run(a.json()["run_id"]).source for a in answers} == {"serve"}


def test_flow_serve_of_an_unknown_flow_is_one_error_line(settings: Settings) -> None:
    result = CliRunner().invoke(main, ["flow", "serve", "nope@production"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: No flow named nope")
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_flow_build_writes_spec_pinned_requirements_and_dockerfile(
    settings: Settings, fault_server: FaultServer, tmp_path: Path
) -> None:
    save_flow(settings, endpoint_spec(fault_server.url("ok")), label="production")
    out = tmp_path / "build"
    result = CliRunner().invoke(main, ["flow", "build", "stub-flow@production", "--out", str(out)])
    assert result.exit_code == 0, result.output
    spec = read_spec_file(out / "flow.yaml")
    assert (spec.name, spec.version) == ("stub-flow", 1)
    pins = [
        line
        for line in (out / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all("==" in pin for pin in pins)
    names = {pin.split("==")[0].split("[")[0] for pin in pins}
    assert {"prompt-playground", "fastapi", "uvicorn", "openai"} <= names
    dockerfile = (out / "Dockerfile").read_text()
    assert '"flow", "serve", "flow.yaml"' in dockerfile and "EXPOSE 8300" in dockerfile
    assert "api_key_env" in (out / "playground.toml").read_text()


def test_monitor_summarises_served_calls_per_version(
    settings: Settings, fault_server: FaultServer
) -> None:
    save_flow(settings, endpoint_spec(fault_server.url("ok")), label="production")
    with served(["stub-flow@production"], settings) as url:
        for i in range(3):
            httpx.post(f"{url}/v1/flows/stub-flow/run", json={"inputs": {"question": f"q{i}"}})
    save_flow(settings, endpoint_spec(fault_server.url("500")), label="production")
    with served(["stub-flow@production"], settings) as url:
        failed = httpx.post(f"{url}/v1/flows/stub-flow/run", json={"inputs": {"question": "x"}})
    assert failed.status_code == 502
    result = CliRunner().invoke(main, ["monitor", "--json", "--window", "1h"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    by_version = {v["version"]: v for v in report["versions"]}
    assert by_version[1]["requests"] == 3 and by_version[1]["error_rate"] == 0
    assert by_version[1]["latency_p50_ms"] > 0 and by_version[1]["tokens"] > 0
    assert by_version[2]["requests"] == 1 and by_version[2]["error_rate"] == 1
    assert report["worst"][0]["version"] == 2 and "server error" in report["worst"][0]["why"]
    text = CliRunner().invoke(main, ["monitor", "--window", "1h"])
    assert "stub-flow@v1  3 calls  errors 0.0%" in text.output
    bad = CliRunner().invoke(main, ["monitor", "--window", "soon"])
    assert bad.exit_code == 2
