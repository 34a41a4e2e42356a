"""The run store: the one place that talks to SQL (SQLite in WAL mode, or PostgreSQL).

`Store` owns the engine and hands out focused parts, each a plain class over the same
`Database`: `store.runs`, `store.ratings`, `store.history`, `store.leaderboard`,
`store.exports`, `store.flows`. A new part is one attribute in `Store.__init__`. Every query is
SQLAlchemy Core; every storage exception leaves a part as one `StoreError` sentence.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from sqlalchemy import func, select

from playground.config import Settings
from playground.errors import ConfigError
from playground.store import schema
from playground.store.batches import Batches
from playground.store.database import Database, mask_url
from playground.store.exports import Exports
from playground.store.flows import Flows
from playground.store.history import DataVersion, History
from playground.store.leaderboard import Leaderboard
from playground.store.migrations import applied, check_not_newer, known_names, migrate
from playground.store.ratings import Ratings
from playground.store.runs import Runs
from playground.store.traces import TracesPart

__all__ = ["DataVersion", "Revision", "Store", "mask_url", "open_store", "store_password"]


@dataclass(frozen=True)
class Revision:
    """How far a database is migrated: the last migration applied and how many this code has."""

    applied: list[str]
    known: list[str]

    @property
    def name(self) -> str:
        """The latest applied migration, or 'empty'."""
        return self.applied[-1] if self.applied else "empty"

    @property
    def pending(self) -> list[str]:
        """Migrations this code knows that the database has not had."""
        return [name for name in self.known if name not in self.applied]


class Store:
    """Runs, results, ratings and the flow index behind one engine, handed out as parts."""

    def __init__(self, url: str, password: str | None = None, migrate_now: bool = True) -> None:
        self.db = Database(url, password)
        self.url = self.db.display_url
        self.backend = self.db.backend
        if migrate_now:
            self.migrate()
        self.runs = Runs(self.db)
        self.ratings = Ratings(self.db)
        self.history = History(self.db, self.ratings)
        self.leaderboard = Leaderboard(self.db, self.runs, self.ratings, self.history)
        self.exports = Exports(self.db, self.ratings)
        self.flows = Flows(self.db)
        self.batches = Batches(self.db)
        self.traces = TracesPart(self.db)

    def migrate(self) -> list[str]:
        """Apply pending migrations (refusing a database newer than this code); names applied."""
        return migrate(self.db)

    def revision(self) -> Revision:
        """The migrations this database has had, and those this code knows."""
        with self.db.read() as conn:
            names = applied(conn)
        check_not_newer(names, self.db.where)
        return Revision(names, known_names())

    def describe(self) -> str:
        """One line for people: backend, where (password masked) and how far it is migrated."""
        backend = "PostgreSQL" if self.backend == "postgresql" else "SQLite"
        revision = self.revision()
        state = (
            "up to date"
            if not revision.pending
            else f"{len(revision.pending)} migrations pending: run `playground db migrate`"
        )
        return f"{backend} · `{self.url}` · revision {revision.name} ({state})"

    def counts(self) -> dict[str, int]:
        """Rows stored per kind: runs, results, ratings, preferences, flow versions."""
        tables = {
            "runs": schema.runs,
            "results": schema.results,
            "ratings": schema.ratings,
            "preferences": schema.preferences,
            "flow_versions": schema.flow_versions,
        }
        with self.db.read() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in tables.items()
            }

    def close(self) -> None:
        """Release every pooled connection."""
        self.db.close()


def store_password(settings: Settings) -> str | None:
    """The database password from the variable named by [storage] password_env, if any."""
    name = settings.storage.password_env
    if not name:
        return None
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(
            f"[storage] password_env names {name}, which is not set; export it with the "
            "database password."
        )
    return value


_stores: dict[tuple[str, str | None], Store] = {}
_stores_lock = threading.Lock()


def open_store(settings: Settings) -> Store:
    """The store for these settings, opened and migrated once per process."""
    key = (settings.database_url, store_password(settings))
    with _stores_lock:
        if key not in _stores:
            _stores[key] = Store(*key)
        return _stores[key]
