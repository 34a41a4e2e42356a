"""Served-call overhead and throughput: `playground flow serve` vs calling the model directly.

A stub OpenAI-compatible model (its own process, keep-alive, chunked SSE) answers every chat
completion after `--latency-ms` (50). The served flow (its own process, uvicorn, SQLite) calls
it through the usual path: flow -> runner.MeasuredStream -> openai SDK, and records a run.

1. Overhead: alternating sequential calls, direct vs served; p50/p95 of each and the p50 gap.
2. Throughput: `--clients` (100) concurrent asyncio clients, `--seconds` each side; calls/s,
   the ratio served/direct, and failed requests (goal: none).

    python bench/bench_serve.py [--latency-ms 50] [--calls 200] [--clients 100] [--seconds 10]
                                [--workers N] [--pf PATH/TO/pf]

3. With --pf: the same throughput load against `pf flow serve` of the spec's PromptFlow export
   (`playground flow export --format promptflow`), in the same run; the ratio served/pf.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.support import free_port, stop_process, wait_http  # noqa: E402

SPEC = """\
schema: playground.flow/v1
name: bench-serve
inputs:
  question: {{type: string}}
prompt:
  messages:
    - {{role: user, content: "{{{{ question }}}}"}}
model:
  id: stub/bench-model
  params: {{temperature: 0.0, max_tokens: 16}}
  endpoint: {{base_url: "{base_url}"}}
