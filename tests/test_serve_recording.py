"""Served runs are saved in batches by one writer, and still stored before the answer leaves."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from playground.config import Settings, load_settings
from playground.models.base import Message, ModelParams
from playground.records import Result, Run
from playground.serve.recorder import RunRecorder
from playground.store import open_store
from tests.serve_support import endpoint_spec, save_flow, served
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


def test_forty_concurrent_calls_are_each_stored_when_their_answer_arrives(
    settings: Settings, fault_server: FaultServer
) -> None:
    save_flow(settings, endpoint_spec(fault_server.url("ok")), label="production")
    store = open_store(settings)
    with served(["stub-flow@production"], settings) as url:

        def call(i: int) -> tuple[str, str]:
            response = httpx.post(
                f"{url}/v1/flows/stub-flow/run",
                json={"inputs": {"question": f"question {i}"}},
                timeout=60,
            )
            assert response.status_code == 200, response.text
            run_id = response.json()["run_id"]
            # read at once: a run id handed to a client must resolve (History, feedback)
            return run_id, store.runs.get_run(run_id).variables["question"]

        with ThreadPoolExecutor(40) as pool:
            answers = list(pool.map(call, range(40)))
    assert sorted(question for _, question in answers) == sorted(f"question {i}" for i in range(40))
    assert len({run_id for run_id, _ in answers}) == 40
    assert all(store.runs.get_run(run_id).source == "serve" for run_id, _ in answers)


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
