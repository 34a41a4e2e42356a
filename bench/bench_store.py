"""Team store: History and Compare reruns on PostgreSQL against SQLite, and 8 writer processes.

    python bench/bench_store.py [--sizes 10000,100000] [--reruns 5] [--writers 8] [--writes 150]
                                [--rounds 3]

Part 1 seeds a fresh store on each backend with the seeding of bench_history_compare.py (bulk
inserts) and times the AppTest reruns of its cases there: ms per rerun on SQLite and on
PostgreSQL, and the PG/SQLite ratio. Goals: PG <= 1.5x SQLite at 100,000 runs; both under
300 ms at 10,000. Part 2 starts 8 writer processes at once against one fresh store per backend,
each saving results cell by cell as the app and the CLI do (one transaction per answer, its run
inserted the first time), and prints answers per second on each backend, the PG/SQLite ratio
(goal >= 3) and whether every answer each writer saved is stored exactly once. It does so
--rounds times, SQLite and PostgreSQL alternately first, each round on fresh stores: on a shared
box the load moves within seconds, so one pair says little; the medians are printed last. The
writers import the code on $PYTHONPATH when it is set (to time another checkout), else this one.

PostgreSQL is the throwaway server of the tests (tests/pg_support.py: fsync and
synchronous_commit off, as SQLite's WAL with synchronous=NORMAL does not sync at commit
either). After a bulk load PostgreSQL's autovacuum would vacuum and analyze the tables; the
script does it at once (VACUUM ANALYZE) rather than wait for it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_history_compare import bulk_mode, bulk_seed, run_cases  # noqa: E402

from tests.pg_support import PostgresServer, find_bin_dir, running_server  # noqa: E402


@contextmanager
def store_at(url: str, workdir: Path) -> Iterator[object]:
    """The store the pages open: a playground.toml naming `url`, in its own working directory."""
    from playground.config import load_settings
    from playground.store import open_store

    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "playground.toml"
    config.write_text(f'[storage]\ndatabase_url = "{url}"\n', encoding="utf-8")
    os.environ["PLAYGROUND_CONFIG"] = str(config)
    os.environ["PLAYGROUND_HOME"] = str(workdir / "home")
    os.chdir(workdir)
    store = open_store(load_settings())
    try:
        yield store
    finally:
        store.close()  # type: ignore[attr-defined]


def settle(store: object) -> None:
    """What autovacuum would do after a bulk load on PostgreSQL (visibility map, statistics)."""
    engine = store.db.engine  # type: ignore[attr-defined]
    if store.backend != "postgresql":  # type: ignore[attr-defined]
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def page_figures(url: str, workdir: Path, runs: int, reruns: int) -> dict[str, float]:
    """Seed `runs` runs into the store at `url` and time every History/Compare case."""
    with store_at(url, workdir) as store:
        began = time.perf_counter()
        # the bulk path of bench_history_compare (COPY on PostgreSQL, triggers and indexes
        # rebuilt once): row by row, m008's trigram indexes and statement triggers made 100k
        # runs on PostgreSQL take longer than 15 minutes
        with bulk_mode(store):
            bulk_seed(store, runs, random.Random(7))
        settle(store)
        backend = store.backend  # type: ignore[attr-defined]
        print(f"  {backend}: seeded {runs} runs in {time.perf_counter() - began:.0f} s", flush=True)
        return dict(run_cases(store, reruns))


WRITER = """
import sys, time
from pathlib import Path
from playground.store import Store
from tests.history_fixtures import make_run