"""
WORDS = ["Hello", " from", " the", " stub", " model", "."]
BODY = {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def _stub_body() -> bytes:
    parts = []
    for word in WORDS:
        chunk = {
            "id": "x",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "bench-model",
            "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
        }
        parts.append(f"data: {json.dumps(chunk)}\n\n")
    done = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    parts.append(f"data: {json.dumps(done)}\n\n")
    counts = {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}
    usage = {"id": "x", "object": "chat.completion.chunk", "created": 0,
             "model": "bench-model", "choices": [], "usage": counts}  # fmt: skip
    parts.append(f"data: {json.dumps(usage)}\n\n")
    parts.append("data: [DONE]\n\n")
    body = "".join(parts).encode()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _stub_json() -> bytes:
    """The same answer as one JSON completion, for clients that do not stream (PromptFlow)."""
    body = json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "bench-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(WORDS)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9},
        }
    ).encode()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _stub_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    latency_s: float,
    reply: bytes,
    reply_json: bytes,
) -> None:
    # Keep-alive HTTP/1.1, one request at a time: enough for an SDK client, and cheap enough
    # that the stub is never what limits the measurement.
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            request = await reader.readexactly(length)
            await asyncio.sleep(latency_s)
            streams = b'"stream": true' in request or b'"stream":true' in request
            writer.write(reply if streams else reply_json)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def run_stub(port: int, latency_ms: float) -> None:
    """Serve the stub model forever (the --stub mode of this script)."""
    reply, reply_json = _stub_body(), _stub_json()

    async def serve() -> None:
        server = await asyncio.start_server(
            lambda r, w: _stub_connection(r, w, latency_ms / 1000, reply, reply_json),
            "127.0.0.1",
            port,
            backlog=1024,
        )
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def sequential(direct_url: str, served_url: str, calls: int) -> tuple[list[float], list[float]]:
    """Alternate direct and served calls; return per-call seconds of each."""
    direct, served = [], []
    with httpx.Client(timeout=30) as client:
        for i in range(calls + 10):
            order = ("direct", "served") if i % 2 == 0 else ("served", "direct")
            for side in order:
                start = time.perf_counter()
                if side == "direct":
                    response = client.post(direct_url, json=BODY)
                else:
                    response = client.post(served_url, json={"inputs": {"question": "hi"}})
                elapsed = time.perf_counter() - start
                assert response.status_code == 200, response.text
                if i >= 10:  # the first calls warm connections and imports
                    (direct if side == "direct" else served).append(elapsed)
    return direct, served


REQUEST_TIMEOUT_S = 30.0  # a call still unanswered after this counts as failed


async def _post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes
) -> tuple[int, bool]:
    """Send one POST, read its answer; (status, whether the server keeps the connection)."""
    # A minimal keep-alive HTTP/1.1 client: httpx's pool slows down badly at 100 concurrent
    # connections, which would measure the client instead of the servers.
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length, keep = 0, True
    for line in head.split(b"\r\n"):
        lower = line.lower()
        if lower.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
        elif lower.startswith(b"connection:") and b"close" in lower:
            keep = False  # Werkzeug (pf flow serve) closes after every answer
    await reader.readexactly(length)
    return status, keep


async def _load(url: str, body: dict[str, object], clients: int, seconds: float) -> tuple[int, int]:
    parsed = httpx.URL(url)
    payload = json.dumps(body).encode()
    done = failed = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, failed
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        try:
            while time.perf_counter() < deadline:
                try:
                    status, keep = await asyncio.wait_for(
                        _post(reader, writer, parsed.raw_path.decode(), payload),
                        REQUEST_TIMEOUT_S,
                    )
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    failed += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
                    continue
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
                if status == 200:
                    done += 1
                else:
                    failed += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return done, failed


def throughput(
    url: str, body: dict[str, object], clients: int, seconds: float
) -> tuple[float, int]:
    """Calls per second over `seconds` with `clients` concurrent clients, and failures."""
    start = time.perf_counter()
    done, failed = asyncio.run(_load(url, body, clients, seconds))
    return done / (time.perf_counter() - start), failed


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def promptflow_throughput(
    pf: str, spec: Path, home: Path, env: dict[str, str], args: argparse.Namespace
) -> tuple[float, int]:
    """`pf flow serve` of the spec's PromptFlow export, under the same load as ours."""
    out = home / "promptflow"
    subprocess.run(
        [sys.executable, "-m", "playground.cli", "flow", "export", str(spec),
         "--format", "promptflow", "--out", str(out)],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    pf_env = {
        **env,
        "PF_HOME_DIRECTORY": str(home / "pf-home"),  # keep ~/.promptflow clean
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",  # no desktop keyring
    }
    # as tests/test_flows_promptflow.py: no telemetry, no tracing service (no network here)
    subprocess.run(
        [pf, "config", "set", "telemetry.enabled=false", "trace.destination=none"],
        env=pf_env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    subprocess.run(
        [pf, "connection", "create", "--file", str(out / "connection.yaml"),
         "--set", "api_key=not-needed"],
        env=pf_env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    port = free_port()
    log_path = home / "pf-serve.log"  # what pf printed, for when it stalls
    log = log_path.open("w", encoding="utf-8")
    server = subprocess.Popen(
        [pf, "flow", "serve", "--source", str(out), "--host", "127.0.0.1", "--port", str(port),
         "--skip-open-browser"],
        env=pf_env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    print(f"  pf flow serve starting (log: {log_path})", flush=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120, proc=server)
        url = f"http://127.0.0.1:{port}/score"
        with httpx.Client(timeout=30) as client:  # warm up, and check it answers
            response = client.post(url, json={"question": "hi"})
            assert response.status_code == 200, response.text
        return throughput(url, {"question": "hi"}, args.clients, args.seconds)
    finally:
        stop_process(server)
        log.close()


def main() -> None:
    """Start the stub and the served flow, measure both sides, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--pf", default=None, help="the `pf` command of a PromptFlow install: also measure "
        "`pf flow serve` of this spec's PromptFlow export under the same load",
    )  # fmt: skip
    parser.add_argument("--stub", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stub:
        run_stub(args.stub, args.latency_ms)
        return
    home = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    env = {**os.environ, "PLAYGROUND_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("PLAYGROUND_CONFIG", None)
    stub_port, serve_port = free_port(), free_port()
    stub = subprocess.Popen(
        [sys.executable, __file__, "--stub", str(stub_port), "--latency-ms", str(args.latency_ms)],
        env=env,
    )
    stub_url = f"http://127.0.0.1:{stub_port}/v1"
    spec = home / "bench-serve.yaml"
    spec.write_text(SPEC.format(base_url=stub_url), encoding="utf-8")
    (home / "playground.toml").write_text("[runner]\nmax_retries = 0\n", encoding="utf-8")
    env["PLAYGROUND_CONFIG"] = str(home / "playground.toml")
    serve = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "flow", "serve", str(spec),
         "--port", str(serve_port), "--workers", str(args.workers)],
        env=env,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    served_url = f"http://127.0.0.1:{serve_port}/v1/flows/bench-serve/run"
    direct_url = f"{stub_url}/chat/completions"
    try:
        wait_http(f"http://127.0.0.1:{serve_port}/health", timeout=60, proc=serve)
        direct, served = sequential(direct_url, served_url, args.calls)
        d50, s50 = statistics.median(direct) * 1000, statistics.median(served) * 1000
        d95 = statistics.quantiles(direct, n=20)[-1] * 1000
        s95 = statistics.quantiles(served, n=20)[-1] * 1000
        print(f"load average before throughput: {os.getloadavg()[0]:.1f}")
        print(f"sequential, {len(direct)} calls each, model latency {args.latency_ms:g} ms")
        print(f"  direct p50 {d50:.1f} ms  p95 {d95:.1f} ms")
        print(f"  served p50 {s50:.1f} ms  p95 {s95:.1f} ms")
        print(f"  overhead p50 {s50 - d50:.1f} ms (goal <= 5 ms)")
        rate_d, fail_d = throughput(direct_url, BODY, args.clients, args.seconds)
        cpu_before = cpu_seconds(serve.pid)
        start = time.perf_counter()
        rate_s, fail_s = throughput(
            served_url, {"inputs": {"question": "hi"}}, args.clients, args.seconds
        )
        cpu_after = cpu_seconds(serve.pid)
        calls = rate_s * (time.perf_counter() - start)
        print(f"throughput, {args.clients} concurrent clients, {args.seconds:g} s each")
        print(f"  direct {rate_d:.0f} calls/s ({fail_d} failed)")
        print(f"  served {rate_s:.0f} calls/s ({fail_s} failed), workers={args.workers}")
        if cpu_before is not None and cpu_after is not None and calls and args.workers == 1:
            # what a call costs the serving process, whatever else shares the CPUs
            print(f"  served process CPU {(cpu_after - cpu_before) * 1000 / calls:.2f} ms per call")
        print(f"  ratio served/direct {rate_s / rate_d:.3f} (goal >= 0.90)")
        if args.pf:
            rate_pf, fail_pf = promptflow_throughput(args.pf, spec, home, env, args)
            print(f"  pf flow serve {rate_pf:.0f} calls/s ({fail_pf} failed)")
            print(f"  ratio served/pf {rate_s / rate_pf:.2f} (goal >= 2)")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        stop_process(serve)
        stop_process(stub)


if __name__ == "__main__":
    main()
