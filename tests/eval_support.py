"""A loopback OpenAI-style stub for batch tests: fixed latency, 429 bursts, garbage replies.

Only for what no real server does on demand; answers are chosen by the test (`answers`: a
substring of the prompt -> the reply), so pass/fail of a scorer is known in advance.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support import LoopbackServer

STUB_MODEL = "stub-model"


class _Handler(BaseHTTPRequestHandler):
    server: EvalStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._json(200, {"object": "list", "data": [{"id": STUB_MODEL}]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        stub = self.server
        with stub.lock:
            stub.requests += 1
            stub.in_flight += 1
            stub.peak = max(stub.peak, stub.in_flight)
            limited = stub.rate_limit_left > 0
            if limited:
                stub.rate_limit_left -= 1
                stub.rate_limited += 1
        try:
            if limited:
                self._json(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
                return
            time.sleep(stub.latency_s)
            prompt = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
            if stub.garbage:
                body = b"this is not json at all"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if request.get("stream"):
                self._stream(request, stub.reply_for(prompt))
            else:  # other tools (promptfoo, in bench/bench_eval.py) ask for one JSON answer
                self._complete(request, stub.reply_for(prompt))
        finally:
            with stub.lock:
                stub.in_flight -= 1

    def _complete(self, request: dict[str, Any], text: str) -> None:
        words = len(text.split(" "))
        self._json(
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": request.get("model", STUB_MODEL),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": words, "total_tokens": 0},
            },
        )

    def _stream(self, request: dict[str, Any], text: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        words = text.split(" ")
        for i, word in enumerate(words):
            delta = word if i == 0 else " " + word
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": request.get("model", STUB_MODEL),
                "choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        done = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(done)}\n\n".encode())
        usage = {
            "id": "x",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": STUB_MODEL,
            "choices": [],
            "usage": {"prompt_tokens": 20, "completion_tokens": len(words), "total_tokens": 0},
        }
        self.wfile.write(f"data: {json.dumps(usage)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


class EvalStub(LoopbackServer):
    """Replies `answers[key]` when key is in the prompt, else `default`; counts calls."""

    request_queue_size = 256

    def __init__(self, latency_s: float = 0.0, answers: dict[str, str] | None = None) -> None:
        super().__init__(_Handler)
        self.latency_s = latency_s
        self.answers = answers or {}
        self.default = "I do not know."
        self.garbage = False
        self.rate_limit_left = 0
        self.rate_limited = 0
        self.requests = 0
        self.in_flight = 0
        self.peak = 0
        self.lock = threading.Lock()

    def reply_for(self, prompt: str) -> str:
        """The scripted answer for a prompt."""
        for key, answer in self.answers.items():
            if key in prompt:
                return answer
        return self.default

    @property
    def base_url(self) -> str:
        """The /v1 base URL."""
        return f"{self.origin}/v1"


def stub_config(base_url: str, name: str = "stub", max_concurrency: int | None = None) -> str:
    """playground.toml text declaring the stub as endpoint `name`."""
    limit = f"max_concurrency = {max_concurrency}\n" if max_concurrency else ""
    return (
        f'[endpoints.{name}]\nbase_url = "{base_url}"\nmodels = ["{STUB_MODEL}"]\n'
        f"max_retries = 2\ntimeout = 30\n{limit}"
    )


def write_flow(path: Any, model: str, evaluation: str, name: str = "gear-eval") -> None:
    """A flow spec with one input `question` and the given evaluation block (YAML text)."""
    path.write_text(
        "schema: playground.flow/v1\n"
        f"name: {name}\n"
        "inputs:\n  question: {type: string}\n"
        "prompt:\n  messages:\n"
        "    - {role: system, content: Answer briefly.}\n"
        '    - {role: user, content: "{{ question }}"}\n'
        f"model:\n  id: {model}\n  params: {{temperature: 0.0, max_tokens: 16, seed: 1}}\n"
        f"{evaluation}",
        encoding="utf-8",
    )
