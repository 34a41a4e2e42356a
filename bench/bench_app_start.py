"""App start: the first AppTest run of the Playground page, no model loaded yet.

Each measurement is a fresh Python process, so imports are cold. The baseline is the first
run of a one-line Streamlit page in an identical fresh process. Goal: <= 1.5 s.
Run: python bench/bench_app_start.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 5

PROBE = """
import json, os, sys, time
sys.path.insert(0, {root!r})
os.chdir({work!r})
os.environ["PLAYGROUND_HOME"] = {home!r}
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({page!r}, default_timeout=60)
start = time.perf_counter()
at.run()
elapsed = time.perf_counter() - start
assert not at.exception, at.exception
heavy = [m for m in ("llama_cpp", "torch", "chromadb", "openai", "sqlalchemy") if m in sys.modules]
print(json.dumps({{"seconds": elapsed, "heavy": heavy}}))
"""


def first_run(page: Path, work: Path) -> dict[str, object]:
    """Seconds of the first at.run() of page in a fresh interpreter, and heavy modules seen."""
    code = PROBE.format(root=str(ROOT), work=str(work), home=str(work / "home"), page=str(page))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print the median first-run time of the Playground page against a trivial page."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        trivial = work / "trivial.py"
        trivial.write_text("import streamlit as st\nst.title('hello')\n")
        pages, baselines, heavy = [], [], set()
        for _ in range(REPEATS):
            baselines.append(float(first_run(trivial, work)["seconds"]))  # type: ignore[arg-type]
            probe = first_run(ROOT / "views" / "playground_page.py", work)
            pages.append(float(probe["seconds"]))  # type: ignore[arg-type]
            heavy.update(probe["heavy"])  # type: ignore[arg-type]
        page, base = statistics.median(pages), statistics.median(baselines)
        print(
            f"Playground first run {page:.3f} s  trivial page {base:.3f} s  "
            f"ratio {page / base:.2f}  (goal <= 1.5 s)  heavy modules imported: "
            f"{sorted(heavy) or 'none'}"
        )


if __name__ == "__main__":
    main()
