"""Frozen migrations: replaying them builds exactly today's tables; bad databases get a sentence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, make_url, select, text

from playground.errors import StoreError
from playground.store import Store
from playground.store.database import Database
from playground.store.migrations import MIGRATIONS, migrations_table, pending
from playground.store.schema import metadata
from tests.pg_support import PostgresServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Two empty databases on one backend: one to migrate, one for create_all of today."""
    if request.param == "sqlite":
        return (f"sqlite:///{tmp_path / 'migrated.db'}", f"sqlite:///{tmp_path / 'today.db'}")
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.fresh_database(migrated=False), server.fresh_database(migrated=False)


def _driver_url(url: str) -> Any:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _shape(url: str) -> dict[str, Any]:
    """Tables, columns (type, nullability), keys and indexes, as the database reports them."""
    engine = create_engine(_driver_url(url))
    found: dict[str, Any] = {}
    try:
        inspector = inspect(engine)
        for table in sorted(inspector.get_table_names()):
            found[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
                ],
                "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
                "indexes": sorted(
                    (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                    for ix in inspector.get_indexes(table)
                ),
                "foreign_keys": sorted(
                    (
                        tuple(fk["constrained_columns"]),
                        fk["referred_table"],
                        tuple(fk["referred_columns"]),
                        (fk.get("options") or {}).get("ondelete"),
                    )
                    for fk in inspector.get_foreign_keys(table)
                ),
            }
    finally:
        engine.dispose()
    return found


def test_replaying_every_migration_builds_exactly_todays_tables(empty_urls):
    migrated_url, today_url = empty_urls
    store = Store(migrated_url)
    store.close()
    engine = create_engine(_driver_url(today_url))
    metadata.create_all(engine)
    engine.dispose()

    migrated, today = _shape(migrated_url), _shape(today_url)

    assert sorted(migrated) == sorted(today)
    for table in today:
        assert migrated[table] == today[table], table


def test_sqlite_triggers_and_counter_rows_are_the_same_either_way(tmp_path: Path):
    # _shape sees no triggers: schema.py spells out SQLite's (m008, m009, m012) for create_all,
    # and the counters they keep need their rows. (PostgreSQL stores are always migrated.)
    migrated_url, today_url = (f"sqlite:///{tmp_path / name}" for name in ("m.db", "t.db"))
    Store(migrated_url).close()
    engine = create_engine(today_url)
    metadata.create_all(engine)
    engine.dispose()

    def triggers_and_counters(url: str) -> tuple[list[Any], list[Any]]:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                found = conn.exec_driver_sql(
                    "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"
                ).all()
                counters = conn.exec_driver_sql("SELECT name, value FROM store_counts").all()
        finally:
            engine.dispose()
        return sorted(tuple(row) for row in found), sorted(tuple(row) for row in counters)

    migrated = triggers_and_counters(migrated_url)
    assert migrated == triggers_and_counters(today_url)
    assert ("deletions", 0) in migrated[1]
    assert {"runs_deletions", "results_deletions"} <= {name for name, _, _ in migrated[0]}


def test_a_new_database_has_nothing_pending_and_reports_its_revision(backend_store):
    revision = backend_store.revision()

    assert revision.applied == [name for name, _ in MIGRATIONS]
    assert revision.name == MIGRATIONS[-1][0]
    assert revision.pending == []
    with backend_store.db.read() as conn:
        assert pending(conn) == []


def test_a_database_from_newer_code_is_refused(backend_url):
    db = Database(backend_url)
    with db.write() as conn:
        conn.execute(
            migrations_table.insert().values(
                name="m999_from_the_future", applied_at=datetime.now(UTC)
            )
        )
    db.close()

    with pytest.raises(StoreError) as info:
        Store(backend_url)

    message = str(info.value)
    assert "newer revision (m999_from_the_future)" in message
    assert f"up to {MIGRATIONS[-1][0]}" in message
    assert "upgrade prompt-playground" in message
    assert "pg-test-secret" not in message


def test_a_sqlite_file_that_is_not_a_database_is_one_sentence(tmp_path: Path):
    path = tmp_path / "playground.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)

    with pytest.raises(StoreError) as info:
        Store(f"sqlite:///{path}")

    assert str(info.value) == (
        f"{path} is not a SQLite database (or is damaged); move it away or point "
        "[storage] home at another directory."
    )
    assert path.read_bytes().startswith(b"these are my notes")  # nothing overwritten


KILLED_MIGRATION = """
import sys, time
from sqlalchemy import text
from playground.store import migrations
from playground.store.database import Database

def m999_half_done(conn):
    conn.execute(text("CREATE TABLE half_done (id INTEGER PRIMARY KEY)"))
    conn.execute(text("INSERT INTO half_done (id) VALUES (1)"))
    print("created", flush=True)
    time.sleep(60)  # killed here

migrations.migration(m999_half_done)
migrations.migrate(Database(sys.argv[1]))
"""


def test_a_migration_killed_halfway_leaves_nothing_behind(backend_url):
    # backend_url is migrated up to today; the child adds one more migration and dies in it.
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_MIGRATION), backend_url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "created"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    time.sleep(0.2)  # PostgreSQL notices the dead client and rolls its transaction back

    store = Store(backend_url)  # opens normally: the half-done migration is not recorded
    with store.db.read() as conn:
        tables = inspect(conn).get_table_names()
        recorded = list(conn.execute(select(migrations_table.c.name)).scalars())
        assert conn.execute(text("SELECT 1")).scalar() == 1
    store.close()
    assert "half_done" not in tables
    assert "m999_half_done" not in recorded
