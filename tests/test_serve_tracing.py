"""OpenTelemetry export: spans reach a loopback OTLP/HTTP receiver that parses the protobuf."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from playground.config import Settings, load_settings
from playground.errors import ConfigError
from playground.serve.settings import ServeSettings
from playground.serve.tracing import otlp_traces_url, tracing_for
from tests.serve_support import endpoint_spec, save_flow, served
from tests.support import FaultServer, free_port


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), _ReceiverHandler)
        self.spans: list[Any] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _Receiver

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.server.lock:
            self.server.paths.append(self.path)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self.server.spans.extend(scope_spans.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    """A loopback OTLP/HTTP traces receiver."""
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(home: Path) -> Settings:
    """Settings of the fresh home."""
    return load_settings()


def _attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


def test_each_served_call_is_a_gen_ai_span_with_the_sdk_span_as_its_child(
    settings: Settings, fault_server: FaultServer, receiver: _Receiver
) -> None:
    save_flow(settings, endpoint_spec(fault_server.url("ok")), label="production")
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    with served(["stub-flow@production"], settings, ServeSettings(otlp_endpoint=endpoint)) as url:
        plain = httpx.post(
            f"{url}/v1/flows/stub-flow/run",
            json={"inputs": {"question": "Hi?"}, "max_tokens": 32},
            timeout=30,
        ).json()
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        stream = client.chat.completions.create(
            model="stub-flow", messages=[{"role": "user", "content": "Hi?"}], stream=True
        )
        streamed_id = next(iter(stream)).id.removeprefix("chatcmpl-")
        for _ in stream:
            pass
    # leaving `served` shut the app down, which flushes the exporter
    assert receiver.paths and set(receiver.paths) == {"/v1/traces"}
    # (the test's own openai client is instrumented too, in this process: its span has no run id)
    ours = {
        _attrs(s)["playground.run_id"]: s
        for s in receiver.spans
        if s.name == "chat stub-flow" and "playground.run_id" in _attrs(s)
    }
    assert set(ours) == {plain["run_id"], streamed_id}
    for run_id, span in ours.items():
        attrs = _attrs(span)
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.system"] == "openai"
        assert attrs["gen_ai.request.model"] == "fault-model"
        assert attrs["gen_ai.request.max_tokens"] == (32 if run_id == plain["run_id"] else 64)
        assert attrs["gen_ai.usage.output_tokens"] > 0
        assert attrs["playground.flow.name"] == "stub-flow"
        assert attrs["playground.flow.version"] == 1
        assert attrs["playground.latency_ms"] > 0
        children = [s for s in receiver.spans if s.parent_span_id == span.span_id]
        assert len(children) == 1, f"run {run_id}: no openai SDK span under the call's span"
        sdk = children[0]
        assert sdk.trace_id == span.trace_id
        assert sdk.name == "chat fault-model"
        assert _attrs(sdk)["gen_ai.request.model"] == "fault-model"
    assert "Hi?" not in str(receiver.spans)  # message text stays home unless switched on


def test_the_standard_otel_variables_are_read_and_a_bad_endpoint_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert otlp_traces_url(ServeSettings()) is None
    assert tracing_for(ServeSettings()) is None  # off: no provider, no per-call cost
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert otlp_traces_url(ServeSettings()) == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:4318/custom")
    assert otlp_traces_url(ServeSettings()) == "http://other:4318/custom"
    configured = ServeSettings(otlp_endpoint="http://mine:4318/v1/traces")
    assert otlp_traces_url(configured) == "http://mine:4318/v1/traces"
    with pytest.raises(ConfigError) as caught:
        tracing_for(ServeSettings(otlp_endpoint="collector:4318"))
    assert str(caught.value).count(".") >= 1 and "\n" not in str(caught.value)
    assert "otlp_endpoint" in str(caught.value)
