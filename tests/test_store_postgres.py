"""PostgreSQL as a team store: one sentence for a bad server, masked passwords, reconnects,
and several processes writing at once without losing or doubling a row."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from sqlalchemy import insert

from playground.config import load_settings
from playground.errors import ConfigError, StoreError
from playground.records import utc_now
from playground.store import Store, mask_url, open_store, tallies
from playground.store.leaderboard import Leaderboard
from playground.store.schema import ratings
from tests.history_fixtures import make_run
from tests.pg_support import PASSWORD, PostgresServer, free_port

ROOT = Path(__file__).resolve().parent.parent


def test_mask_url_hides_the_password_and_keeps_the_rest():
    assert mask_url("postgresql://ann:s3cret@db.example:5433/team") == (
        "postgresql://ann:***@db.example:5433/team"
    )
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_an_unreachable_server_is_one_sentence_naming_host_and_port():
    port = free_port()
    with pytest.raises(StoreError) as info:
        Store(f"postgresql://ann:s3cret-pw@127.0.0.1:{port}/team")
    message = str(info.value)
    assert message.startswith(f"Cannot reach the PostgreSQL server at 127.0.0.1:{port} (")
    assert message.endswith("check that it runs and that [storage] database_url names it.")
    assert "s3cret-pw" not in message
    assert "\n" not in message


def test_a_wrong_password_is_one_sentence_without_the_password(pg_server: PostgresServer):
    url = pg_server.url("postgres", password="not-the-pw-123")
    with pytest.raises(StoreError) as info:
        Store(url)
    assert str(info.value) == (
        f"the PostgreSQL server at 127.0.0.1:{pg_server.port} refused user 'postgres' (wrong "
        "or missing password); set the variable named by [storage] password_env."
    )


def test_an_unknown_database_is_named(pg_server: PostgresServer):
    with pytest.raises(StoreError) as info:
        Store(pg_server.url("no_such_db"))
    assert str(info.value) == (
        f"the PostgreSQL server at 127.0.0.1:{pg_server.port} has no database 'no_such_db'; "
        "create it (createdb) or fix [storage] database_url."
    )


def test_the_password_comes_from_password_env(
    pg_server: PostgresServer, write_config, monkeypatch: pytest.MonkeyPatch
):
    database = pg_server.fresh_database().rsplit("/", 1)[1]
    write_config(
        "[storage]\n"
        f'database_url = "{pg_server.url(database, password=None)}"\n'
        'password_env = "TEAM_DB_PASSWORD"\n'
    )
    monkeypatch.delenv("TEAM_DB_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="password_env names TEAM_DB_PASSWORD, which is not set"):
        open_store(load_settings())

    monkeypatch.setenv("TEAM_DB_PASSWORD", PASSWORD)
    store = open_store(load_settings())
    store.runs.save_run(make_run())
    assert store.runs.count_runs() == 1
    assert store.url == f"postgresql://postgres:***@127.0.0.1:{pg_server.port}/{database}"
    store.close()


def test_a_server_restart_mid_session_reconnects(pg_server: PostgresServer):
    store = Store(pg_server.fresh_database())
    store.runs.save_run(make_run())
    pg_server.restart()  # every pooled connection is now dead
    store.runs.save_run(make_run())
    assert store.runs.count_runs() == 2
    store.close()


def test_sessions_the_server_ended_are_replaced_without_an_error(pg_server: PostgresServer):
    # An administrator's pg_terminate_backend (or an idle-session timeout) ends the pooled
    # connections of a running app; its next saves and reads must not show an error.
    url = pg_server.fresh_database()
    database = url.rsplit("/", 1)[1]
    store = Store(url)
    store.runs.save_run(make_run())
    held = [store.db.engine.connect() for _ in range(3)]  # several connections in the pool
    for conn in held:
        conn.close()
    pg_server.end_sessions(database)
    run = make_run(models=("local/a", "openai/b"))
    for position, result in enumerate(run.results):
        store.runs.save_result(run, result, position)
    assert store.runs.count_runs() == 2
    assert [r.id for r in store.runs.get_run(run.id).results] == [r.id for r in run.results]
    store.close()


def test_a_server_that_went_away_is_one_sentence_then_recovers(pg_server: PostgresServer):
    store = Store(pg_server.fresh_database())
    store.runs.save_run(make_run())
    pg_server.stop()
    try:
        with pytest.raises(StoreError) as info:
            store.runs.count_runs()
        assert f"the PostgreSQL server at 127.0.0.1:{pg_server.port}" in str(info.value)
        assert PASSWORD not in str(info.value)
    finally:
        pg_server.launch()
    assert store.runs.count_runs() == 1
    store.close()


def test_the_leaderboard_sees_a_rating_committed_after_a_newer_one(pg_server: PostgresServer):
    # Two app processes rating at once: the first takes id N, the second N+1 and commits
    # after it. The tallies are kept in each rating's own transaction, so the second waits for
    # the first's row locks and neither is lost, whatever order the commits land in.
    store = Store(pg_server.fresh_database())
    run = make_run(models=("local/a", "openai/b"))
    store.runs.save_run(run)
    a, b = run.results
    store.leaderboard.config_aggregates()  # warm the caches

    slow = store.db.engine.connect()
    slow_tx = slow.begin()
    tallies.rate(slow, a.id, None, 5)  # what Ratings.add_rating does, held open
    slow.execute(insert(ratings).values(result_id=a.id, stars=5, created_at=utc_now()))
    fast = threading.Thread(target=store.ratings.add_rating, args=(b.id, 1, None, "fast"))
    fast.start()
    time.sleep(0.3)
    before = {agg.config_hash: agg.stars_n for agg in store.leaderboard.config_aggregates()}
    slow_tx.commit()
    slow.close()
    fast.join(timeout=30)

    cached = {agg.config_hash: agg.stars_n for agg in store.leaderboard.config_aggregates()}
    fresh = Leaderboard(store.db, store.runs, store.ratings, store.history)
    assert before.get(a.config_hash, 0) == 0  # nothing uncommitted shows
    assert cached == {agg.config_hash: agg.stars_n for agg in fresh.config_aggregates()}
    assert (cached[a.config_hash], cached[b.config_hash]) == (1, 1)
    store.close()


WRITER = """
import sys
from playground.store import Store
from tests.history_fixtures import make_run

