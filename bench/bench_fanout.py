"""Fan-out: wall time of 1 vs 6 models against a loopback server that answers after 1 s.

Measured twice: through runner.run_cells (CLI and headless flows) and through the
Playground page under AppTest (one parallel fragment per cell). Goal: wall(6)/wall(1) <= 1.15.
Run: python bench/bench_fanout.py
"""

from __future__ import annotations

import os
import statistics
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
from tests.support import FaultServer  # noqa: E402

REPEATS = 3


def configure(server: FaultServer, work: Path) -> None:
    """An endpoint `slow` with six model names, all on the 1 s server."""
    models = ", ".join(f'"m{i}"' for i in range(1, 7))
    config = work / "playground.toml"
    config.write_text(
        f'[endpoints.slow]\nbase_url = "{server.url("slow")}"\nmodels = [{models}]\n'
        "max_retries = 0\n"
    )
    os.environ["PLAYGROUND_CONFIG"] = str(config)
    os.environ["PLAYGROUND_HOME"] = str(work / "home")
    os.chdir(work)


def runner_wall(n: int) -> float:
    """Seconds for run_cells over n models."""
    settings = load_settings()
    ids = [f"slow/m{i}" for i in range(1, n + 1)]
    cells = plan_cells(
        [PromptVariant(user="hi")], ids, dict.fromkeys(ids, ModelParams()), {}, settings
    )
    start = time.perf_counter()
    results = run_cells(cells, settings)
    wall = time.perf_counter() - start
    assert all(r.ok for r in results), [r.error for r in results]
    return wall


def page_wall(n: int) -> float:
    """Seconds for one Run click on the Playground page with n models selected."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "views" / "playground_page.py"), default_timeout=60)
    at.run()
    at.multiselect(key="pg_models").set_value([f"slow/m{i}" for i in range(1, n + 1)]).run()
    start = time.perf_counter()
    at.button(key="btn_run").click().run()
    wall = time.perf_counter() - start
    captions = [c for c in at.caption if c.value.startswith("TTFT")]
    assert len(captions) == n and not at.error, [e.value for e in at.error]
    return wall


def main() -> None:
    """Print median walls and the 6/1 ratio for both paths."""
    with tempfile.TemporaryDirectory() as tmp, FaultServer(delay_s=1.0) as server:
        configure(server, Path(tmp))
        for name, measure in (("runner.run_cells", runner_wall), ("Playground page", page_wall)):
            ones, sixes = [], []
            for _ in range(REPEATS):  # alternate so drift hits both sides alike
                ones.append(measure(1))
                sixes.append(measure(6))
            one, six = statistics.median(ones), statistics.median(sixes)
            print(
                f"{name:18s} wall(1) {one:.3f} s  wall(6) {six:.3f} s  "
                f"ratio {six / one:.3f}  (goal <= 1.15)"
            )


if __name__ == "__main__":
    main()
