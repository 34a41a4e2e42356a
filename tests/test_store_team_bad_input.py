"""Team store bad input at the command line, pool limits, and concurrent cells of one run.

The library-level sentences are tested in test_store_postgres.py and test_store_migrations.py;
these check what a person running `playground db ...` sees, and what many threads do.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from click.testing import CliRunner
from sqlalchemy import func, select, text

from playground.cli import main
from playground.records import Result
from playground.store import Store
from playground.store.database import MAX_OVERFLOW, POOL_SIZE, Database
from playground.store.migrations import MIGRATIONS, migrations_table
from playground.store.schema import results, runs
from tests.history_fixtures import make_result, make_run
from tests.pg_support import PASSWORD, PostgresServer


def test_db_status_with_a_wrong_password_names_host_and_port_and_masks_it(
    pg_server: PostgresServer, write_config, monkeypatch
):
    write_config(
        "[storage]\n"
        f'database_url = "{pg_server.url("postgres", password=None)}"\n'
        'password_env = "TEAM_DB_PASSWORD"\n'
    )
    monkeypatch.setenv("TEAM_DB_PASSWORD", "wrong-pw-4711")

    result = CliRunner().invoke(main, ["db", "status"])

    assert result.exit_code == 1
    assert result.output == (
        f"Error: the PostgreSQL server at 127.0.0.1:{pg_server.port} refused user 'postgres' "
        "(wrong or missing password); set the variable named by [storage] password_env.\n"
    )
    assert "wrong-pw-4711" not in result.output


def test_db_migrate_refuses_a_database_at_a_newer_revision(backend_url, write_config):
    db = Database(backend_url)
    with db.write() as conn:
        conn.execute(
            migrations_table.insert().values(name="m999_later", applied_at=datetime.now(UTC))
        )
    db.close()
    write_config(f'[storage]\ndatabase_url = "{backend_url}"\n')

    for command in (["db", "migrate"], ["db", "status"]):
        result = CliRunner().invoke(main, command)

        assert result.exit_code == 1, command
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert "is at a newer revision (m999_later)" in lines[0]
        assert f"(up to {MIGRATIONS[-1][0]}); upgrade prompt-playground" in lines[0]
        assert PASSWORD not in result.output
    store = Store(backend_url, migrate_now=False)  # nothing was applied or removed
    with store.db.read() as conn:
        names = list(conn.execute(select(migrations_table.c.name)).scalars())
    store.close()
    assert names[-1] == "m999_later"
    assert len(names) == len(MIGRATIONS) + 1


def test_cells_of_one_run_from_parallel_threads_land_once_on_each_backend(backend_store):
    run = make_run(models=())
    cells: list[Result] = [make_result(model_id=f"local/model-{i}") for i in range(12)]
    barrier = threading.Barrier(len(cells))
    errors: list[BaseException] = []

    def save(position: int, result: Result) -> None:
        barrier.wait()  # every cell of the new run reaches the store at the same moment
        try:
            backend_store.runs.save_result(run, result, position)
        except BaseException as exc:  # collected: a thread's exception would be lost
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i, c)) for i, c in enumerate(cells)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    stored = backend_store.runs.get_run(run.id)
    assert [r.id for r in stored.results] == [c.id for c in cells]
    assert [r.model_id for r in stored.results] == [c.model_id for c in cells]
    with backend_store.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(runs)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(results)).scalar_one() == 12


def test_forty_threads_at_once_stay_within_the_pool_limit(pg_server: PostgresServer):
    url = pg_server.fresh_database()
    store = Store(url)
    database = url.rsplit("/", 1)[1]
    barrier = threading.Barrier(40)
    errors: list[BaseException] = []
    seen: list[int] = []

    def read() -> None:
        barrier.wait()
        try:
            with store.db.read() as conn:
                # how many connections this database has while every thread holds one
                seen.append(
                    conn.execute(
                        text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db"),
                        {"db": database},
                    ).scalar_one()
                )
                conn.execute(text("SELECT pg_sleep(0.05)"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()

    assert errors == []  # the other threads waited for a connection instead of failing
    assert len(seen) == 40
    assert max(seen) <= POOL_SIZE + MAX_OVERFLOW
