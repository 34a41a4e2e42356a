"""History and Compare pages with 10,000 stored runs: AppTest rerun time against a trivial page.

    python bench/bench_history_compare.py [--runs 10000] [--reruns 10]

Seeds a fresh data home (in a temp dir) with runs of 2-3 answers over 40 configurations, a
third of the answers rated by a few sessions and a third of the runs voted on, then times
AppTest reruns of each page after a warm-up run. Pages cache their queries under the store's
data version, so "cold" cases store a new rating, vote or run before every rerun to time the
queries (the store then recomputes the configurations the new rows touch).
Prints ms per rerun and the ratio to a trivial page rerun measured in the same process.
Goal: <= 300 ms per rerun.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = ["local/smollm2-135m-instruct", "openai/gpt-4o-mini", "openai/gpt-4o", "myserver/llama3"]
PROMPTS = [
    "Is the {{ product }} waterproof?",
    "Answer briefly: how heavy is the {{ product }}?",
    "You are a gear expert. Compare the {{ product }} with its rivals.",
    "Summarise the warranty of the {{ product }} in two sentences.",
    "Which accessories fit the {{ product }}?",
]
PRODUCTS = ["trail tent", "summit stove", "ridge pack", "canyon boots", "delta jacket"]


def seed(store: object, n_runs: int, rng: random.Random, quiet: bool = False) -> None:
    """Insert n_runs runs with answers, ratings and votes in a few big transactions."""
    from sqlalchemy import insert

    from playground.models.base import Message, ModelParams, Usage
    from playground.records import Result, Run
    from playground.store.runs import _result_row, _run_row
    from playground.store.schema import preferences, ratings, results, runs

    start = datetime(2026, 1, 1, tzinfo=UTC)
    run_rows, result_rows, rating_rows, vote_rows = [], [], [], []
    for i in range(n_runs):
        when = start + timedelta(minutes=30 * i)
        product = rng.choice(PRODUCTS)
        prompt = rng.choice(PROMPTS)
        temperature = rng.choice([0.2, 0.7])
        source = rng.choice(["app", "cli"])
        run = Run(source=source, variables={"product": product}, created_at=when)
        chosen = rng.sample(MODELS, rng.choice([2, 3]))
        for position, model in enumerate(chosen):
            failed = rng.random() < 0.03
            result = Result(
                model_id=model,
                messages=[Message(role="user", content=prompt.replace("{{ product }}", product))],
                params=ModelParams(temperature=temperature),
                user_template=prompt,
                text="" if failed else f"The {product} " + "is well made and light. " * 12,
                error="The endpoint answered 500." if failed else None,
                usage=Usage(40, 120),
                ttft_ms=rng.uniform(80, 900),
                latency_ms=rng.uniform(400, 6000),
                tokens_per_s=rng.uniform(10, 80),
                cost_usd=0.0 if model.startswith("local") else rng.uniform(1e-5, 3e-3),
                created_at=when,
            )
            run.results.append(result)
            result_rows.append(_result_row(run.id, position, result))
            if rng.random() < 0.33:
                for session in rng.sample(["s1", "s2", "s3"], rng.randint(1, 2)):
                    rating_rows.append(
                        {
                            "result_id": result.id,
                            "stars": rng.randint(1, 5),
                            "comment": None,
                            "session_id": session,
                            "created_at": when,
                        }
                    )
        if rng.random() < 0.33:
            best = rng.choice(run.results)
            for other in run.results:
                if other is not best:
                    vote_rows.append(
                        {
                            "run_id": run.id,
                            "winner_result_id": best.id,
                            "loser_result_id": other.id,
                            "outcome": "win",
                            "session_id": "s1",
                            "created_at": when,
                        }
                    )
        run_rows.append(_run_row(run))
    with store.db.engine.begin() as conn:
        for table, rows in ((runs, run_rows), (results, result_rows), (ratings, rating_rows),
                            (preferences, vote_rows)):  # fmt: skip
            if rows:
                conn.execute(insert(table), rows)
    if quiet:
        return
    print(
        f"seeded {len(run_rows)} runs, {len(result_rows)} answers, {len(rating_rows)} ratings, "
        f"{len(vote_rows)} vote rows"
    )


def time_reruns(at: object, reruns: int, before: object = None) -> float:
    """Median ms of `reruns` AppTest reruns (after the caller's warm-up run)."""
    samples = []
    for _ in range(reruns):
        if before is not None:
            before()  # type: ignore[operator]
        began = time.perf_counter()
        at.run()  # type: ignore[attr-defined]
        samples.append((time.perf_counter() - began) * 1000)
        assert not at.exception, at.exception  # type: ignore[attr-defined]
    return statistics.median(samples)


def main() -> None:
    """Seed, warm up, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--reruns", type=int, default=10)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-history-")
    os.environ["PLAYGROUND_HOME"] = str(Path(tmp) / "home")
    os.chdir(tmp)

    from playground.config import load_settings
    from playground.store import open_store

    store = open_store(load_settings())
    began = time.perf_counter()
    seed(store, args.runs, random.Random(7))
    print(f"seeding took {time.perf_counter() - began:.1f} s")

    baseline = None
    print(f"\n{'case':<36} {'ms/rerun':>9} {'x baseline':>11}")
    for name, ms in run_cases(store, args.reruns):
        baseline = baseline or ms
        print(f"{name:<36} {ms:>9.0f} {ms / baseline:>11.1f}")


SELECTION = {"selection": {"rows": [0], "columns": [], "cells": []}}
TWO_ROWS = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
# (case, page file under views/, session state set before the timed reruns); the first case is
# the trivial-page baseline. "(cold)" cases store the named row before each rerun.
CASES: list[tuple[str, str | None, dict[str, object]]] = [
    ("trivial page (baseline)", None, {}),
    ("history, page 1", "history", {}),
    ("history, page 250", "history", {"hist_page": 250}),
    ("history, text search", "history", {"hist_search": "warranty"}),
    ("history, model + 4 stars", "history", {"hist_model": "openai/gpt-4o", "hist_min_stars": 4}),
    ("history, one run open", "history", {"hist_table_1": SELECTION}),
    ("history, two runs side by side", "history", {"hist_table_1": TWO_ROWS}),
    ("compare, all configurations", "compare", {}),
    ("compare, template filter", "compare", {"cmp_template": "warranty"}),
    ("compare, one configuration open", "compare", {"cmp_table": SELECTION}),
    ("history, after a new rating (cold)", "history", {}),
    ("compare, after a new rating (cold)", "compare", {}),
    ("history, search after a new run (cold)", "history", {"hist_search": "warranty"}),
    ("compare, after a new vote (cold)", "compare", {}),
    ("compare, after a new run (cold)", "compare", {}),
]


def page_test(name: str | None, state: dict[str, object]) -> object:
    """An AppTest of views/<name>.py (or the trivial page), warmed up with `state` set."""
    from streamlit.testing.v1 import AppTest

    if name is None:
        return AppTest.from_string(
            "import streamlit as st\nst.title('Hello')\nst.write('a trivial page')"
        ).run()
    at = AppTest.from_file(str(ROOT / "views" / f"{name}.py"), default_timeout=60)
    at.run()  # warm-up: imports, caches, first query plans
    for key, value in state.items():
        at.session_state[key] = value
    if state:
        at.run()
    return at


def run_cases(store: object, reruns: int) -> list[tuple[str, float]]:
    """Median ms per rerun of every case in CASES, against the store the pages open."""
    tests = [(name, page_test(page, state)) for name, page, state in CASES]
    some_runs = store.history.history_page().runs  # type: ignore[attr-defined]
    some_answer = some_runs[0].results[0].id
    extra_rng = random.Random(11)

    # "cold" cases store a rating, a vote or a run before each rerun: no cache can answer.
    def rate() -> None:
        store.ratings.add_rating(some_answer, 4, None, "bench")  # type: ignore[attr-defined]

    def vote() -> None:
        run = extra_rng.choice(some_runs)
        ids = [r.id for r in run.results]
        store.ratings.add_preference(  # type: ignore[attr-defined]
            run.id, ids, "best", extra_rng.choice(ids), "bench"
        )

    def new_run() -> None:
        seed(store, 1, extra_rng, quiet=True)

    actions = {"new rating": rate, "new vote": vote, "new run": new_run}
    timed = []
    for name, at in tests:
        before = next((act for what, act in actions.items() if what in name), None)
        timed.append((name, time_reruns(at, reruns, before)))
    return timed


if __name__ == "__main__":
    main()
