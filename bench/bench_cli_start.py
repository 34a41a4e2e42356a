"""Start-up of the command line: when does the first request of a fresh process reach the server?

A loopback OpenAI-compatible server (tests/support.py FaultServer, `/slow` mode, 1 s) records
the wall-clock arrival of every chat completion. Each command is started as a fresh process,
alternating with a bare script that imports the openai SDK and sends the same request, and
the time from spawning the process to the request's arrival is compared (medians, ratio; goal
<= 1.15). The latency each command reports for the 1 s server is printed as well (goal: about
1 s, since imports and client creation are not the server's latency).

Every process compiles Python into a private bytecode cache (PYTHONPYCACHEPREFIX, filled by a
warm-up run) as an installed package's `.pyc` files would be: with PYTHONDONTWRITEBYTECODE set,
as in this project's sessions, our modules were compiled from source on every start (about
0.1 s) while the SDK's came from site-packages' caches. `--no-bytecode-cache` measures that.
`--before ROOT` also runs the same commands on another checkout's code (e.g. /work/main), in
the same alternation, and prints its ratio beside ours.

Run: python bench/bench_cli_start.py [--reps 7] [--commands run,flow,eval] [--before ROOT]
"""

from __future__ import annotations

import argparse
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

from tests.support import FaultServer  # noqa: E402

BARE = """
import sys
import openai
client = openai.OpenAI(base_url=sys.argv[1], api_key="not-needed", max_retries=0)
stream = client.chat.completions.create(
    model="m1", messages=[{"role": "user", "content": "hi"}], stream=True,
    stream_options={"include_usage": True}, temperature=0.7, top_p=1.0, max_tokens=256,
)
for chunk in stream:
    pass
"""

FLOW = """\
schema: playground.flow/v1
name: start-up
inputs:
  question: {type: string, default: "hi"}
prompt:
  messages:
    - {role: user, content: "{{ question }}"}
model:
  id: slow/m1
  params: {temperature: 0.7, max_tokens: 256}
"""

EVAL = """\
evaluation:
  dataset: questions.jsonl
  scorers:
    - {type: contains, value: "Hello"}
  gate: {pass_rate: 0.5}
"""


def configure(server: FaultServer, work: Path, bytecode_cache: bool) -> dict[str, str]:
    """playground.toml with an endpoint `slow` on the 1 s server; a flow and an eval file."""
    (work / "playground.toml").write_text(
        f'[endpoints.slow]\nbase_url = "{server.url("slow")}"\nmodels = ["m1"]\nmax_retries = 0\n'
    )
    (work / "flow.yaml").write_text(FLOW)
    (work / "eval.yaml").write_text(FLOW + EVAL)
    (work / "questions.jsonl").write_text('{"question": "hi"}\n')
    env = {k: v for k, v in os.environ.items() if k != "PLAYGROUND_CONFIG"}
    env.update(PYTHONPATH=str(ROOT), PLAYGROUND_HOME=str(work / "home"))
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")  # nothing written into checkouts
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


COMMANDS = {
    "run": ["run", "--model", "slow/m1", "--prompt", "hi", "--json"],
    "flow": ["flow", "run", "flow.yaml", "--json"],
    "eval": ["eval", "run", "eval.yaml", "--no-cache", "--json"],
}


def first_request(
    server: FaultServer, argv: list[str], env: dict[str, str], work: Path
) -> tuple[float, str]:
    """Seconds from spawning `argv` to its first request's arrival, and what it printed."""
    before = len(server.arrivals)
    spawned = time.time()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return server.arrivals[before] - spawned, proc.stdout


def reported_latency(name: str, stdout: str) -> float | None:
    """The latency in seconds the command reported for its (only) call."""
    document = json.loads(stdout)
    if name == "run":
        return document["results"][0]["latency_ms"] / 1000
    if name == "flow":
        return document["latency_ms"] / 1000
    return None  # eval reports per configuration; its rows carry no single call's figure


def main() -> None:
    """Print, per command, the median time to the first request against the bare script."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--commands", default="run,flow,eval")
    parser.add_argument("--before", type=Path, default=None, help="another checkout to compare")
    parser.add_argument("--no-bytecode-cache", action="store_true")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    cache = "off (compiled from source)" if args.no_bytecode_cache else "on"
    print(f"bytecode cache: {cache}")
    with tempfile.TemporaryDirectory() as tmp, FaultServer(delay_s=1.0) as server:
        work = Path(tmp)
        env = configure(server, work, not args.no_bytecode_cache)
        envs = {"ours": env}
        if args.before is not None:
            # a home of its own: the newer code migrates its store past what the older knows
            envs["before"] = dict(
                env,
                PYTHONPATH=str(args.before.resolve()),
                PLAYGROUND_HOME=str(work / "home-before"),
            )
        bare = [sys.executable, "-c", BARE, server.url("slow")]
        first_request(server, bare, env, work)  # warm the page cache (and the bytecode cache)
        for name in args.commands.split(","):
            ours = [sys.executable, "-m", "playground.cli", *COMMANDS[name]]
            for side_env in envs.values():  # warm the page cache and the store's file
                first_request(server, ours, side_env, work)
            times: dict[str, list[float]] = {side: [] for side in envs}
            theirs: list[float] = []
            latencies: dict[str, list[float]] = {side: [] for side in envs}
            sides = [*envs, "bare"]
            for rep in range(args.reps):  # alternate, rotating who goes first, so drift hits all
                for side in sides[rep % len(sides) :] + sides[: rep % len(sides)]:
                    if side == "bare":
                        theirs.append(first_request(server, bare, env, work)[0])
                        continue
                    seconds, stdout = first_request(server, ours, envs[side], work)
                    times[side].append(seconds)
                    latency = reported_latency(name, stdout)
                    if latency is not None:
                        latencies[side].append(latency)
            bare_s = statistics.median(theirs)
            for side in envs:
                ours_s = statistics.median(times[side])
                shown = (
                    f"  reported latency {statistics.median(latencies[side]):.3f} s"
                    if latencies[side]
                    else ""
                )
                label = name if side == "ours" else f"{name} ({args.before})"
                print(
                    f"{label:5s} first request {ours_s:.3f} s  bare openai {bare_s:.3f} s  "
                    f"ratio {ours_s / bare_s:.3f} (goal <= 1.15){shown} (1 s server)"
                )
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