url, name, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
store = Store(url, migrate_now=False)
store.runs.count_runs()  # connected and warm before the clock starts
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
began = time.time()
saved = []
for i in range(count // 2):
    run = make_run(models=("local/a", "openai/b"), prompt=f"{name} question {i % 7}")
    for position, result in enumerate(run.results):  # one transaction per cell, as the app
        store.runs.save_result(run, result, position)
        saved.append(result.id)
print(began, time.time(), flush=True)
print(" ".join(saved), flush=True)
"""


def writer_figures(url: str, workdir: Path, writers: int, writes: int) -> tuple[float, str]:
    """Answers per second of `writers` processes saving `writes` answers each; and a check.

    The check also says how long the slowest writer took against the whole window, so that a
    window dominated by one late starter shows.
    """
    from sqlalchemy import func, select

    from playground.store import Store
    from playground.store.schema import results, runs

    Store(url).close()  # migrated before any writer starts
    workdir.mkdir(parents=True, exist_ok=True)
    go = workdir / "go"
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH") or str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), url, f"w{n}", str(writes), str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(writers)
    ]
    for proc in procs:  # every writer imported, connected and waiting
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"a writer failed to start: {proc.stderr.read()}")  # type: ignore[union-attr]
    go.touch()
    spans, saved = [], []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"a writer failed: {err.strip().splitlines()[-1]}")
        lines = out.splitlines()
        spans.append(tuple(float(x) for x in lines[0].split()))
        saved += lines[1].split()
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    store = Store(url)
    with store.db.read() as conn:
        stored = list(conn.execute(select(results.c.id)).scalars())
        n_runs = conn.execute(select(func.count()).select_from(runs)).scalar_one()
    store.close()
    lost = len(set(saved) - set(stored))
    doubled = len(stored) - len(set(stored))
    extra = len(set(stored) - set(saved))
    longest = max(end - start for start, end in spans)
    check = (
        f"{len(stored)} answers in {n_runs} runs stored for {len(saved)} saved: "
        f"{lost} lost, {doubled} doubled, {extra} unexpected; window {wall:.2f} s, "
        f"slowest writer {longest:.2f} s"
    )
    if lost or doubled or extra or n_runs != len(saved) // 2:
        check = "FAILED: " + check
    return len(saved) / wall, check


def writer_rounds(
    server: PostgresServer, tmp: Path, writers: int, writes: int, rounds: int
) -> None:
    """Part 2 `rounds` times on fresh stores, alternating which backend goes first."""
    code = os.environ.get("PYTHONPATH") or str(ROOT)
    print(f"\n{writers} writer processes x {writes} answers, one per transaction ({code})")
    rates: dict[str, list[float]] = {"SQLite": [], "PostgreSQL": []}
    for n in range(rounds):
        urls = {
            "SQLite": f"sqlite:///{tmp / f'writers-{n}' / 'playground.db'}",
            "PostgreSQL": server.fresh_database(),
        }
        order = list(urls) if n % 2 == 0 else list(reversed(urls))
        for backend in order:
            rate, check = writer_figures(urls[backend], tmp / f"w-{backend}-{n}", writers, writes)
            rates[backend].append(rate)
            print(f"round {n + 1} {backend:<10} {rate:>6.0f} answers/s  {check}", flush=True)
        ratio = rates["PostgreSQL"][-1] / rates["SQLite"][-1]
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"round {n + 1} PG/SQLite  {ratio:>6.2f}  (load average {load})", flush=True)
    lite, pg = statistics.median(rates["SQLite"]), statistics.median(rates["PostgreSQL"])
    ratios = [p / q for p, q in zip(rates["PostgreSQL"], rates["SQLite"], strict=True)]
    print(f"median SQLite {lite:.0f}, PostgreSQL {pg:.0f} answers/s: PG/SQLite {pg / lite:.2f}")
    print(f"PG/SQLite per round: {', '.join(f'{r:.2f}' for r in ratios)}")


def main() -> None:
    """Start PostgreSQL, time both parts on both backends, print figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="run counts, comma-separated")
    parser.add_argument("--reruns", type=int, default=5)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--writes", type=int, default=150, help="answers saved per writer")
    parser.add_argument("--rounds", type=int, default=3, help="writer rounds per backend")
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--skip-writers", action="store_true")
    args = parser.parse_args()

    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("No PostgreSQL binaries (initdb, pg_ctl) found; apt-get install postgresql.")
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    server: PostgresServer
    with running_server(bin_dir) as server:
        if not args.skip_pages:
            for size in (int(s) for s in args.sizes.split(",")):
                print(f"\n{size} runs: seeding and timing {args.reruns} reruns per case")
                sqlite = page_figures(
                    f"sqlite:///{tmp / f'sqlite-{size}' / 'playground.db'}",
                    tmp / f"sqlite-{size}",
                    size,
                    args.reruns,
                )
                pg = page_figures(server.fresh_database(), tmp / f"pg-{size}", size, args.reruns)
                print(f"\n{'case':<40} {'SQLite ms':>10} {'PG ms':>8} {'PG/SQLite':>10}")
                for name, lite_ms in sqlite.items():
                    ratio = pg[name] / lite_ms
                    print(f"{name:<40} {lite_ms:>10.0f} {pg[name]:>8.0f} {ratio:>10.2f}")
                print(f"worst: SQLite {max(sqlite.values()):.0f} ms, PG {max(pg.values()):.0f} ms")
                print(f"load average now: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        if not args.skip_writers:
            writer_rounds(server, tmp, args.writers, args.writes, args.rounds)


if __name__ == "__main__":
    main()
