"""OpenAI-compatible endpoints over real HTTP: the llama.cpp server and injected faults."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from playground.config import Price, load_settings
from playground.errors import EndpointError
from playground.models.base import Message, ModelParams, Usage
from playground.models.local import DEFAULT_MODEL_ID, LocalModel, embedded_gguf_path
from playground.models.openai_compat import EndpointSpec, OpenAICompatModel, client_for
from playground.models.registry import get_model
from playground.records import Result
from playground.runner import MeasuredStream
from tests.support import FAULT_MODEL, FaultServer, free_port

SERVED = "smollm2-135m-instruct"
GREEDY = ModelParams(temperature=0.0, seed=7, max_tokens=8)
HELLO = [Message(role="user", content="Say hello.")]


def compatible(base_url: str, timeout: float = 60.0, max_retries: int = 0) -> EndpointSpec:
    return EndpointSpec("compatible", base_url, None, None, timeout, max_retries)


def stream_all(model: OpenAICompatModel, params: ModelParams = GREEDY) -> list[str | Usage]:
    return list(model.stream(HELLO, params))


def astream_all(model: OpenAICompatModel, params: ModelParams = GREEDY) -> list[str | Usage]:
    """What the served API gets: the model's astream, on an event loop."""

    async def collect() -> list[str | Usage]:
        return [item async for item in model.astream(HELLO, params)]

    return asyncio.run(collect())


def fault_model(
    write_config: Any, server: FaultServer, mode: str, extra: str = ""
) -> OpenAICompatModel:
    """An [endpoints.srv] model on one fault mode, through the registry like a user's config."""
    write_config(
        f'[endpoints.srv]\nbase_url = "{server.url(mode)}"\ntimeout = 1\nmax_retries = 1\n{extra}'
    )
    model = get_model(f"srv/{FAULT_MODEL}", load_settings())
    assert isinstance(model, OpenAICompatModel)
    return model


def failure(model: OpenAICompatModel) -> str:
    with pytest.raises(EndpointError) as caught:
        stream_all(model)
    return str(caught.value)


def test_streaming_from_llama_server_yields_text_and_no_usage(llama_server: str) -> None:
    model = OpenAICompatModel(f"srv/{SERVED}", SERVED, compatible(llama_server))

    items = stream_all(model)

    deltas = [i for i in items if isinstance(i, str)]
    assert "".join(deltas).strip()
    assert 1 <= len(deltas) <= GREEDY.max_tokens
    # llama_cpp.server ignores stream_options.include_usage: the runner must estimate usage
    assert not any(isinstance(i, Usage) for i in items)


def test_llama_server_and_the_local_model_count_the_same_prompt_tokens(llama_server: str) -> None:
    """Same GGUF, same chat template: the server's prompt count equals the local model's.

    The texts are not compared: llama.cpp reuses its cached prompt prefix between requests,
    which shifts the logits, so the server's greedy answer depends on what it served before.
    """
    client = openai.OpenAI(base_url=llama_server, api_key="unused", max_retries=0, timeout=60)
    reply = client.chat.completions.create(
        model=SERVED,
        messages=[m.model_dump() for m in HELLO],  # type: ignore[misc]
        temperature=0.0,
        seed=7,
        max_tokens=GREEDY.max_tokens,
    )
    local_items = list(LocalModel(DEFAULT_MODEL_ID, embedded_gguf_path()).stream(HELLO, GREEDY))

    local_usage = local_items[-1]
    assert isinstance(local_usage, Usage)
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == local_usage.prompt_tokens
    assert reply.usage.completion_tokens == local_usage.completion_tokens == GREEDY.max_tokens


