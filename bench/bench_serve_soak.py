"""Soak: `playground flow serve` at a steady rate for N minutes; does its memory stay flat?

The same stub model (50 ms, its own process) and served flow (its own process, SQLite) as
bench_serve.py. Calls are sent at a fixed rate (open loop: a slow answer does not slow the
sender) over keep-alive connections; the served process's resident memory (VmRSS) is sampled
every `--sample-s` seconds. Printed: RSS after the warm-up, at the end, the growth (goal under
50 MB), and calls sent, answered and failed (goal: none failed, none lost).

    python bench/bench_serve_soak.py [--minutes 10] [--rate 50] [--warmup-s 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from bench_serve import SPEC, _post  # noqa: E402

from tests.support import free_port, stop_process, wait_http  # noqa: E402

GOAL_MB = 50.0
KEEPALIVE_REUSE_S = 3.0


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def soak(
    url: str, pid: int, rate: float, seconds: float, warmup_s: float, sample_s: float
) -> dict[str, object]:
    """Send `rate` calls/s for `seconds`; sample RSS; return counts and memory figures."""
    parsed = httpx.URL(url)
    payload = json.dumps({"inputs": {"question": "Is the tent waterproof?"}}).encode()
    # Idle keep-alive connections, newest last; one idle longer than uvicorn's keep-alive
    # (5 s) may be closed by the server, so it is dropped rather than reused, as clients do.
    pool: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    sent = answered = failed = 0
    why: dict[str, int] = {}  # failures by status code or exception
    samples: list[tuple[float, float]] = []

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while pool:
            reader, writer, idle_since = pool.pop()
            if time.monotonic() - idle_since < KEEPALIVE_REUSE_S:
                return reader, writer
            writer.close()
        return await asyncio.open_connection(parsed.host, parsed.port)

    async def one() -> None:
        nonlocal answered, failed
        reader, writer = await connection()
        try:
            status, keep = await _post(reader, writer, parsed.raw_path.decode(), payload)
        except (OSError, asyncio.IncompleteReadError) as exc:
            failed += 1
            why[type(exc).__name__] = why.get(type(exc).__name__, 0) + 1
            writer.close()
            return
        if keep:
            pool.append((reader, writer, time.monotonic()))
        else:
            writer.close()
        if status == 200:
            answered += 1
        else:
            failed += 1
            why[str(status)] = why.get(str(status), 0) + 1

    async def sampler(start: float) -> None:
        while True:
            samples.append((time.perf_counter() - start, rss_mb(pid)))
            await asyncio.sleep(sample_s)

    start = time.perf_counter()
    watch = asyncio.create_task(sampler(start))
    tasks: set[asyncio.Task[None]] = set()
    interval = 1.0 / rate
    while (now := time.perf_counter() - start) < seconds:
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
        await asyncio.sleep(max(0.0, sent * interval - now))
    await asyncio.gather(*tasks)
    samples.append((time.perf_counter() - start, rss_mb(pid)))
    watch.cancel()
    for _, writer, _ in pool:
        writer.close()
    after_warmup = next((mb for t, mb in samples if t >= warmup_s), samples[0][1])
    return {
        "sent": sent,
        "answered": answered,
        "failed": failed,
        "lost": sent - answered - failed,
        "why": why,
        "rss_start_mb": samples[0][1],
        "rss_after_warmup_mb": after_warmup,
        "rss_end_mb": samples[-1][1],
        "rss_peak_mb": max(mb for _, mb in samples),
        "samples": samples,
    }


def main() -> None:
    """Start the stub and the served flow, soak it, print the memory figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0, help="calls per second")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--warmup-s", type=float, default=30.0)
    parser.add_argument("--sample-s", type=float, default=10.0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    env = {**os.environ, "PLAYGROUND_HOME": str(home), "PYTHONPATH": str(ROOT)}
    stub_port, serve_port = free_port(), free_port()
    stub = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bench_serve.py"), "--stub", str(stub_port),
         "--latency-ms", str(args.latency_ms)],
        env=env,
    )  # fmt: skip
    spec = home / "bench-serve.yaml"
    spec.write_text(SPEC.format(base_url=f"http://127.0.0.1:{stub_port}/v1"), encoding="utf-8")
    (home / "playground.toml").write_text("[runner]\nmax_retries = 0\n", encoding="utf-8")
    env["PLAYGROUND_CONFIG"] = str(home / "playground.toml")
    serve = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "flow", "serve", str(spec),
         "--port", str(serve_port)],
        env=env,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{serve_port}/health", timeout=60, proc=serve)
        print(f"load average at start: {os.getloadavg()[0]:.1f}")
        url = f"http://127.0.0.1:{serve_port}/v1/flows/bench-serve/run"
        figures = asyncio.run(
            soak(url, serve.pid, args.rate, args.minutes * 60, args.warmup_s, args.sample_s)
        )
        print(f"soak: {args.minutes:g} min at {args.rate:g} calls/s, model {args.latency_ms:g} ms")
        for t, mb in figures["samples"]:  # type: ignore[union-attr]
            print(f"  t={t:6.0f} s  rss {mb:7.1f} MB")
        growth = float(figures["rss_end_mb"]) - float(figures["rss_after_warmup_mb"])  # type: ignore[arg-type]
        print(
            f"calls sent {figures['sent']}, answered {figures['answered']}, "
            f"failed {figures['failed']} {figures['why'] or ''}, lost {figures['lost']}"
        )
        print(
            f"rss start {figures['rss_start_mb']:.1f} MB, after {args.warmup_s:g} s warm-up "
            f"{figures['rss_after_warmup_mb']:.1f} MB, end {figures['rss_end_mb']:.1f} MB, "
            f"peak {figures['rss_peak_mb']:.1f} MB"
        )
        print(f"growth after warm-up {growth:+.1f} MB (goal < {GOAL_MB:g} MB)")
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
    finally:
        stop_process(serve)
        stop_process(stub)


if __name__ == "__main__":
    main()
