"""The batch runner: every cell a run, cache, 429s, per-endpoint limits, SIGKILL and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from playground.config import load_settings
from playground.eval.batch import BatchRunner, check_plan, estimate, plan_from_paths
from playground.eval.datasets import DatasetError
from playground.eval.results import compare_reports, load_report
from playground.store import open_store
from playground.store.batches import batch_cells
from playground.store.schema import runs
from tests.eval_support import EvalStub, stub_config, write_flow

ROOT = Path(__file__).resolve().parent.parent
BLOCK = """evaluation:
  dataset: {dataset}
  scorers:
    - {{type: contains, value: "{{{{ expected }}}}"}}
  gate: {{pass_rate: {gate}}}
"""


def _dataset(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            handle.write(
                json.dumps({"question": f"question {i}?", "expected": f"answer {i}"}) + "\n"
            )
    return path


def _setup(tmp: Path, write_config: Any, stub: EvalStub, rows: int, gate: float = 0.5, **kw: Any):
    write_config(stub_config(stub.base_url, **kw))
    data = _dataset(tmp / "rows.jsonl", rows)
    flow = tmp / "flow.yaml"
    write_flow(flow, "stub/stub-model", BLOCK.format(dataset=data, gate=gate))
    return flow


def test_every_cell_is_an_ordinary_run_and_the_cache_keeps_measurements(
    home: Path, tmp_path: Path, write_config: Any
) -> None:
    answers = {f"question {i}?": f"It is answer {i}." for i in range(0, 6, 2)}  # even rows pass
    with EvalStub(latency_s=0.05, answers=answers) as stub:
        flow = _setup(tmp_path, write_config, stub, rows=6)
        settings = load_settings()
        plan = plan_from_paths(settings, [str(flow)])
        check_plan(settings, plan)
        assert BatchRunner(settings, plan, concurrency=4).run() == "done"
        first = load_report(settings, plan.batch_id)
        calls = stub.requests
        again = plan_from_paths(settings, [str(flow)])
        reported: list[tuple[int, int]] = []
        BatchRunner(
            settings, again, concurrency=4, on_progress=lambda d, t, _: reported.append((d, t))
        ).run()
        second = load_report(settings, again.batch_id)
    # cached cells are saved in groups, and each is reported once it is saved
    assert reported == [(i, 6) for i in range(1, 7)] and len(second.cells) == 6
    assert calls == 6 and stub.requests == 6  # the rerun came from the cache
    config = first.configs[0]
    assert (config.passed, config.failed, config.pass_rate, config.gate_passed) == (3, 3, 0.5, True)
    assert config.ci_low < 0.5 < config.ci_high
    store = open_store(settings)
    with store.db.engine.connect() as conn:
        sources = conn.execute(
            select(runs.c.source, runs.c.batch_row).where(runs.c.batch_id == plan.batch_id)
        ).all()
    assert sorted(r.batch_row for r in sources) == list(range(6)) and {
        r.source for r in sources
    } == {"batch"}
    run = store.runs.get_run(first.cells[0].run_id)  # History and permalinks see it
    assert run.results[0].text == "It is answer 0."
    cached = {c.row_index: c.result for c in second.cells}
    original = {c.row_index: c.result for c in first.cells}
    assert all(c.cached for c in second.cells)
    assert cached[0].latency_ms == original[0].latency_ms > 40  # the original latency, kept
    assert second.configs[0].pass_rate == 0.5
    comparison = compare_reports(second, first)
    assert comparison[0].pass_to_fail == [] and comparison[0].paired == 6


def test_no_cache_calls_again_and_baseline_finds_regressions(
    home: Path, tmp_path: Path, write_config: Any
) -> None:
    with EvalStub(answers={f"question {i}?": f"answer {i}" for i in range(8)}) as stub:
        flow = _setup(tmp_path, write_config, stub, rows=8)
        settings = load_settings()
        base = plan_from_paths(settings, [str(flow)])
        BatchRunner(settings, base).run()
        stub.answers = {}  # every row now fails
        plan = plan_from_paths(settings, [str(flow)])
        BatchRunner(settings, plan, use_cache=False).run()
    assert stub.requests == 16
    comparison = compare_reports(
        load_report(settings, plan.batch_id), load_report(settings, base.batch_id)
    )
    assert comparison[0].pass_to_fail == list(range(8)) and comparison[0].fail_to_pass == []
    assert comparison[0].significant and comparison[0].p_value < 0.01


def test_429s_are_retried_until_the_server_lets_us_through(
    home: Path, tmp_path: Path, write_config: Any
) -> None:
    with EvalStub(answers={"question": "answer 0"}) as stub:
        stub.rate_limit_left = 5
        flow = _setup(tmp_path, write_config, stub, rows=2)
        settings = load_settings()
        plan = plan_from_paths(settings, [str(flow)])
        start = time.monotonic()
        BatchRunner(settings, plan, concurrency=1).run()
        elapsed = time.monotonic() - start
    report = load_report(settings, plan.batch_id)
    assert stub.rate_limited == 5 and report.configs[0].errors == 0
    assert elapsed >= 2.0  # Retry-After: 1 was honoured, not hammered


def test_endpoint_max_concurrency_caps_calls_in_flight(
    home: Path, tmp_path: Path, write_config: Any
) -> None:
    with EvalStub(latency_s=0.2) as stub:
        flow = _setup(tmp_path, write_config, stub, rows=8, max_concurrency=2)
        settings = load_settings()
        plan = plan_from_paths(settings, [str(flow)])
        BatchRunner(settings, plan, concurrency=8).run()
    assert stub.peak == 2


def test_garbage_answers_are_errors_and_the_batch_carries_on(
    home: Path, tmp_path: Path, write_config: Any
) -> None:
    with EvalStub() as stub:
        stub.garbage = True
        flow = _setup(tmp_path, write_config, stub, rows=3)
        settings = load_settings()
        plan = plan_from_paths(settings, [str(flow)])
        BatchRunner(settings, plan).run()
    config = load_report(settings, plan.batch_id).configs[0]
    assert config.errors == 3 and not config.gate_passed
    assert "OpenAI-compatible" in config.rows[0]["error"]


def test_missing_column_and_cost_estimate_before_anything_is_sent(
    home: Path, tmp_path: Path, write_config: Any
) -> None:
    with EvalStub() as stub:
        flow = _setup(tmp_path, write_config, stub, rows=3)
        settings = load_settings()
        bad = tmp_path / "other.jsonl"
        bad.write_text('{"prompt": "x"}\n', encoding="utf-8")
        plan = plan_from_paths(settings, [str(flow)], dataset=str(bad))
        with pytest.raises(DatasetError, match="no column for 'question'"):
            check_plan(settings, plan)
        good = plan_from_paths(settings, [str(flow)], repeat=2)
        figures = estimate(settings, good, concurrency=4)
    assert stub.requests == 0
    assert figures.cells == 6 and figures.calls == 6 and figures.completion_tokens == 6 * 16


def _count_cells(db: Path) -> int:
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(batch_cells)).scalar_one())
    except Exception:
        return 0
    finally:
        engine.dispose()


def test_sigkill_then_resume_runs_every_cell_exactly_once(
    home: Path, tmp_path: Path, write_config: Any
) -> None:
    with EvalStub(latency_s=0.3) as stub:
        flow = _setup(tmp_path, write_config, stub, rows=10)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "playground.cli", "eval", "run", str(flow)]
        proc = subprocess.Popen(
            [*command, "--concurrency", "2", "--json"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        db = home / "playground.db"
        deadline = time.monotonic() + 120
        while _count_cells(db) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        settings = load_settings()
        [record] = open_store(settings).batches.list()
        assert 3 <= record.done_cells < 10
        resumed = subprocess.run(
            [sys.executable, "-m", "playground.cli", "eval", "resume", record.id, "--json"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert resumed.returncode == 1, resumed.stderr  # every answer is "I do not know."
    document = json.loads(resumed.stdout)
    assert document["done"] == 10 and document["status"] == "done"
    rows = sorted(r["row"] for r in document["configurations"][0]["rows"])
    assert rows == list(range(10))
    with open_store(settings).db.engine.connect() as conn:
        saved = (
            conn.execute(select(runs.c.batch_row).where(runs.c.batch_id == record.id))
            .scalars()
            .all()
        )
    assert sorted(saved) == list(range(10))  # no cell twice, none lost


SIMILARITY_BLOCK = """evaluation:
  dataset: {dataset}
  repeat: 2
  scorers:
    - {{type: similarity, reference: "{{{{ expected }}}}", threshold: 0.0}}