def test_a_working_fault_server_streams_every_delta(
    home: Path, write_config: Any, fault_server: FaultServer
) -> None:
    items = stream_all(fault_model(write_config, fault_server, "ok"))

    assert items == ["Hello", " from", " the", " test", " server", "."]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (
            "500",
            "srv/fault-model failed with a server error (500) at {url} after 1 retry; "
            "try again later.",
        ),
        (
            "429",
            "srv/fault-model is rate-limited by {url} (429) after 1 retry; "
            "wait a minute and run again.",
        ),
    ],
)
def test_server_errors_and_rate_limits_are_retried_then_one_sentence(
    home: Path, write_config: Any, fault_server: FaultServer, mode: str, expected: str
) -> None:
    model = fault_model(write_config, fault_server, mode)
    before = fault_server.hits.get(mode, 0)

    message = failure(model)

    assert fault_server.hits[mode] - before == 2  # max_retries + 1
    assert message == expected.format(url=fault_server.url(mode))


def test_a_refused_key_names_the_key_variable(
    home: Path, write_config: Any, fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SRV_API_KEY", "sk-wrong")
    model = fault_model(write_config, fault_server, "401", 'api_key_env = "SRV_API_KEY"\n')
    before = fault_server.hits.get("401", 0)

    message = failure(model)

    assert message == (
        f"{fault_server.url('401')} refused the API key for srv/fault-model (401); "
        "check SRV_API_KEY."
    )
    assert fault_server.hits["401"] - before == 1  # a wrong key is not retried


def test_a_hanging_server_times_out_within_a_bounded_time(
    home: Path, write_config: Any, fault_server: FaultServer
) -> None:
    model = fault_model(write_config, fault_server, "hang")

    start = time.monotonic()
    message = failure(model)
    elapsed = time.monotonic() - start

    assert message == (
        "srv/fault-model did not answer within 1 s after 1 retry; "
        "try again or raise the timeout in playground.toml."
    )
    assert 2.0 <= elapsed < 6.0  # two attempts of 1 s, plus one short backoff


def test_a_body_that_is_not_an_event_stream_is_one_sentence(
    home: Path, write_config: Any, fault_server: FaultServer
) -> None:
    message = failure(fault_model(write_config, fault_server, "garbage"))

    assert message == (
        f"{fault_server.url('garbage')} sent no answer for srv/fault-model; check that base_url "
        "points at an OpenAI-compatible /v1 API and that the prompt fits the context window."
    )


def test_an_unreachable_server_is_one_sentence() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    model = OpenAICompatModel("srv/anything", "anything", compatible(url))

    start = time.monotonic()
    message = failure(model)

    assert message == (
        f"Cannot reach {url} for srv/anything; check that the server is running "
        "and its base_url in playground.toml."
    )
    assert time.monotonic() - start < 3.0


def test_a_model_the_server_does_not_serve_is_one_sentence(llama_server: str) -> None:
    # llama_cpp.server answers any model name with its one model, so use a real 404 path
    model = OpenAICompatModel("srv/x", "x", compatible(llama_server + "/nothing-here"))

    message = failure(model)

    assert message == (
        f"{llama_server}/nothing-here does not serve srv/x (404); "
        "pick a model it lists on the Settings page."
    )


def test_a_prompt_longer_than_the_servers_context_is_an_error_not_an_empty_answer(
    llama_server: str,
) -> None:
    # llama_cpp.server answers 200 and an empty event stream when the prompt overflows
    model = OpenAICompatModel(f"srv/{SERVED}", SERVED, compatible(llama_server))
    too_long = [Message(role="user", content="word " * 3000)]

    with pytest.raises(EndpointError) as caught:
        list(model.stream(too_long, GREEDY))

    assert str(caught.value) == (
        f"{llama_server} sent no answer for srv/{SERVED}; check that base_url points at an "
        "OpenAI-compatible /v1 API and that the prompt fits the context window."
    )


def test_one_client_per_endpoint_is_shared() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"

    assert client_for(compatible(url)) is client_for(compatible(url))
    assert client_for(compatible(url)) is not client_for(compatible(url, timeout=9.0))


TLS_SCRIPT = """
from playground.models.openai_compat import EndpointSpec, build_tls_early, client_for
build_tls_early()
try:
    a = client_for(EndpointSpec("compatible", "https://a.example/v1", None, None, 5.0, 0))
    b = client_for(EndpointSpec("compatible", "https://b.example/v1", None, None, 5.0, 0))
except Exception as exc:
    print(type(exc).__name__)
else:
    def trusted(client):
        return client._client._transport._pool._ssl_context.get_ca_certs()
    print(len(trusted(a)), len(trusted(b)), trusted(a) == trusted(b))
"""


def _tls_run(ca_file: Path) -> str:
    env = {**os.environ, "SSL_CERT_FILE": str(ca_file), "PYTHONPATH": str(Path.cwd())}
    done = subprocess.run(
        [sys.executable, "-c", TLS_SCRIPT], capture_output=True, text=True, env=env, timeout=60
    )
    return done.stdout.strip() or done.stderr


def test_an_ssl_context_built_ahead_trusts_what_the_client_would(tmp_path: Path) -> None:
    # `run` and `eval run` build the first client's context on a thread as they start: it must
    # still honour SSL_CERT_FILE, and a second endpoint still gets a context of its own
    bundle = Path(__import__("certifi").where()).read_text()
    one_ca = tmp_path / "one.pem"
    one_ca.write_text(
        bundle[bundle.index("-----BEGIN") : bundle.index("-----END CERTIFICATE-----") + 25]
    )

    assert _tls_run(one_ca) == "1 1 True"
    # a missing CA file fails the client as it did without the early context
    assert _tls_run(tmp_path / "missing.pem") == "FileNotFoundError"


def test_requests_carry_the_params_the_provider_expects() -> None:
    params = ModelParams(temperature=0.3, top_p=0.9, max_tokens=5, seed=11, stop=["END"])
    spec = compatible("http://127.0.0.1:1/v1")
    openai_spec = EndpointSpec("openai", None, "sk-x", "OPENAI_API_KEY", 5.0, 0)

    server_request = OpenAICompatModel("srv/m", "m", spec)._request(HELLO, params)
    openai_request = OpenAICompatModel("openai/m", "m", openai_spec)._request(HELLO, params)

    assert server_request["max_tokens"] == 5 and "max_completion_tokens" not in server_request
    assert openai_request["max_completion_tokens"] == 5 and "max_tokens" not in openai_request
    assert server_request["seed"] == 11
    assert server_request["stop"] == ["END"]
    assert server_request["stream_options"] == {"include_usage": True}


def test_a_server_that_trickles_comments_is_cut_at_the_total_timeout(
    home: Path, write_config: Any, fault_server: FaultServer
) -> None:
    # SSE comments every 0.2 s keep each read of the SDK busy, so its per-read timeout never fires
    model = fault_model(write_config, fault_server, "trickle")

    start = time.monotonic()
    message = failure(model)
    elapsed = time.monotonic() - start

    assert message == (
        f"srv/fault-model did not finish within its 1 s timeout: {fault_server.url('trickle')} "
        "kept the stream open without sending a token; raise timeout in playground.toml or "
        "check the server."
    )
    assert elapsed < 3.0


def test_a_stream_that_goes_quiet_mid_answer_is_cut_at_the_idle_timeout(
    home: Path, write_config: Any, fault_server: FaultServer
) -> None:
    write_config(
        f'[endpoints.srv]\nbase_url = "{fault_server.url("stall")}"\ntimeout = 20\n'
        "idle_timeout = 0.5\nmax_retries = 0\n"
    )
    model = get_model(f"srv/{FAULT_MODEL}", load_settings())
    received: list[str | Usage] = []

    start = time.monotonic()
    with pytest.raises(EndpointError) as caught:
        for item in model.stream(HELLO, GREEDY):
            received.append(item)
    elapsed = time.monotonic() - start

    assert received == ["Hello", " from"]
    assert str(caught.value) == (
        f"srv/fault-model stopped answering after 2 tokens: {fault_server.url('stall')} sent "
        "nothing for 0.5 s; the partial answer is kept; run again or raise idle_timeout in "
        "playground.toml."
    )
    assert elapsed < 3.0


def test_a_server_that_closes_mid_stream_is_a_cut_off_answer_not_unreachable(
    home: Path, write_config: Any, fault_server: FaultServer
) -> None:
    model = fault_model(write_config, fault_server, "cutoff")
    received: list[str | Usage] = []

    with pytest.raises(EndpointError) as caught:
        for item in model.stream(HELLO, GREEDY):
            received.append(item)

    assert received == ["Hello", " from", " the"]
    assert str(caught.value) == (
        f"The answer from srv/fault-model was cut off after 3 tokens: "
        f"{fault_server.url('cutoff')} closed the connection mid-stream; the partial answer is "
        "kept, run again for a full one."
    )


def test_an_empty_stream_with_no_finish_reason_is_an_error_not_an_empty_answer(
    home: Path, write_config: Any, fault_server: FaultServer
) -> None:
    message = failure(fault_model(write_config, fault_server, "empty"))

    assert message == (
        f"{fault_server.url('empty')} ended the stream for srv/fault-model with no answer and no "
        "finish reason (the server stopped the request, often to serve another one); run again, "
        "and serve llama.cpp without interrupting requests."
    )


def test_serve_model_queues_concurrent_requests_instead_of_interrupting_them(
    llama_server: str,
) -> None:
    # llama_cpp.server's default interrupts a running request when the next one arrives,
    # which ended the first answer empty; `playground serve-model` turns that off
    model = OpenAICompatModel(f"srv/{SERVED}", SERVED, compatible(llama_server))
    answers: list[str] = []
    errors: list[str] = []

    def ask() -> None:
        try:
            answers.append("".join(i for i in stream_all(model) if isinstance(i, str)))
        except EndpointError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.3)  # the second request arrives while the first one streams
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert len(answers) == 2 and all(a.strip() for a in answers)