url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = Store(url)
for i in range(count):
    run = make_run(models=("local/a", "openai/b"), prompt=f"{name} question {i % 3}")
    for position, result in enumerate(run.results):
        store.runs.save_result(run, result, position)
    store.ratings.add_rating(run.results[0].id, 1 + i % 5, session_id=name)
    ids = [r.id for r in run.results]
    store.ratings.add_preference(run.id, ids, "best", best=ids[1], session_id=name)
    # the writer's own leaderboard stays warm while the other process writes
    store.leaderboard.config_aggregates()
    store.leaderboard.preference_pairs()
print(len(store.leaderboard.config_aggregates()))
"""


def test_two_writer_processes_lose_nothing_and_every_leaderboard_sees_both(
    pg_server: PostgresServer,
):
    url = pg_server.fresh_database()
    watcher = Store(url)
    watcher.leaderboard.config_aggregates()  # a third process's warm cache
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), url, name, "25"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alice", "bob")
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=240)
        assert writer.returncode == 0, err

    assert watcher.counts() == {
        "runs": 50,
        "results": 100,
        "ratings": 50,
        "preferences": 50,
        "flow_versions": 0,
    }
    fresh = Leaderboard(watcher.db, watcher.runs, watcher.ratings, watcher.history)
    expected = [asdict(agg) for agg in fresh.config_aggregates()]
    assert [asdict(agg) for agg in watcher.leaderboard.config_aggregates()] == expected
    assert watcher.leaderboard.preference_pairs() == fresh.preference_pairs()
    assert sum(agg["n_results"] for agg in expected) == 100
    assert sum(agg["stars_n"] for agg in expected) == 50
    watcher.close()
