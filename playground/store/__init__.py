"""The run store: the one place that talks to SQL (SQLite in WAL mode by default).

Feature modules add their queries as mixins (runs, ratings, flow index); every query is
SQLAlchemy Core so that `[storage] database_url` can point at PostgreSQL later.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

from playground.config import Settings
from playground.store.flows import FlowIndexMixin
from playground.store.ratings import RatingsMixin
from playground.store.runs import RunsMixin
from playground.store.schema import migrate
from playground.store.traces import TracesPart

__all__ = ["Store", "open_store"]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Store(RunsMixin, RatingsMixin, FlowIndexMixin):
    """Runs, results, ratings and the flow index behind one SQLAlchemy engine."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url, connect_args={"check_same_thread": False, "timeout": 10}
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        migrate(self.engine.begin)
        self.traces = TracesPart(self.engine)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def open_store(settings: Settings) -> Store:
    """The store for these settings, opened and migrated once per process."""
    url = settings.database_url
    with _stores_lock:
        if url not in _stores:
            _stores[url] = Store(url)
        return _stores[url]
