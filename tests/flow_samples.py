"""Flow spec texts shared by the flow tests."""

from __future__ import annotations

from pathlib import Path

MODEL_ID = "local/smollm2-135m-instruct"

GOOD = """\
schema: playground.flow/v1
name: gear-support
description: Answer customer questions in one sentence
inputs:
  question: {type: string, default: "Is the trail tent waterproof?"}
prompt:
  messages:
    - {role: system, content: "Answer in one short sentence."}
    - {role: user, content: "{{ question }}"}
model:
  id: local/smollm2-135m-instruct
  params: {temperature: 0.0, top_p: 1.0, max_tokens: 24, seed: 7}
"""


def write_spec(folder: Path, text: str = GOOD, name: str = "flow.yaml") -> Path:
    """Write a spec file and return its path."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


class RecordingServer:
    """A loopback OpenAI-compatible stub that answers every chat call and records each request.

    It answers both streaming and plain calls (the python export does not stream), so tests can
    check what was sent (headers, messages) without a model.
    """

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict[str, object]] = []
        lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(json.dumps({"object": "list", "data": [{"id": "stub"}]}).encode(),
                           "application/json")  # fmt: skip

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                with lock:
                    owner.requests.append(
                        {"path": self.path, "authorization": self.headers.get("Authorization"),
                         "body": request}
                    )  # fmt: skip
                text = "stub answer"
                if request.get("stream"):
                    delta = {"choices": [{"index": 0, "delta": {"content": text},
                                          "finish_reason": None}],
                             "id": "x", "object": "chat.completion.chunk", "created": 0,
                             "model": request.get("model")}  # fmt: skip
                    done = {**delta, "choices": [{"index": 0, "delta": {},
                                                  "finish_reason": "stop"}]}  # fmt: skip
                    body = (f"data: {json.dumps(delta)}\n\ndata: {json.dumps(done)}\n\n"
                            "data: [DONE]\n\n").encode()  # fmt: skip
                    self._send(body, "text/event-stream")
                    return
                answer = {
                    "id": "x", "object": "chat.completion", "created": 0,
                    "model": request.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
                }  # fmt: skip
                self._send(json.dumps(answer).encode(), "application/json")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The loopback port it listens on."""
        return int(self._server.server_address[1])

    def url(self, path: str = "/v1") -> str:
        """A base URL on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
