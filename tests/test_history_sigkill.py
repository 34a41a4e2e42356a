"""A process killed with SIGKILL mid-work loses nothing it had committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.config import load_settings
from playground.errors import NotFoundError
from playground.store import Store

ROOT = Path(__file__).resolve().parent.parent

WORKER = textwrap.dedent(
    """
    import sys
    from playground.config import load_settings
    from playground.store import open_store
    from tests.history_fixtures import make_result, make_run

    store = open_store(load_settings())
    i = 0
    while True:  # runs until killed, like an app in the middle of a session
        model = "retired/model-x" if i % 2 else "local/smollm2-135m-instruct"
        run = make_run(models=(model,), texts=(f"answer {i}",))
        run.results = []
        result = make_result(model_id=model, text=f"answer {i}")
        store.runs.save_result(run, result)
        print("result", run.id, result.id, flush=True)
        rating_id = store.ratings.add_rating(result.id, 1 + i % 5, f"comment {i}", "worker")
        print("rating", rating_id, result.id, flush=True)
        i += 1
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_keeps_every_committed_result_and_rating(home: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER], stdout=subprocess.PIPE, text=True, env=env
    )
    committed: list[list[str]] = []
    assert proc.stdout is not None
    while len(committed) < 60:
        line = proc.stdout.readline()
        assert line, "the worker died before it was killed"
        committed.append(line.split())
    os.kill(proc.pid, signal.SIGKILL)  # mid-loop: likely inside a transaction
    proc.wait(timeout=10)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    store = Store(load_settings().database_url)  # a fresh process's view of the file
    try:
        runs = {run_id: result_id for kind, run_id, result_id in committed if kind == "result"}
        for run_id, result_id in runs.items():
            assert [r.id for r in store.runs.get_run(run_id).results] == [result_id]
        ratings = {int(r["rating_id"]) for r in store.exports.export_ratings()}
        assert {int(n) for kind, n, _ in committed if kind == "rating"} <= ratings
        # The answer committed before the kill on the retired model still displays.
        retired = next(
            run_id
            for run_id in runs
            if store.runs.get_run(run_id).results[0].model_id.startswith("re")
        )
    except NotFoundError as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"lost after SIGKILL: {exc}")
    finally:
        store.close()

    at = AppTest.from_file(str(ROOT / "views" / "run.py"), default_timeout=30)
    at.query_params["run"] = retired
    at.run()
    assert not at.exception
    assert at.warning[0].value.startswith("retired/model-x is no longer available.")
    assert any(m.value.startswith("answer ") for m in at.markdown)