def test_a_key_the_server_echoes_back_never_reaches_the_message(
    home: Path, write_config: Any, fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SRV_API_KEY", "sk-live-0123456789abcdef")
    model = fault_model(write_config, fault_server, "echo400", 'api_key_env = "SRV_API_KEY"\n')

    message = failure(model)

    assert message == (
        f"{fault_server.url('echo400')} rejected the request for srv/fault-model: upstream "
        "refused the request (Authorization: Bearer [redacted])"
    )


def test_client_creation_is_not_counted_as_latency(
    home: Path, write_config: Any, fault_server: FaultServer
) -> None:
    # the first call of a process imports the SDK and builds its client: that is set-up, not
    # time to first token (the runner calls prepare() before its clock starts)
    made: dict[EndpointSpec, Any] = {}

    def slow_client(spec: EndpointSpec) -> Any:
        if spec not in made:  # like client_for: slow once, then shared
            time.sleep(1.5)
            made[spec] = client_for(spec)
        return made[spec]

    spec = compatible(fault_server.url("ok"))
    model = OpenAICompatModel(f"srv/{FAULT_MODEL}", FAULT_MODEL, spec, client_factory=slow_client)
    result = Result(model_id=model.model_id, messages=HELLO, params=GREEDY)

    MeasuredStream(model, result, Price()).drain()

    assert result.error is None and result.text == "Hello from the test server."
    assert result.ttft_ms is not None and result.latency_ms is not None
    assert result.ttft_ms <= result.latency_ms < 1000


def test_a_sooner_deadline_after_a_later_one_still_fires_on_time() -> None:
    # the watcher is woken only for a deadline sooner than its wait; a later one waits its turn
    from playground.models.openai_compat import _Deadline

    fired: list[tuple[str, float]] = []
    start = time.monotonic()
    late = _Deadline(start + 30, 30, lambda: fired.append(("late", time.monotonic() - start)))
    later = _Deadline(start + 60, 60, lambda: fired.append(("later", time.monotonic() - start)))
    soon = _Deadline(start + 0.3, 30, lambda: fired.append(("soon", time.monotonic() - start)))
    idle = _Deadline(start + 30, 0.5, lambda: fired.append(("idle", time.monotonic() - start)))
    idle.chunk_arrived()  # its idle deadline (0.5 s) is now sooner than its total one
    deadline = time.monotonic() + 5
    while len(fired) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    for watched in (late, later, soon, idle):
        watched.stop()
    assert [name for name, _ in fired] == ["soon", "idle"]
    assert fired[0][1] < 1.5 and fired[1][1] < 2.0
    assert (soon.expired, idle.expired, late.expired) == ("total", "idle", None)


def _outcome(collect: Any, model: OpenAICompatModel) -> object:
    try:
        return collect(model)
    except EndpointError as exc:
        return str(exc)


@pytest.mark.parametrize(
    "mode", ["ok", "500", "429", "401", "hang", "garbage", "cutoff", "empty", "trickle"]
)
def test_the_event_loop_path_answers_retries_and_fails_like_the_threaded_one(
    home: Path, write_config: Any, fault_server: FaultServer, mode: str
) -> None:
    # the served API awaits astream (AsyncOpenAI on the loop): a caller must get the same
    # deltas or the same sentence, after the same number of attempts, in the same time
    model = fault_model(write_config, fault_server, mode)
    outcomes, hits, seconds = [], [], []
    for collect in (stream_all, astream_all):
        before = fault_server.hits.get(mode, 0)
        start = time.monotonic()
        outcomes.append(_outcome(collect, model))
        seconds.append(time.monotonic() - start)
        hits.append(fault_server.hits.get(mode, 0) - before)

    assert outcomes[1] == outcomes[0]
    assert hits[1] == hits[0]
    assert seconds[1] < seconds[0] + 1.5


def test_the_event_loop_path_cuts_a_quiet_stream_at_the_idle_timeout(
    home: Path, write_config: Any, fault_server: FaultServer
) -> None:
    write_config(
        f'[endpoints.srv]\nbase_url = "{fault_server.url("stall")}"\ntimeout = 20\n'
        "idle_timeout = 0.5\nmax_retries = 0\n"
    )
    model = get_model(f"srv/{FAULT_MODEL}", load_settings())
    assert isinstance(model, OpenAICompatModel)
    received: list[str | Usage] = []

    async def collect() -> None:
        async for item in model.astream(HELLO, GREEDY):
            received.append(item)

    start = time.monotonic()
    with pytest.raises(EndpointError) as caught:
        asyncio.run(collect())

    assert received == ["Hello", " from"]
    assert str(caught.value).startswith("srv/fault-model stopped answering after 2 tokens")
    assert time.monotonic() - start < 3.0


def test_an_unreachable_server_is_the_same_sentence_on_the_event_loop() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    model = OpenAICompatModel("srv/anything", "anything", compatible(url))

    start = time.monotonic()
    message = _outcome(astream_all, model)

    assert message == (
        f"Cannot reach {url} for srv/anything; check that the server is running "
        "and its base_url in playground.toml."
    )
    assert time.monotonic() - start < 3.0


def test_calls_sharing_one_event_loop_each_measure_their_own_latency(
    fault_server: FaultServer,
) -> None:
    # served calls are tasks on one thread: a call sent later must not restart the clock of a
    # call still waiting for its answer (a thread-local clock did)
    slow = OpenAICompatModel("srv/slow", FAULT_MODEL, compatible(fault_server.url("slow")))
    quick = OpenAICompatModel("srv/ok", FAULT_MODEL, compatible(fault_server.url("ok")))
    results = [Result(model_id=m.model_id, messages=HELLO, params=GREEDY) for m in (slow, quick)]

    async def both() -> None:
        waiting = asyncio.create_task(MeasuredStream(slow, results[0], Price()).adrain())
        await asyncio.sleep(0.4)  # the quick call goes out while the slow one waits
        await MeasuredStream(quick, results[1], Price()).adrain()
        await waiting

    asyncio.run(both())

    assert [r.error for r in results] == [None, None]
    assert results[0].text == results[1].text == "Hello from the test server."
    assert results[0].latency_ms is not None and results[0].latency_ms >= 950  # 1 s delay
    assert results[1].latency_ms is not None and results[1].latency_ms < 500
