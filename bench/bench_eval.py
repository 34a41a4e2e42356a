"""Batch evaluation at scale: N rows x 2 configurations against a loopback server.

The server (tests/eval_support.py EvalStub, in its own process) answers every chat completion
after --latency seconds. `playground eval run` runs as a whole process at --concurrency; the
limit is cells / concurrency x latency. Then the same batch is rerun from the cache (in this
process with its store open, as the app's Evaluate page has it, so the figure is the runner's
own time, not Python start-up or the first import of SQLAlchemy, which is printed apart), and
once more as a whole process. With --promptfoo, the same batch is exported (`playground eval
export --format promptfoo`) and run by `promptfoo eval` at the same concurrency against the
same server, as a whole process too, and the ratio of the two wall times is printed (goal:
ours <= 0.75).

    python bench/bench_eval.py --rows 1000 --latency 1 --concurrency 16 \
        [--promptfoo /tmp/pfoo/node_modules/.bin/promptfoo]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STUB = """
import sys, time
sys.path.insert(0, {root!r})
from tests.eval_support import EvalStub
stub = EvalStub(latency_s={latency}, answers={{"question 1": "answer 1"}})
stub.__enter__()
print(stub.base_url, flush=True)
time.sleep(3600)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the in-process cached rerun"
    )
    parser.add_argument(
        "--promptfoo", default=None, help="a promptfoo executable to run the same batch with"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    stub = subprocess.Popen(
        [sys.executable, "-c", STUB.format(root=str(ROOT), latency=args.latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = stub.stdout.readline().strip()  # type: ignore[union-attr]
        (work / "playground.toml").write_text(
            f'[endpoints.stub]\nbase_url = "{base_url}"\nmodels = ["m1", "m2"]\n'
            "max_retries = 2\ntimeout = 60\n",
            encoding="utf-8",
        )
        with (work / "rows.jsonl").open("w", encoding="utf-8") as handle:
            for i in range(args.rows):
                handle.write(json.dumps({"question": f"question {i}?", "expected": f"answer {i}"}))
                handle.write("\n")
        (work / "flow.yaml").write_text(
            "schema: playground.flow/v1\nname: bench\ninputs:\n  question: {type: string}\n"
            'prompt:\n  messages:\n    - {role: user, content: "{{ question }}"}\n'
            "model:\n  id: stub/m1\n  params: {temperature: 0.0, max_tokens: 16, seed: 1}\n"
            "evaluation:\n  dataset: rows.jsonl\n  scorers:\n"
            '    - {type: contains, value: "{{ expected }}"}\n    - {type: latency, max_ms: 9000}\n'
            "  gate: {pass_rate: 0.0}\n",
            encoding="utf-8",
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PLAYGROUND_HOME": str(work / "home")}
        command = [
            sys.executable, "-m", "playground.cli", "eval", "run", "flow.yaml",
            "--model", "stub/m1", "--model", "stub/m2",
            "--concurrency", str(args.concurrency), "--json",
        ]  # fmt: skip
        cells = args.rows * 2
        limit = cells / args.concurrency * args.latency
        start = time.perf_counter()
        first = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        document = json.loads(first.stdout)
        print(f"load average {os.getloadavg()[0]:.1f}")
        print(
            f"cold: {cells} cells in {wall:.1f} s (whole process); limit {limit:.1f} s; "
            f"ratio {wall / limit:.3f}; done {document['done']}"
        )

        if args.promptfoo:
            pf_wall = run_promptfoo(args.promptfoo, work, env, document["batch_id"], args)
            print(
                f"promptfoo eval: {cells} cells in {pf_wall:.1f} s (whole process); "
                f"ours/promptfoo {wall / pf_wall:.3f} (goal <= 0.75)"
            )

        os.environ.update({"PLAYGROUND_HOME": str(work / "home")})
        os.chdir(work)
        from playground.config import load_settings
        from playground.eval.batch import BatchRunner, plan_from_paths

        settings = load_settings(work / "playground.toml")
        plan = plan_from_paths(settings, ["flow.yaml"], model_ids=["stub/m1", "stub/m2"])
        # The app has its store open before a batch starts; the first open in a process
        # imports SQLAlchemy and the schema, which the whole-process figure below includes.
        start = time.perf_counter()
        from playground.store import open_store

        open_store(settings)
        print(f"store first opened in this process: {time.perf_counter() - start:.2f} s")
        start = time.perf_counter()
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(BatchRunner(settings, plan, concurrency=args.concurrency).run)
            cached = time.perf_counter() - start
            pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
        else:
            BatchRunner(settings, plan, concurrency=args.concurrency).run()
            cached = time.perf_counter() - start
        print(f"cache rerun in process, store open: {cells} cells in {cached:.2f} s (goal < 3 s)")
        start = time.perf_counter()
        subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
        print(f"cache rerun whole process: {time.perf_counter() - start:.2f} s")
    finally:
        stub.terminate()
        stub.wait()


def run_promptfoo(
    executable: str, work: Path, env: dict[str, str], batch_id: str, args: argparse.Namespace
) -> float:
    """Export the batch as a promptfooconfig.yaml and time `promptfoo eval` on it."""
    subprocess.run(
        [sys.executable, "-m", "playground.cli", "eval", "export", batch_id,
         "--format", "promptfoo", "--out", "promptfooconfig.yaml"],
        cwd=work, env=env, check=True, capture_output=True,
    )  # fmt: skip
    pf_env = {
        **env,
        "PROMPTFOO_CONFIG_DIR": str(work / "promptfoo"),  # its own database, not ~/.promptfoo
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        "PROMPTFOO_DISABLE_SHARING": "1",
        "OPENAI_API_KEY": "none",
    }
    command = [
        executable, "eval", "-c", "promptfooconfig.yaml", "-j", str(args.concurrency),
        "--no-cache", "--no-progress-bar", "--no-table", "-o", "promptfoo-out.json",
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=pf_env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    results = json.loads((work / "promptfoo-out.json").read_text(encoding="utf-8"))["results"]
    stats = results.get("stats", {})
    print(
        f"promptfoo exit {done.returncode}: {stats.get('successes')} passed, "
        f"{stats.get('failures')} failed, {stats.get('errors')} errors"
    )
    return wall


if __name__ == "__main__":
    main()
