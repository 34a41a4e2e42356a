"""The served API end to end: uvicorn on loopback, the real embedded model, SQLite, openai SDK."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from playground.config import Settings, load_settings
from playground.flows.registry import FlowRegistry
from playground.store import open_store
from tests.serve_support import KeepAliveServer, endpoint_spec, local_spec, save_flow, served
from tests.support import FaultServer


@pytest.fixture
def settings(home: Path) -> Settings:
    """Settings of the fresh home."""
    return load_settings()


def _sse_events(text: str) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in text.strip().split("\n\n"):
        kind, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
        events.append((kind, json.loads(data)))
    return events


def test_run_answers_with_the_embedded_model_and_records_a_serve_run(settings: Settings) -> None:
    save_flow(settings, local_spec(), label="production")
    with served(["gear-support@production"], settings) as url:
        response = httpx.post(
            f"{url}/v1/flows/gear-support/run",
            json={"inputs": {"question": "Is the tent waterproof?"}},
            timeout=60,
        )
        streamed = httpx.post(
            f"{url}/v1/flows/gear-support/run",
            json={"inputs": {"question": "Is the tent waterproof?"}, "stream": True},
            timeout=60,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"].strip()
    assert body["version"] == 1 and body["label"] == "production"
    assert body["usage"]["completion_tokens"] > 0
    assert body["latency_ms"] > 0 and body["cost_usd"] == 0
    run = open_store(settings).runs.get_run(body["run_id"])
    assert run.source == "serve"
    assert (run.flow_name, run.flow_version) == ("gear-support", 1)
    assert run.variables == {"question": "Is the tent waterproof?"}
    assert run.results[0].text == body["answer"]
    assert run.results[0].latency_ms == pytest.approx(body["latency_ms"])

    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = _sse_events(streamed.text)
    assert events[0][0] == "start" and events[-1][0] == "done"
    deltas = "".join(str(data["delta"]) for kind, data in events if kind == "message")
    done = events[-1][1]
    assert deltas == done["answer"] == body["answer"]  # temperature 0, seed 7
    assert events[0][1]["run_id"] == done["run_id"]
    assert open_store(settings).runs.get_run(str(done["run_id"])).results[0].text == deltas


def test_openai_sdk_calls_the_flow_streaming_and_not_and_rates_it(settings: Settings) -> None:
    save_flow(settings, local_spec(max_tokens=6), label="production")
    with served(["gear-support@production"], settings) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        completion = client.chat.completions.create(
            model="gear-support",
            messages=[
                {"role": "system", "content": "ignored: the flow fixes its prompt"},
                {"role": "user", "content": "Can I wash the sleeping bag?"},
            ],
        )
        chunks = list(
            client.chat.completions.create(
                model="gear-support",
                messages=[{"role": "user", "content": "Can I wash the sleeping bag?"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert [m.id for m in client.models.list()] == ["gear-support"]
        feedback = httpx.post(
            f"{url}/v1/feedback",
            json={"run_id": completion.id, "thumbs": "up", "comment": "clear"},
            timeout=10,
        )
    answer = completion.choices[0].message.content
    assert answer and completion.model == "gear-support"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == answer
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    run_id = completion.id.removeprefix("chatcmpl-")
    run = open_store(settings).runs.get_run(run_id)
    assert run.source == "serve" and run.variables["question"] == "Can I wash the sleeping bag?"
    assert feedback.status_code == 201, feedback.text
    stars, comment = open_store(settings).ratings.session_rating(run.results[0].id, "serve")
    assert (stars, comment) == (5, "clear")


def test_moving_a_label_switches_the_answering_version_without_restart(
    settings: Settings, fault_server: FaultServer
) -> None:
    first = save_flow(settings, endpoint_spec(fault_server.url("ok")), label="production")
    second = save_flow(settings, endpoint_spec(fault_server.url("ok"), description="second"))
    with served(["stub-flow@production"], settings) as url:

        def ask() -> dict[str, object]:
            response = httpx.post(
                f"{url}/v1/flows/stub-flow/run", json={"inputs": {"question": "hi"}}, timeout=10
            )
            assert response.status_code == 200, response.text
            return response.json()

        before = ask()
        listed = httpx.get(f"{url}/v1/flows", timeout=10).json()["data"]
        FlowRegistry(settings).set_label("stub-flow", "production", second.version or 0)
        after = ask()
        listed_after = httpx.get(f"{url}/v1/flows", timeout=10).json()["data"]
    assert (before["version"], after["version"]) == (first.version, second.version)
    assert listed[0]["version"] == 1 and listed_after[0]["version"] == 2
    assert listed[0]["inputs"] == {
        "question": {"type": "string", "required": True},
        "tone": {"type": "string", "required": False},
    }
    store = open_store(settings)
    assert store.runs.get_run(str(after["run_id"])).flow_version == 2
    assert store.runs.get_run(str(before["run_id"])).flow_version == 1


def test_health_openapi_and_metrics_count_calls_tokens_and_cost(
    settings: Settings, fault_server: FaultServer, write_config: object
) -> None:
    write_config('[prices."stub/fault-model"]\ninput = 1000.0\noutput = 2000.0\n')  # type: ignore[operator]
    settings = load_settings()
    save_flow(settings, endpoint_spec(fault_server.url("ok")))
    with served(["stub-flow"], settings) as url:
        for _ in range(3):
            httpx.post(f"{url}/v1/flows/stub-flow/run", json={"inputs": {"question": "hi"}})
        httpx.post(f"{url}/v1/flows/stub-flow/run", json={"inputs": {}})  # 422
        health = httpx.get(f"{url}/health").json()
        spec = httpx.get(f"{url}/openapi.json").json()
        metrics = httpx.get(f"{url}/metrics")
    assert health == {"status": "ok", "flows": ["stub-flow"]}
    assert {"/v1/flows/{name}/run", "/v1/chat/completions", "/v1/feedback"} <= set(spec["paths"])
    text = metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'playground_serve_calls_total{flow="stub-flow",outcome="ok",version="1"} 3.0' in text
    assert (
        'playground_serve_http_responses_total{route="/v1/flows/{name}/run",status="422"} 1.0'
        in text
    )
    assert 'playground_serve_call_latency_seconds_count{flow="stub-flow",version="1"} 3.0' in text
    completion = [
        line
        for line in text.splitlines()
        if line.startswith('playground_serve_tokens_total{flow="stub-flow",kind="completion"')
    ]
    assert completion and float(completion[0].split()[-1]) == 18.0  # 6 words x 3 calls
    cost = [
        line for line in text.splitlines() if line.startswith("playground_serve_cost_usd_total{")
    ]
    assert cost and float(cost[0].split()[-1]) > 0


@pytest.mark.parametrize("chunked", [False, True])
def test_served_calls_reuse_one_connection_to_the_model(settings: Settings, chunked: bool) -> None:
    # the SDK stops reading at [DONE]; unread, the body's end dropped the connection, and every
    # call paid a new one (a TLS handshake, for a remote model)
    with KeepAliveServer(chunked=chunked) as model:
        save_flow(settings, endpoint_spec(model.url))
        with served(["stub-flow"], settings) as url:
            answers = [
                httpx.post(
                    f"{url}/v1/flows/stub-flow/run",
                    json={"inputs": {"question": "hi"}, "stream": i % 2 == 1},
                    timeout=30,
                )
                for i in range(6)
            ]
        assert [a.status_code for a in answers] == [200] * 6
        assert answers[0].json()["answer"] == "Kept alive."
        assert model.connections == 1
