"""Test helpers: free ports, the real llama.cpp server, and a tiny fault-injecting server.

The fault server exists only for what no real server does on demand (500, 429, 401, hangs,
garbage, a fixed delay); everything else is tested against real parts.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

FAULT_MODEL = "fault-model"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(
    url: str, timeout: float = 120.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll url until it answers 200, the process dies, or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server process, killing it if it does not stop within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextlib.contextmanager
def serve_model(port: int | None = None) -> Iterator[str]:
    """Start `playground serve-model` (llama_cpp.server on the embedded GGUF); yield its /v1 URL."""
    port = port or free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"serve-model-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - must stay open while the server runs
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "serve-model", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_http(base_url + "/models", proc=proc)
        yield base_url
    finally:
        stop_process(proc)
        log.close()


WORDS = ["Hello", " from", " the", " test", " server", "."]


class _FaultHandler(BaseHTTPRequestHandler):
    """Behaviour chosen by the first path segment.

    /ok streams six words; /slow does after the server's delay; /500, /429, /401 fail;
    /hang waits; /garbage answers HTML; /trickle sends only SSE comments, one every
    `trickle_s`; /stall sends two words, then only comments; /cutoff sends three words and
    closes the connection mid-body; /empty ends the stream with no content and no finish
    reason (as llama.cpp's server does to an interrupted request); /echo500 and /echo400 fail
    with a body that repeats the request's Authorization header.
    """

    server: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _mode(self) -> str:
        return self.path.strip("/").split("/")[0]

    def _send_json(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": FAULT_MODEL}]})
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        mode = self._mode()
        if self.path.endswith("/moderations"):
            self._moderate(request)
            return
        with self.server.lock:
            self.server.hits[mode] = self.server.hits.get(mode, 0) + 1
            self.server.arrivals.append(time.time())  # wall clock: comparable across processes
            self.server.requests.append((mode, request))
        if mode.startswith("say-"):  # answers with its own words: tells two endpoints apart
            self._stream(request, 0.0, [f"{w} " for w in mode.removeprefix("say-").split("-")])
        elif mode == "500":
            self._send_json(500, {"error": {"message": "injected failure"}})
        elif mode == "429":
            self.send_response(429)
            body = b'{"error": {"message": "slow down"}}'
            self.send_header("Content-Type", "application/json")
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif mode == "401":
            self._send_json(401, {"error": {"message": "invalid api key"}})
        elif mode == "hang":
            self.server.release.wait(timeout=30)
            with contextlib.suppress(OSError):
                self._send_json(500, {"error": {"message": "released"}})
        elif mode.startswith("echo"):
            echoed = self.headers.get("Authorization", "")
            message = f"upstream refused the request (Authorization: {echoed})"
            self._send_json(int(mode.removeprefix("echo")), {"error": {"message": message}})
        elif mode in ("trickle", "stall"):
            self._trickle(request, WORDS[:2] if mode == "stall" else [])
        elif mode == "cutoff":
            self._cut_off(request)
        elif mode == "empty":
            self._start_events()
            self._event(request, {"role": "assistant", "content": ""}, None)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True
        elif mode == "garbage":
            body = b"<html>this is not json</html>"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            delay = self.server.delay_s if mode == "slow" else 0.0
            self._stream(request, delay)

    def _moderate(self, request: dict[str, object]) -> None:
        # No local server moderates, so this one flags any text that mentions "kill".
        if self._mode() == "500":
            self._send_json(500, {"error": {"message": "injected failure"}})
            return
        text = str(request.get("input", ""))
        violent = "kill" in text.lower()
        names = ["harassment", "hate", "self-harm", "sexual", "violence"]
        categories = {name: (violent and name == "violence") for name in names}
        scores = {name: (0.9 if flagged else 0.01) for name, flagged in categories.items()}
        result = {"flagged": violent, "categories": categories, "category_scores": scores}
        self._send_json(200, {"id": "modr-1", "model": request.get("model"), "results": [result]})

    def _start_events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()

    @staticmethod
    def _event_bytes(
        request: dict[str, object], delta: dict[str, str], finish: str | None
    ) -> bytes:
        chunk = {
            "id": "x",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": request.get("model", FAULT_MODEL),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(chunk)}\n\n".encode()

    def _event(self, request: dict[str, object], delta: dict[str, str], finish: str | None) -> None:
        self.wfile.write(self._event_bytes(request, delta, finish))

    def _stream(
        self, request: dict[str, object], delay: float, words: list[str] | None = None
    ) -> None:
        time.sleep(delay)
        self._start_events()
        for word in words or WORDS:
            self._event(request, {"content": word}, None)
        self._event(request, {}, "stop")
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def _trickle(self, request: dict[str, object], words: list[str]) -> None:
        # SSE comments keep every read of the client busy, so a per-read timeout never fires
        self._start_events()
        for word in words:
            self._event(request, {"content": word}, None)
        deadline = time.monotonic() + 30
        with contextlib.suppress(OSError):
            while time.monotonic() < deadline and not self.server.release.is_set():
                self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
                time.sleep(self.server.trickle_s)
        self.close_connection = True

    def _cut_off(self, request: dict[str, object]) -> None:
        # chunked encoding, so that closing early is a broken body, not a normal end
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for word in WORDS[:3]:
            data = self._event_bytes(request, {"content": word}, None)
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server on a free loopback port, serving from a thread while in `with`."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", free_port()), handler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class FaultServer(LoopbackServer):
    """A loopback OpenAI-style server that fails on purpose; see _FaultHandler for the modes."""

    # 48 models connect at once; the default backlog of 5 drops connections, and a dropped SYN
    # is retried after a second, which would look like the client running in waves.
    request_queue_size = 128

    def __init__(self, delay_s: float = 1.0, trickle_s: float = 0.2) -> None:
        super().__init__(_FaultHandler)
        self.delay_s = delay_s
        self.trickle_s = trickle_s
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.hits: dict[str, int] = {}
        self.arrivals: list[float] = []  # time.time() when each chat completion arrived
        self.requests: list[tuple[str, dict[str, Any]]] = []  # (mode, chat request body)

    def chat_requests(self, mode: str) -> list[dict[str, Any]]:
        """The chat request bodies this server received for a mode, oldest first."""
        with self.lock:
            return [body for m, body in self.requests if m == mode]

    def url(self, mode: str) -> str:
        """The /v1 base URL for a behaviour."""
        return f"{self.origin}/{mode}/v1"

    def __exit__(self, *exc: object) -> None:
        self.release.set()  # hung requests end, so shutdown does not wait for them
        super().__exit__(*exc)
