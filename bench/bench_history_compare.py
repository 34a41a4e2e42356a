"""History and Compare pages with 10,000 stored runs: AppTest rerun time against a trivial page.

    python bench/bench_history_compare.py [--sizes 100000,1000000] [--reruns 10]
                                          [--backend sqlite|postgresql]
                                          [--keep DIR | --reuse DIR/home/playground.db]

Seeds a fresh data home (in a temp dir under /tmp) in bulk, growing to each size in turn
(executemany in transactions of 20,000 runs, triggers and indexes dropped during the load and
rebuilt after it, FTS5 rebuilt once), with runs of 2-3 answers over 40 configurations, a
third of the answers rated by a few sessions and a third of the runs voted on, then times
AppTest reruns of each page after a warm-up run. Pages cache their queries under the store's
data version, so "cold" cases store a new rating, vote or run before every rerun to time the
queries (the store then recomputes the configurations the new rows touch).
Prints ms per rerun and the ratio to a trivial page rerun measured in the same process.
Goals: <= 300 ms per rerun at every size, and last size / first size <= 2.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from operator import itemgetter
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


def _templates() -> dict[tuple[str, str, float], dict[str, object]]:
    """One results row per configuration (model x prompt x temperature), hash included."""
    from playground.models.base import ModelParams
    from playground.records import Result
    from playground.store.runs import _result_row

    rows = {}
    for model in MODELS:
        for prompt in PROMPTS:
            for temperature in (0.2, 0.7):
                result = Result(
                    model_id=model,
                    messages=[],
                    params=ModelParams(temperature=temperature),
                    user_template=prompt,
                )
                rows[(model, prompt, temperature)] = _result_row("x", 0, result)
    return rows


@contextmanager
def bulk_mode(store: object) -> Iterator[None]:
    """Load without triggers and secondary indexes, then rebuild them and the derived rows.

    Building an index (or the FTS5 index) once over sorted data is several times faster than
    keeping it row by row; the triggers' counters are recounted once at the end.
    """
    from playground.store import tallies
    from playground.store.migrations import _CONFIG_COLUMNS, _config_terms

    engine = store.db.engine  # type: ignore[attr-defined]
    sqlite = store.backend == "sqlite"  # type: ignore[attr-defined]
    with engine.begin() as conn:
        if sqlite:
            saved = conn.exec_driver_sql(
                "SELECT type, name, sql FROM sqlite_master WHERE type IN ('trigger', 'index') "
                "AND sql IS NOT NULL AND tbl_name IN ('runs', 'results', 'ratings', "
                "'preferences')"
            ).all()
            for kind, name, _sql in saved:
                conn.exec_driver_sql(f"DROP {kind.upper()} {name}")
        else:
            saved = conn.exec_driver_sql(
                "SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = "
                "current_schema() AND tablename IN ('runs', 'results', 'ratings', "
                "'preferences') AND indexname NOT LIKE '%%pkey'"
            ).all()
            for _kind, name, _sql in saved:
                conn.exec_driver_sql(f"DROP INDEX {name}")
    try:
        yield
    finally:
        with engine.begin() as conn:
            for _kind, _name, sql in saved:
                conn.exec_driver_sql(sql)
            if sqlite:
                for table in ("results_fts", "runs_fts"):
                    conn.exec_driver_sql(f"INSERT INTO {table} ({table}) VALUES ('rebuild')")
            for table in ("runs", "results", "ratings", "preferences"):
                conn.exec_driver_sql(
                    f"UPDATE store_counts SET value = (SELECT count(*) FROM {table}) "
                    f"WHERE name = '{table}'"
                )
            conn.exec_driver_sql("DELETE FROM config_counts")
            conn.exec_driver_sql("DELETE FROM pair_counts")
            conn.exec_driver_sql(
                f"INSERT INTO config_counts (config_hash, model_id, {_CONFIG_COLUMNS}) "
                f"SELECT config_hash, min(model_id), {_config_terms('results', 'sum')} "
                "FROM results GROUP BY config_hash"
            )
            tallies.recount(conn)  # raw rating and vote rows bypassed the write path
        if not sqlite:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")


def _insert_raw(conn: object, table: object, rows: list[dict[str, object]]) -> None:
    """Rows straight to the driver: executemany on SQLite, COPY on PostgreSQL."""
    names = [c for c in rows[0] if c in table.c]  # type: ignore[attr-defined]
    columns = ", ".join(names)
    if conn.dialect.name == "postgresql":  # type: ignore[attr-defined]
        raw = conn.connection.driver_connection  # type: ignore[attr-defined]
        with raw.cursor().copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row([row[n] for n in names])
        return
    # bulk_seed gives SQLite its times already as text, as SQLAlchemy's DateTime stores them
    pick = itemgetter(*names)
    conn.exec_driver_sql(  # type: ignore[attr-defined]
        f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join('?' * len(names))})",  # type: ignore[attr-defined]
        [pick(row) for row in rows],
    )


def bulk_seed(
    store: object, n_runs: int, rng: random.Random, first: int = 0, chunk: int = 20_000
) -> tuple[int, int, int]:
    """Insert runs first..first+n_runs like seed(), built as plain rows: a million in minutes.

    Returns (answers, ratings, vote rows) added. Call inside bulk_mode() for speed.
    """
    import json

    from playground.store.schema import preferences, ratings, results, runs

    templates = _templates()
    texts = {p: f"The {p} " + "is well made and light. " * 12 for p in PRODUCTS}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    engine = store.db.engine  # type: ignore[attr-defined]
    sqlite = store.backend == "sqlite"  # type: ignore[attr-defined]
    added = [0, 0, 0]
    for base in range(first, first + n_runs, chunk):
        run_rows, result_rows, rating_rows, vote_rows = [], [], [], []
        for i in range(base, min(base + chunk, first + n_runs)):
            when: object = start + timedelta(minutes=30 * i)
            if sqlite:
                when = when.strftime("%Y-%m-%d %H:%M:%S.%f")  # type: ignore[attr-defined]
            product = rng.choice(PRODUCTS)
            prompt = rng.choice(PROMPTS)
            temperature = rng.choice([0.2, 0.7])
            run_id = f"{rng.getrandbits(128):032x}"
            message = json.dumps(
                [{"role": "user", "content": prompt.replace("{{ product }}", product)}]
            )
            run_rows.append(
                {
                    "id": run_id, "created_at": when, "source": rng.choice(["app", "cli"]),
                    "variables_json": json.dumps({"product": product}), "store_name": None,
                    "retrieval_json": None, "batch_id": None, "batch_row": None,
                    "flow_name": None, "flow_version": None, "session_id": None,
                }
            )  # fmt: skip
            answer_ids = []
            for position, model in enumerate(rng.sample(MODELS, rng.choice([2, 3]))):
                failed = rng.random() < 0.03
                row = dict(templates[(model, prompt, temperature)])
                answer = f"{rng.getrandbits(128):032x}"
                answer_ids.append(answer)
                row.update(
                    id=answer, run_id=run_id, created_at=when, position=position,
                    messages_json=message, text="" if failed else texts[product],
                    error="The endpoint answered 500." if failed else None,
                    prompt_tokens=40, completion_tokens=120,
                    ttft_ms=rng.uniform(80, 900), latency_ms=rng.uniform(400, 6000),
                    tokens_per_s=rng.uniform(10, 80),
                    cost_usd=0.0 if model.startswith("local") else rng.uniform(1e-5, 3e-3),
                )  # fmt: skip
                result_rows.append(row)
                if rng.random() < 0.33:
                    for session in rng.sample(["s1", "s2", "s3"], rng.randint(1, 2)):
                        rating_rows.append(
                            {"result_id": answer, "stars": rng.randint(1, 5), "comment": None,
                             "session_id": session, "created_at": when}
                        )  # fmt: skip
            if rng.random() < 0.33:
                best = rng.choice(answer_ids)
                for other in answer_ids:
                    if other != best:
                        vote_rows.append(
                            {"run_id": run_id, "winner_result_id": best,
                             "loser_result_id": other, "outcome": "win", "session_id": "s1",
                             "created_at": when}
                        )  # fmt: skip
        with engine.begin() as conn:
            for table, rows in ((runs, run_rows), (results, result_rows),
                                (ratings, rating_rows), (preferences, vote_rows)):  # fmt: skip
                if rows:
                    _insert_raw(conn, table, rows)
        added[0] += len(result_rows)
        added[1] += len(rating_rows)
        added[2] += len(vote_rows)
    return added[0], added[1], added[2]


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
    """Seed in bulk up to each size, time every case there, print ms and the growth ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000", help="comma-separated run counts, growing")
    parser.add_argument("--reruns", type=int, default=10)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--runs", type=int, default=None, help="one size (older spelling)")
    parser.add_argument(
        "--reuse", default=None, help="time an SQLite store seeded before (path), no seeding"
    )
    parser.add_argument(
        "--keep",
        default=None,
        help="seed into this directory (under /tmp) and keep it, for later --reuse runs",
    )
    args = parser.parse_args()
    sizes = [args.runs] if args.runs else [int(size) for size in args.sizes.split(",")]

    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=False)  # never seed over an earlier store
        tmp = str(Path(args.keep).resolve())
    else:
        tmp = tempfile.mkdtemp(prefix="bench-history-")  # under /tmp: never in the checkout
    os.environ["PLAYGROUND_HOME"] = str(Path(tmp) / "home")
    os.chdir(tmp)
    with ExitStack() as stack:
        if args.backend == "postgresql":
            sys.path.insert(0, str(ROOT / "bench"))
            from bench_store import store_at

            from tests.pg_support import find_bin_dir, running_server

            bin_dir = find_bin_dir()
            if bin_dir is None:
                raise SystemExit("No PostgreSQL binaries found; install postgresql.")
            server = stack.enter_context(running_server(bin_dir))
            store = stack.enter_context(store_at(server.fresh_database(), Path(tmp) / "work"))
        else:
            from playground.config import load_settings
            from playground.store import open_store

            if args.reuse:
                config = Path(tmp) / "playground.toml"
                config.write_text(f'[storage]\ndatabase_url = "sqlite:///{args.reuse}"\n')
                os.environ["PLAYGROUND_CONFIG"] = str(config)
            store = open_store(load_settings())
            if args.reuse:
                sizes = [store.runs.count_runs()]
        figures: dict[int, dict[str, float]] = {}
        rng, seeded = random.Random(7), 0
        for size in sizes:
            if args.reuse:
                figures[size] = dict(run_cases(store, args.reruns))
                continue
            began = time.perf_counter()
            with bulk_mode(store):
                answers, rated, votes = bulk_seed(store, size - seeded, rng, first=seeded)
            seeded = size
            print(
                f"seeded up to {size} runs (+{answers} answers, +{rated} ratings, "
                f"+{votes} vote rows) in {time.perf_counter() - began:.0f} s; "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            figures[size] = dict(run_cases(store, args.reruns))
            print(f"measured at {size} runs; load {os.getloadavg()[0]:.1f}", flush=True)
    head = "".join(f" {size:>9}" for size in sizes)
    growth = f" {sizes[-1] // 1000}k/{sizes[0] // 1000}k" if len(sizes) > 1 else ""
    print(f"\n{args.backend}: ms per rerun (median of {args.reruns})")
    print(f"{'case':<40}{head}{growth}")
    for name, _page, _state in CASES:
        row = "".join(f" {figures[size][name]:>9.0f}" for size in sizes)
        if len(sizes) > 1:
            row += f" {figures[sizes[-1]][name] / figures[sizes[0]][name]:>8.2f}"
        print(f"{name:<40}{row}")


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
    at = AppTest.from_file(str(ROOT / "views" / f"{name}.py"), default_timeout=600)
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
        print(f"  {name:<40} {timed[-1][1]:>7.0f} ms", flush=True)
    return timed


if __name__ == "__main__":
    main()
