"""Helpers for the serving tests: uvicorn on a free loopback port, stub model and webhook servers.

The stubs exist only for what no real local server does on demand: trickle tokens slowly
(to disconnect mid-stream), stay down, or fail a webhook a few times.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import uvicorn

from playground.config import Settings
from playground.errors import NotFoundError
from playground.flows.loader import parse_spec
from playground.flows.registry import FlowRegistry
from playground.flows.spec import FlowSpec
from playground.records import Run
from playground.serve.app import create_app
from playground.serve.settings import ServeSettings
from playground.store import open_store
from tests.support import LoopbackServer, free_port

LOCAL_SPEC = """\
schema: playground.flow/v1
name: {name}
description: Answer in one short sentence
inputs:
  question: {{type: string}}
prompt:
  messages:
    - {{role: system, content: "Answer in one short sentence."}}
    - {{role: user, content: "{{{{ question }}}}"}}
model:
  id: local/smollm2-135m-instruct
  params: {{temperature: 0.0, top_p: 1.0, max_tokens: {max_tokens}, seed: 7}}
"""

ENDPOINT_SPEC = """\
schema: playground.flow/v1
name: {name}
description: {description}
inputs:
  question: {{type: string}}
  tone: {{type: string, default: "plain"}}
prompt:
  messages:
    - {{role: system, content: "Answer in a {{{{ tone }}}} tone."}}
    - {{role: user, content: "{{{{ question }}}}"}}
model:
  id: stub/fault-model
  params: {{temperature: 0.0, max_tokens: {max_tokens}}}
  endpoint: {{base_url: "{base_url}"}}
"""


def local_spec(name: str = "gear-support", max_tokens: int = 8) -> FlowSpec:
    """A flow on the embedded model, one required input `question`."""
    return parse_spec(LOCAL_SPEC.format(name=name, max_tokens=max_tokens))


def endpoint_spec(
    base_url: str, name: str = "stub-flow", max_tokens: int = 64, description: str = "stub"
) -> FlowSpec:
    """A flow on an OpenAI-compatible server at base_url; inputs `question` and `tone`."""
    return parse_spec(
        ENDPOINT_SPEC.format(
            name=name, base_url=base_url, max_tokens=max_tokens, description=description
        )
    )


def save_flow(settings: Settings, spec: FlowSpec, label: str | None = None) -> FlowSpec:
    """Save a spec as the next version (and point a label at it)."""
    registry = FlowRegistry(settings)
    saved = registry.save(spec)
    if label is not None:
        assert saved.version is not None
        registry.set_label(saved.name, label, saved.version)
    return saved


@contextlib.contextmanager
def served(
    refs: Sequence[str],
    settings: Settings,
    serve: ServeSettings | None = None,
    background: bool = False,
) -> Iterator[str]:
    """Run the served API under uvicorn on a free loopback port; yield its base URL."""
    app = create_app(refs, settings, serve or ServeSettings(), background=background)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


class _TrickleHandler(BaseHTTPRequestHandler):
    server: TrickleServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        sent = 0
        try:
            time.sleep(self.server.first_delay_s)
            for index in range(self.server.words):
                chunk = {
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": request.get("model", "trickle"),
                    "choices": [
                        {"index": 0, "delta": {"content": f" w{index}"}, "finish_reason": None}
                    ],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                sent += 1
                time.sleep(self.server.delay_s)
            done = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(done)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except OSError:
            pass  # the reader went away: that is what the disconnect test looks for
        finally:
            with self.server.lock:
                self.server.sent.append(sent)
            self.close_connection = True


class TrickleServer(LoopbackServer):
    """An OpenAI-style server that streams `words` deltas, one every `delay_s` seconds.

    `sent` lists, per request, how many deltas it wrote before the client stopped reading.
    """

    def __init__(self, words: int = 200, delay_s: float = 0.05, first_delay_s: float = 0.0) -> None:
        super().__init__(_TrickleHandler)
        self.words = words
        self.delay_s = delay_s
        self.first_delay_s = first_delay_s
        self.lock = threading.Lock()
        self.sent: list[int] = []

    @property
    def url(self) -> str:
        """The /v1 base URL."""
        return f"{self.origin}/v1"


class _KeepAliveHandler(BaseHTTPRequestHandler):
    server: KeepAliveServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        events = [{"content": word} for word in ("Kept", " alive", ".")] + [{}]
        body = b""
        for index, delta in enumerate(events):
            finish = "stop" if index == len(events) - 1 else None
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            chunk = {"object": "chat.completion.chunk", "model": "m", "choices": [choice]}
            body += f"data: {json.dumps(chunk)}\n\n".encode()
        body += b"data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if self.server.chunked:  # as uvicorn-based servers (vLLM) and llama.cpp's send it
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        self.wfile.flush()


class KeepAliveServer(LoopbackServer):
    """An OpenAI-style server that keeps connections open and counts how many were opened."""

    def __init__(self, chunked: bool = False) -> None:
        super().__init__(_KeepAliveHandler)
        self.chunked = chunked
        self.connections = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        """The /v1 base URL."""
        return f"{self.origin}/v1"


class _HookHandler(BaseHTTPRequestHandler):
    server: WebhookReceiver
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with self.server.lock:
            self.server.attempts += 1
            fail = self.server.attempts <= self.server.fail_first
            if not fail:
                self.server.received.append(body)
        status = 503 if fail else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class WebhookReceiver(LoopbackServer):
    """A loopback webhook that answers 503 to its first `fail_first` posts, then records them."""

    def __init__(self, fail_first: int = 0) -> None:
        super().__init__(_HookHandler)
        self.fail_first = fail_first
        self.attempts = 0
        self.lock = threading.Lock()
        self.received: list[dict[str, object]] = []

    @property
    def url(self) -> str:
        """The webhook URL."""
        return f"{self.origin}/hook"


def wait_for(predicate: object, timeout: float = 10.0) -> bool:
    """Poll a zero-argument callable until it is truthy or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def stored_run(settings: Settings, run_id: str, timeout: float = 10.0) -> Run:
    """A served run read back while serving: it is stored just after its answer has left."""
    runs = open_store(settings).runs
    found: list[Run] = []

    def read() -> bool:
        try:
            found.append(runs.get_run(run_id))
        except NotFoundError:
            return False
        return True

    if not wait_for(read, timeout):
        raise AssertionError(f"run {run_id} was not stored within {timeout:g} s")
    return found[0]


def down_url() -> str:
    """A /v1 URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}/v1"


def write(path: Path, text: str) -> Path:
    """Write text and return the path."""
    path.write_text(text, encoding="utf-8")
    return path
