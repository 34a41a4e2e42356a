"""`playground db`: migrate the run store, show its state, copy it into a team's PostgreSQL."""

from __future__ import annotations

import sys
from typing import Any

import click

from playground.cli.common import PlaygroundGroup, echo_json, settings, stderr
from playground.store import Store, store_password


@click.group(cls=PlaygroundGroup)
def db() -> None:
    """Migrate, inspect and copy the run store (SQLite or PostgreSQL)."""


def _configured(migrate_now: bool) -> Store:
    config = settings()
    return Store(config.database_url, store_password(config), migrate_now=migrate_now)


@db.command("migrate")
def migrate_store() -> None:
    """Apply every pending migration to the configured store."""
    store = _configured(migrate_now=False)
    try:
        done = store.migrate()
        revision = store.revision()
    finally:
        store.close()
    if done:
        click.echo(f"Applied {', '.join(done)}; {store.url} is at revision {revision.name}.")
    else:
        click.echo(f"{store.url} is at revision {revision.name}; nothing to apply.")


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def status(as_json: bool) -> None:
    """Backend, revision and row counts of the configured store (migrates nothing)."""
    store = _configured(migrate_now=False)
    try:
        revision = store.revision()
        counts = store.counts() if not revision.pending else {}
    finally:
        store.close()
    document: dict[str, Any] = {
        "backend": store.backend,
        "url": store.url,
        "revision": revision.name,
        "pending": revision.pending,
        "counts": counts,
    }
    if as_json:
        echo_json(document)
        return
    click.echo(f"backend   {store.backend}")
    click.echo(f"url       {store.url}")
    click.echo(f"revision  {revision.name}")
    if revision.pending:
        click.echo(f"pending   {', '.join(revision.pending)} (run `playground db migrate`)")
        return
    for name, count in counts.items():
        click.echo(f"{name:<14}{count}")


@db.command("copy")
@click.option("--to", "to_url", required=True, metavar="URL",
              help="The target store, e.g. postgresql://USER@HOST:5432/DB.")  # fmt: skip
@click.option("--password-env", default=None, metavar="VAR",
              help="Variable holding the target's password (else PGPASSWORD).")  # fmt: skip
def copy(to_url: str, password_env: str | None) -> None:
    """Copy the configured store's runs, ratings, votes and flow index into another store.

    Safe to rerun: rows already in the target are skipped, so an interrupted copy completes.
    """
    import os

    from playground.errors import ConfigError
    from playground.store.copy import copy_store, source_rows

    password = None
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise ConfigError(f"--password-env names {password_env}, which is not set.")
    source = _configured(migrate_now=True)
    target = Store(to_url, password)
    try:
        total = source_rows(source)
        if sys.stderr.isatty():
            with click.progressbar(length=total, label="Copying", file=sys.stderr) as bar:
                report = copy_store(source, target, progress=bar.update)
        else:
            report = copy_store(source, target)
    finally:
        source.close()
        target.close()
    stderr(f"{report.summary()} ({source.url} -> {target.url})")
