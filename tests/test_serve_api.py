"""The served API end to end: uvicorn on loopback, the real embedded model, SQLite, openai SDK."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from playground.config import load_settings
from playground.flows.registry import FlowRegistry
from playground.store import open_store
from tests.serve_support import (
    endpoint_spec,
    local_spec,
    save_flow,
    served,
)


@pytest.fixture
def settings(home: Path):  # noqa: ANN201
    """Settings of the fresh home."""
    return load_settings()


def test_run_answers_with_the_embedded_model_and_records_a_serve_run(settings) -> None:
    save_flow(settings, local_spec(), label="production")
    with served(["gear-support@production"], settings) as url:
        response = httpx.post(
            f"{url}/v1/flows/gear-support/run",
            json={"inputs": {"question": "Is the tent waterproof?"}},
            timeout=60,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"].strip()
    assert body["version"] == 1 and body["label"] == "production"
    assert body["usage"]["completion_tokens"] > 0
    assert body["latency_ms"] > 0 and body["cost_usd"] == 0
    run = open_store(settings).get_run(body["run_id"])
    assert run.source == "serve"
    assert (run.flow_name, run.flow_version) == ("gear-support", 1)
    assert run.variables == {"question": "Is the tent waterproof?"}
    assert run.results[0].text == body["answer"]
    assert run.results[0].latency_ms == pytest.approx(body["latency_ms"])