"""


def test_a_planned_batch_encodes_its_references_once_ahead_and_scores_as_one_by_one(
    home: Path, tmp_path: Path, write_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.eval.scorers_similarity import SharedEncoder, _shared
    from playground.rag.embeddings import canonical_name, get_embedder

    class _Recording:
        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def encode(self, texts: list[str], batch_size: int = 64) -> Any:
            self.calls.append(list(texts))
            return get_embedder().encode(texts, batch_size=batch_size)

    recording = _Recording()
    monkeypatch.setitem(_shared, canonical_name(None), SharedEncoder(recording))
    answers = {f"question {i}?": f"The answer is {i} days." for i in range(6)}
    with EvalStub(latency_s=0.05, answers=answers) as stub:
        write_config(stub_config(stub.base_url))
        data = _dataset(tmp_path / "rows.jsonl", 6)
        flow = tmp_path / "flow.yaml"
        write_flow(flow, "stub/stub-model", SIMILARITY_BLOCK.format(dataset=data))
        settings = load_settings()
        plan = plan_from_paths(settings, [str(flow)])
        assert BatchRunner(settings, plan, concurrency=4).run() == "done"
    references = {f"answer {i}" for i in range(6)}
    encoded = [t for call in recording.calls for t in call]
    assert sorted(t for t in encoded if t in references) == sorted(references)  # once each
    assert set(recording.calls[0]) == references  # in one call, before any answer came
    report = load_report(settings, plan.batch_id)
    assert len(report.cells) == 12
    for cell in report.cells:
        alone = get_embedder().encode([cell.result.text, f"answer {cell.row_index}"])
        score = cell.verdicts[0]["score"]
        assert abs(score - round(float(alone[0] @ alone[1]), 4)) < 1e-3
