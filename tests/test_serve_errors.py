"""Bad input to the served API: one sentence, the right status, nothing lost, no traceback."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from playground.config import Settings, load_settings
from playground.errors import ConfigError
from playground.serve.app import create_app
from playground.serve.settings import ServeSettings
from playground.store import open_store
from tests.serve_support import (
    TrickleServer,
    down_url,
    endpoint_spec,
    save_flow,
    served,
    stored_run,
    wait_for,
)
from tests.support import FaultServer


@pytest.fixture
def settings(home: Path) -> Settings:
    """Settings of the fresh home."""
    return load_settings()


@pytest.fixture
def stub_url(settings: Settings, fault_server: FaultServer) -> object:
    """A served stub-flow on the fault server's /ok model; yields the API's base URL."""
    save_flow(settings, endpoint_spec(fault_server.url("ok")), label="production")
    with served(["stub-flow@production"], settings, ServeSettings(max_body_kb=1)) as url:
        yield url


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    message = body["error"]["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert message.endswith(".") and "\n" not in message
    return body["error"]


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"inputs": {}}, "inputs.question", "required"),
        ({"inputs": {"question": "hi", "colour": "red"}}, "inputs.colour", "no input 'colour'"),
        ({"inputs": {"question": ["a"]}}, "inputs.question", "must be a string"),
        ({"inputs": {"question": "hi"}, "temperature": 2}, "temperature", "Unknown field"),
        ({"inputs": {"question": "hi"}, "max_tokens": 5000}, "max_tokens", "limit of 1024"),
        ({"inputs": "question"}, "inputs", "invalid"),
    ],
)
def test_bad_inputs_get_422_naming_the_field(
    stub_url: str, payload: dict[str, object], field: str, words: str
) -> None:
    response = httpx.post(f"{stub_url}/v1/flows/stub-flow/run", json=payload)
    assert response.status_code == 422
    error = _error(response)
    assert error["param"] == field
    assert words in str(error["message"])


def test_malformed_json_unknown_flow_and_oversized_bodies(stub_url: str) -> None:
    broken = httpx.post(
        f"{stub_url}/v1/flows/stub-flow/run",
        content=b'{"inputs": {',
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 422 and "not valid JSON" in str(_error(broken)["message"])
    unknown = httpx.post(f"{stub_url}/v1/flows/nope/run", json={"inputs": {}})
    assert unknown.status_code == 404
    assert "does not serve a flow named 'nope'" in str(_error(unknown)["message"])
    big = {"inputs": {"question": "x" * 5000}}
    too_large = httpx.post(f"{stub_url}/v1/flows/stub-flow/run", json=big)
    assert too_large.status_code == 413 and "limit of 1024 bytes" in str(
        _error(too_large)["message"]
    )

    def chunks() -> object:  # no Content-Length: the limit counts what arrives
        yield b'{"inputs": {"question": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}}'

    chunked = httpx.post(
        f"{stub_url}/v1/flows/stub-flow/run",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert chunked.status_code == 413
    client = openai.OpenAI(base_url=f"{stub_url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="does not serve a flow named 'other'"):
        client.chat.completions.create(model="other", messages=[{"role": "user", "content": "hi"}])


def test_max_tokens_caps_the_flow_and_is_recorded(stub_url: str, settings: Settings) -> None:
    response = httpx.post(
        f"{stub_url}/v1/flows/stub-flow/run", json={"inputs": {"question": "hi"}, "max_tokens": 3}
    )
    assert response.status_code == 200
    run = stored_run(settings, response.json()["run_id"])  # still serving: stored just after
    assert run.results[0].params.max_tokens == 3


def test_feedback_for_unknown_run_or_bad_stars(stub_url: str) -> None:
    missing = httpx.post(f"{stub_url}/v1/feedback", json={"run_id": "0" * 32, "stars": 4})
    assert missing.status_code == 404 and "No run with id" in str(_error(missing)["message"])
    bad = httpx.post(f"{stub_url}/v1/feedback", json={"run_id": "abc", "stars": 9})
    assert bad.status_code == 422 and _error(bad)["param"] == "stars"
    empty = httpx.post(f"{stub_url}/v1/feedback", json={"run_id": "abc"})
    assert empty.status_code == 422


def test_bearer_token_is_required_except_for_health(
    settings: Settings, fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_flow(settings, endpoint_spec(fault_server.url("ok")))
    monkeypatch.setenv("SERVE_TOKEN", "s3cret-token")
    with served(["stub-flow"], settings, ServeSettings(api_key_env="SERVE_TOKEN")) as url:
        payload = {"inputs": {"question": "hi"}}
        missing = httpx.post(f"{url}/v1/flows/stub-flow/run", json=payload)
        wrong = httpx.post(
            f"{url}/v1/flows/stub-flow/run", json=payload, headers={"authorization": "Bearer no"}
        )
        metrics = httpx.get(f"{url}/metrics")
        health = httpx.get(f"{url}/health")
        good = openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret-token", max_retries=0)
        answer = good.chat.completions.create(
            model="stub-flow", messages=[{"role": "user", "content": "hi"}]
        )
        bad = openai.OpenAI(base_url=f"{url}/v1", api_key="guess", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(
                model="stub-flow", messages=[{"role": "user", "content": "hi"}]
            )
    assert missing.status_code == wrong.status_code == metrics.status_code == 401
    assert "s3cret" not in missing.text + wrong.text
    assert "bearer token" in str(_error(missing)["message"])
    assert health.status_code == 200
    assert answer.choices[0].message.content == "Hello from the test server."


def test_a_named_but_unset_token_variable_refuses_to_start(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="NO_SUCH_TOKEN, which is not set"):
        create_app(["x"], settings, ServeSettings(api_key_env="NO_SUCH_TOKEN"), background=False)


def test_model_down_is_502_in_one_sentence_and_an_errored_run(settings: Settings) -> None:
    save_flow(settings, endpoint_spec(down_url()))
    with served(["stub-flow"], settings) as url:
        response = httpx.post(f"{url}/v1/flows/stub-flow/run", json={"inputs": {"question": "hi"}})
        streamed = httpx.post(
            f"{url}/v1/flows/stub-flow/run", json={"inputs": {"question": "hi"}, "stream": True}
        )
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(
                model="stub-flow", messages=[{"role": "user", "content": "hi"}], stream=True
            )
    assert response.status_code == streamed.status_code == caught.value.status_code == 502
    message = str(_error(response)["message"])
    assert message.startswith("Cannot reach http://127.0.0.1:")
    run = open_store(settings).runs.get_run(response.json()["run_id"])
    assert run.source == "serve" and run.results[0].error == message
    assert open_store(settings).runs.get_run(streamed.json()["run_id"]).results[0].error == message


def test_client_disconnecting_mid_stream_stops_the_model_and_records_cut_off(
    settings: Settings,
) -> None:
    with TrickleServer(words=200, delay_s=0.05) as trickle:
        save_flow(settings, endpoint_spec(trickle.url, max_tokens=500))
        with served(["stub-flow"], settings) as url:
            run_id = None
            with httpx.stream(
                "POST",
                f"{url}/v1/flows/stub-flow/run",
                json={"inputs": {"question": "hi"}, "stream": True},
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("data: ") and run_id is None:
                        run_id = line.split('"run_id": "')[1].split('"')[0]
                    if line.count("delta") and line.count(" w3"):
                        break  # hang up after four words
            assert run_id is not None
            store = open_store(settings)

            def recorded() -> bool:
                try:
                    return store.runs.get_run(run_id).results[0].error is not None
                except Exception:
                    return False

            assert wait_for(recorded, 10)
            assert wait_for(lambda: trickle.sent, 10)
        result = store.runs.get_run(run_id).results[0]
    assert result.error is not None and result.error.startswith("Cut off")
    assert result.text.startswith(" w0 w1 w2 w3")
    assert trickle.sent[0] < 60  # the model's stream stopped, it did not run to 200 words


def test_cors_is_off_unless_origins_are_configured(
    settings: Settings, fault_server: FaultServer
) -> None:
    save_flow(settings, endpoint_spec(fault_server.url("ok")))
    preflight = {
        "origin": "https://app.example.com",
        "access-control-request-method": "POST",
    }
    with served(["stub-flow"], settings) as url:
        closed = httpx.options(f"{url}/v1/flows/stub-flow/run", headers=preflight)
    with served(
        ["stub-flow"], settings, ServeSettings(cors_origins=["https://app.example.com"])
    ) as url:
        opened = httpx.options(f"{url}/v1/flows/stub-flow/run", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    assert opened.headers["access-control-allow-origin"] == "https://app.example.com"
