"""`playground db migrate/status/copy`: output, exit codes, exact error lines, idempotent copy."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from playground.cli import main
from playground.config import load_settings
from playground.errors import StoreError
from playground.store import Store, open_store
from playground.store.copy import copy_store
from playground.store.flows import FlowVersionRow
from playground.store.migrations import MIGRATIONS
from tests.history_fixtures import T0, make_run
from tests.pg_support import PostgresServer, free_port

LATEST = MIGRATIONS[-1][0]


def invoke(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty' / 'playground.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.fresh_database(migrated=False)


def test_migrate_applies_every_migration_once_then_nothing(empty_url, write_config):
    write_config(f'[storage]\ndatabase_url = "{empty_url}"\n')
    shown = Store(empty_url, migrate_now=False).url

    before = invoke("db", "status")
    first = invoke("db", "migrate")
    second = invoke("db", "migrate")

    assert before.exit_code == 0
    assert "revision  empty" in before.output
    assert "(run `playground db migrate`)" in before.output
    assert first.exit_code == 0
    assert first.output == (
        f"Applied {', '.join(n for n, _ in MIGRATIONS)}; {shown} is at revision {LATEST}.\n"
    )
    assert second.output == f"{shown} is at revision {LATEST}; nothing to apply.\n"
    assert "pg-test-secret" not in first.output + second.output + before.output


def test_status_json_gives_backend_revision_and_counts(backend_url, write_config):
    write_config(f'[storage]\ndatabase_url = "{backend_url}"\n')
    store = Store(backend_url)
    run = make_run()
    store.runs.save_run(run)
    store.ratings.add_rating(run.results[0].id, 4, session_id="s")
    ids = [r.id for r in run.results]
    store.ratings.add_preference(run.id, ids, "best", best=ids[0], session_id="s")
    store.close()

    result = invoke("db", "status", "--json")

    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["backend"] == ("sqlite" if backend_url.startswith("sqlite") else "postgresql")
    assert document["revision"] == LATEST
    assert document["pending"] == []
    assert document["counts"] == {
        "runs": 1,
        "results": 2,
        "ratings": 1,
        "preferences": 1,
        "flow_versions": 0,
    }
    assert "pg-test-secret" not in result.output


def test_status_of_an_unreachable_server_is_one_error_line(write_config):
    port = free_port()
    write_config(f'[storage]\ndatabase_url = "postgresql://ann:hunter2@127.0.0.1:{port}/team"\n')

    result = CliRunner().invoke(main, ["db", "status"])

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: Cannot reach the PostgreSQL server at 127.0.0.1:{port} (")
    assert "hunter2" not in result.output


def test_status_of_a_file_that_is_not_a_database(home: Path):
    home.mkdir(parents=True)
    (home / "playground.db").write_text("not a database " * 100)

    result = CliRunner().invoke(main, ["db", "status"])

    assert result.exit_code == 1
    assert result.output == (
        f"Error: {home / 'playground.db'} is not a SQLite database (or is damaged); move it "
        "away or point [storage] home at another directory.\n"
    )


def _seed_home() -> Store:
    """A SQLite home with runs, ratings, votes, a flow version and a label."""
    store = open_store(load_settings())
    for i in range(7):
        run = make_run(models=("local/a", "openai/b"), created_at=T0 + timedelta(minutes=i))
        store.runs.save_run(run)
        store.ratings.add_rating(run.results[0].id, 1 + i % 5, "ok", session_id="s")
        store.ratings.add_rating(run.results[0].id, 5, session_id="t")
        ids = [r.id for r in run.results]
        store.ratings.add_preference(run.id, ids, "best", best=ids[1], session_id="s")
    store.flows.index_flow_version(
        FlowVersionRow("gear-support", 1, None, "gear-support/v1.yaml", "ab" * 32, "", None, T0)
    )
    store.flows.move_flow_label("gear-support", "prod", 1)
    return store


def _contents(store: Store) -> dict[str, object]:
    ratings = [
        {k: v for k, v in r.items() if k != "rating_id"} for r in store.exports.export_ratings()
    ]
    return {
        "answers": store.exports.export_results(),
        "ratings": ratings,
        "votes": store.exports.export_preferences(),
        "flows": [
            (r.name, r.version, r.sha256) for r in store.flows.flow_version_rows("gear-support")
        ],
        "labels": store.flows.flow_labels("gear-support"),
        "moves": len(store.flows.flow_label_moves("gear-support")),
    }


def test_copy_moves_everything_and_a_second_copy_adds_nothing(home, backend_url):
    source = _seed_home()

    first = CliRunner().invoke(main, ["db", "copy", "--to", backend_url], catch_exceptions=False)
    second = CliRunner().invoke(main, ["db", "copy", "--to", backend_url], catch_exceptions=False)

    assert first.exit_code == 0, first.output
    assert "Copied 0 batches, 7 runs, 14 results, 14 ratings, 7 preferences, 1 flow_versions" in (
        first.output
    )
    assert "pg-test-secret" not in first.output
    assert second.exit_code == 0
    assert "Copied 0 batches, 0 runs, 0 results, 0 ratings, 0 preferences, 0 flow_versions" in (
        second.output
    )
    target = Store(backend_url)
    assert target.counts() == source.counts()
    assert _contents(target) == _contents(source)
    target.close()


def test_an_interrupted_copy_completes_on_the_rerun(home, backend_url):
    source = _seed_home()
    target = Store(backend_url)
    batches_done = 0

    def die_after_three(_rows: int) -> None:
        nonlocal batches_done
        batches_done += 1
        if batches_done == 3:
            raise KeyboardInterrupt  # the user pressed Ctrl-C mid-copy

    with pytest.raises(KeyboardInterrupt):
        copy_store(source, target, batch_rows=3, progress=die_after_three)
    partial = target.counts()
    report = copy_store(source, target, batch_rows=3)

    assert 0 < partial["runs"] + partial["results"] < 21
    assert report.total_copied > 0
    assert target.counts() == source.counts()
    assert _contents(target) == _contents(source)
    target.close()


def test_copy_into_itself_is_refused(home):
    _seed_home()
    url = load_settings().database_url

    result = CliRunner().invoke(main, ["db", "copy", "--to", url])

    assert result.exit_code == 1
    assert result.output == f"Error: {url} is the store being copied; give another --to.\n"


def test_copy_to_a_url_that_does_not_parse(home):
    result = CliRunner().invoke(main, ["db", "copy", "--to", "not a url"])

    assert result.exit_code == 1
    assert result.output == (
        "Error: The database URL does not parse; use sqlite:///PATH or "
        "postgresql://USER@HOST:PORT/DB.\n"
    )


def test_a_store_error_names_no_sqlalchemy_class(home):
    with pytest.raises(StoreError) as info:
        Store("mysql://u:pw@127.0.0.1/x")
    assert "mysql" in str(info.value)
    assert "pw@" not in str(info.value)
