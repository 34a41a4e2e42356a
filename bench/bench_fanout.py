"""Fan-out: wall time of 1 vs N models against a loopback server that answers after 1 s.

The server runs in a process of its own, as a real one would. Measured three ways: through
runner.run_cells in this process (what the CLI and headless flows use), through
`playground run` as a fresh process, and through the Playground page under AppTest (click
Run; "answers" is when the last cell the page polls has ended, "drawn" adds the final rerun
that draws the finished grid). Goal for every size and repeat: wall(N)/wall(1) <= 1.15.
"bare openai threads" is the floor: the SDK alone, one thread per call, no playground code.
Run: python bench/bench_fanout.py [--sizes 6,24,48] [--repeats 3] [--paths sdk,runner,cli,page]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playground.config import load_settings  # noqa: E402
from playground.models.base import ModelParams  # noqa: E402
from playground.records import PromptVariant  # noqa: E402
from playground.runner import plan_cells, run_cells  # noqa: E402

MAX_MODELS = 48


SERVER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from tests.support import FaultServer
with FaultServer(delay_s=1.0) as server:
    print(server.url("slow"), flush=True)
    while True:
        time.sleep(60)
"""


def start_server() -> tuple[subprocess.Popen[str], str]:
    """The 1 s server in a process of its own (a real server never shares our cores' GIL)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(ROOT)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def configure(base_url: str, work: Path) -> None:
    """An endpoint `slow` with 48 model names, all on the 1 s server."""
    models = ", ".join(f'"m{i}"' for i in range(1, MAX_MODELS + 1))
    config = work / "playground.toml"
    config.write_text(
        f'[endpoints.slow]\nbase_url = "{base_url}"\nmodels = [{models}]\nmax_retries = 0\n'
    )
    os.environ["BENCH_BASE_URL"] = base_url
    os.environ["PLAYGROUND_CONFIG"] = str(config)
    os.environ["PLAYGROUND_HOME"] = str(work / "home")
    os.chdir(work)


def ids(n: int) -> list[str]:
    """The first n model ids."""
    return [f"slow/m{i}" for i in range(1, n + 1)]


def runner_wall(n: int) -> dict[str, float]:
    """Seconds for run_cells over n models."""
    settings = load_settings()
    cells = plan_cells(
        [PromptVariant(user="hi")], ids(n), dict.fromkeys(ids(n), ModelParams()), {}, settings
    )
    start = time.perf_counter()
    results = run_cells(cells, settings)
    wall = time.perf_counter() - start
    assert all(r.ok for r in results), [r.error for r in results]
    return {"": wall}


def sdk_wall(n: int) -> dict[str, float]:
    """Seconds for n bare openai SDK streams on n threads: the floor under run_cells."""
    from concurrent.futures import ThreadPoolExecutor

    import openai

    client = openai.OpenAI(base_url=os.environ["BENCH_BASE_URL"], api_key="x", max_retries=0)

    def call(model: str) -> None:
        stream = client.chat.completions.create(
            model=model.split("/")[1],
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.choices:
                _ = chunk.choices[0].delta.content

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(call, ids(n)))
    return {"": time.perf_counter() - start}


def cli_wall(n: int) -> dict[str, float]:
    """Seconds for `playground run` on n models, as a fresh process (start-up included)."""
    models = [arg for model_id in ids(n) for arg in ("--model", model_id)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "playground.cli", "run", *models, "--prompt", "hi", "--json"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    return {"": wall}


def page_wall(n: int) -> dict[str, float]:
    """Seconds from one Run click with n models to the last answer, and to the drawn grid."""
    from streamlit import config as streamlit_config
    from streamlit.testing.v1 import AppTest

    from playground.cli.core import streamlit_options

    # The options `playground app` starts Streamlit with: AppTest reads .streamlit/config.toml
    # from the working directory, which is the bench's temporary home, so it would otherwise
    # run with Streamlit's defaults (a full gc.collect() after every script run among them).
    for name, value in streamlit_options("127.0.0.1", headless=True, dev=False).items():
        streamlit_config.set_option(name, value)
    at = AppTest.from_file(str(ROOT / "views" / "playground_page.py"), default_timeout=120)
    at.run()
    at.multiselect(key="pg_models").set_value(ids(n)).run()
    start = time.perf_counter()
    at.button(key="btn_run").click().run()
    view = at.session_state["run_view"]
    while view.live:  # the cells stream in background threads; the page only polls them
        time.sleep(0.01)
    answers = time.perf_counter() - start
    at.run()
    drawn = time.perf_counter() - start
    captions = [c for c in at.caption if c.value.startswith("TTFT")]
    assert len(captions) == n and not at.error, [e.value for e in at.error]
    return {"answers": answers, "drawn": drawn}


PATHS = {"sdk": sdk_wall, "runner": runner_wall, "cli": cli_wall, "page": page_wall}
NAMES = {
    "sdk": "bare openai threads",
    "runner": "runner.run_cells",
    "cli": "playground run",
    "page": "Playground page",
}


def main() -> None:
    """Print every repeat's ratio wall(N)/wall(1) and the medians, per path and size."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="6,24,48")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paths", default="sdk,runner,cli,page")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    assert max(sizes) <= MAX_MODELS, f"at most {MAX_MODELS} models"
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    server, base_url = start_server()
    with tempfile.TemporaryDirectory() as tmp:
        configure(base_url, Path(tmp))
        for path in args.paths.split(","):
            measure = PATHS[path]
            measure(1)  # warm-up: SDK import, client, store, page modules
            for n in sizes:
                runs = []
                for _ in range(args.repeats):  # alternate so drift hits both sides alike
                    runs.append((measure(1), measure(n)))
                for metric in runs[0][0]:
                    ones = [one[metric] for one, _ in runs]
                    many = [wall[metric] for _, wall in runs]
                    ratios = [w / o for o, w in zip(ones, many, strict=True)]
                    each = " ".join(f"{r:.3f}" for r in ratios)
                    name = f"{NAMES[path]} {metric}".strip()
                    print(
                        f"{name:24s} N={n:2d}  wall(1) {statistics.median(ones):.3f} s  "
                        f"wall(N) {statistics.median(many):.3f} s  ratio per run {each}  "
                        f"worst {max(ratios):.3f} (goal <= 1.15)",
                        flush=True,
                    )
    server.terminate()
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
