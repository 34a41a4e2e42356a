"""Served runs are saved in batches by one writer after their answer left; none is lost."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from playground.config import Settings, load_settings
from playground.models.base import Message, ModelParams
from playground.records import Result, Run
from playground.serve.recorder import RunRecorder
from playground.store import open_store
from playground.store.runs import Runs
from tests.serve_support import endpoint_spec, local_spec, save_flow, served
from tests.support import FaultServer


@pytest.fixture
def settings(home: Path) -> Settings:
    """Settings of the fresh home."""
    return load_settings()


def _run(text: str) -> Run:
    result = Result(
        model_id="stub/m",
        messages=[Message(role="user", content=text)],
        params=ModelParams(),
        text=text,
    )
    return Run(source="serve", variables={"q": text}, results=[result])


def test_a_burst_of_concurrent_calls_loses_none_and_feedback_finds_each_at_once(
    settings: Settings, fault_server: FaultServer
) -> None:
    save_flow(settings, endpoint_spec(fault_server.url("ok")), label="production")
    with served(["stub-flow@production"], settings) as url:

        def call(i: int) -> tuple[str, int]:
            response = httpx.post(
                f"{url}/v1/flows/stub-flow/run",
                json={"inputs": {"question": f"question {i}"}},
                timeout=60,
            )
            assert response.status_code == 200, response.text
            run_id = response.json()["run_id"]
            # at once: a run id handed to a client resolves through the server (it waits for
            # the run's commit), though the answer did not wait for it
            rated = httpx.post(
                f"{url}/v1/feedback", json={"run_id": run_id, "stars": 4}, timeout=60
            )
            return run_id, rated.status_code

        with ThreadPoolExecutor(40) as pool:
            answers = list(pool.map(call, range(40)))
    store = open_store(settings)
    assert {status for _, status in answers} == {201}
    runs = [store.runs.get_run(run_id) for run_id, _ in answers]
    assert sorted(r.variables["question"] for r in runs) == sorted(
        f"question {i}" for i in range(40)
    )
    assert {r.source for r in runs} == {"serve"}


def test_answers_do_not_wait_for_the_store_and_shutdown_stores_every_queued_call(
    settings: Settings, fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_flow(settings, endpoint_spec(fault_server.url("ok")), label="production")
    stored: list[str] = []
    save_runs = Runs.save_runs

    def slow_save_runs(self: Runs, batch: list[Run]) -> None:
        time.sleep(0.5)  # a store that is slow to commit (a disk, a remote PostgreSQL)
        save_runs(self, batch)
        stored.extend(run.id for run in batch)

    monkeypatch.setattr(Runs, "save_runs", slow_save_runs)
    with served(["stub-flow@production"], settings) as url:

        def call(i: int) -> str:
            response = httpx.post(
                f"{url}/v1/flows/stub-flow/run",
                json={"inputs": {"question": f"question {i}"}, "stream": i % 2 == 1},
                timeout=60,
            )
            assert response.status_code == 200, response.text
            return response.text

        with ThreadPoolExecutor(20) as pool:
            bodies = list(pool.map(call, range(20)))
        stored_when_answered = len(stored)
    run_ids = {json.loads(b)["run_id"] if b.startswith("{") else _run_id(b) for b in bodies}
    assert len(run_ids) == 20
    assert stored_when_answered < 20  # the answers left before their runs were committed
    assert set(stored) == run_ids  # and leaving `served` (a graceful shutdown) stored them all
    store = open_store(settings)
    assert {store.runs.get_run(run_id).source for run_id in run_ids} == {"serve"}


def _run_id(events: str) -> str:
    start = next(line for line in events.splitlines() if line.startswith("data: "))
    return str(json.loads(start.removeprefix("data: "))["run_id"])


def test_the_recorder_flushes_waits_for_one_run_and_refuses_runs_after_close(
    settings: Settings,
) -> None:
    recorder = RunRecorder(settings)
    runs = [_run(f"run {i}") for i in range(5)]
    futures = [recorder.submit(run) for run in runs]
    recorder.wait_stored(runs[-1].id)
    assert futures[-1].done()
    assert recorder.flush(10) and recorder.pending == 0
    recorder.wait_stored("never-queued")  # returns at once
    recorder.close()
    with pytest.raises(RuntimeError, match="closed"):
        recorder.submit(_run("too late"))
    store = open_store(settings)
    assert [store.runs.get_run(run.id).results[0].text for run in runs] == [
        f"run {i}" for i in range(5)
    ]


def test_one_run_that_cannot_be_saved_does_not_lose_the_rest_of_its_batch(
    settings: Settings,
) -> None:
    store = open_store(settings)
    stored = _run("already stored")
    store.runs.save_run(stored)
    clash = _run("clashing result id")
    clash.results[0].id = stored.results[0].id  # the results table refuses a second one
    recorder = RunRecorder(settings)
    runs = [_run("first"), clash, _run("last")]
    futures = [recorder.submit(run) for run in runs]
    recorder.close()
    assert futures[0].exception() is None and futures[2].exception() is None
    assert futures[1].exception() is not None
    assert store.runs.get_run(runs[0].id).results[0].text == "first"
    assert store.runs.get_run(runs[2].id).results[0].text == "last"
    assert (recorder.saved, recorder.failed) == (2, 1)


def test_a_hundred_concurrent_calls_on_a_slow_model_wait_together_and_none_is_lost(
    settings: Settings, fault_server: FaultServer
) -> None:
    # OpenAI-compatible models are awaited on the event loop: 100 calls in flight on a 1 s
    # model answer together, streamed or not, without a worker thread each, and all are stored
    save_flow(settings, endpoint_spec(fault_server.url("slow")))
    with served(["stub-flow"], settings) as url:

        def call(i: int) -> httpx.Response:
            return httpx.post(
                f"{url}/v1/flows/stub-flow/run",
                json={"inputs": {"question": f"question {i}"}, "stream": i % 2 == 1},
                timeout=60,
            )

        start = time.monotonic()
        with ThreadPoolExecutor(100) as pool:
            answers = list(pool.map(call, range(100)))
        elapsed = time.monotonic() - start
        workers = [t.name for t in threading.enumerate() if t.name.startswith("serve_")]
    assert [a.status_code for a in answers] == [200] * 100
    assert all(a.json()["answer"] == "Hello from the test server." for a in answers[::2])
    assert all("event: done" in a.text for a in answers[1::2])
    assert elapsed < 20  # one after another would take 100 s
    assert workers == []
    run_ids = [
        a.json()["run_id"] if i % 2 == 0 else a.text.split('"run_id": "')[1].split('"')[0]
        for i, a in enumerate(answers)
    ]
    runs = [open_store(settings).runs.get_run(run_id) for run_id in run_ids]
    assert [r.variables["question"] for r in runs] == [f"question {i}" for i in range(100)]
    assert {r.results[0].error for r in runs} == {None}
    latencies = [r.results[0].latency_ms or 0.0 for r in runs]
    assert min(latencies) >= 950  # each measured from its own send, 1 s model


@pytest.mark.parametrize("flow", ["stub-flow", "gear-support"])
def test_a_run_the_recorder_refuses_still_answers_and_is_counted_as_unrecorded(
    flow: str, settings: Settings, fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stub-flow's model is awaited on the event loop; the embedded model runs on a worker thread
    save_flow(settings, endpoint_spec(fault_server.url("ok")), label="production")
    save_flow(settings, local_spec(max_tokens=4), label="production")

    def refuse(self: RunRecorder, run: Run) -> None:
        raise RuntimeError("The run recorder is closed; the run was not queued.")

    monkeypatch.setattr(RunRecorder, "submit", refuse)
    counted = f'playground_serve_unrecorded_calls_total{{flow="{flow}",version="1"}} 2.0'
    with served([f"{flow}@production"], settings) as url:
        answers = [
            httpx.post(
                f"{url}/v1/flows/{flow}/run",
                json={"inputs": {"question": "where?"}, "stream": stream},
                timeout=60,
            )
            for stream in (False, True)
        ]
        deadline = time.monotonic() + 10
        while counted not in (metrics := httpx.get(f"{url}/metrics").text):
            assert time.monotonic() < deadline, metrics
            time.sleep(0.05)
    assert [a.status_code for a in answers] == [200, 200]  # the answers left all the same
    assert "Traceback" not in answers[0].text + answers[1].text
