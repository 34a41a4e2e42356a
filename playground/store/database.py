"""The engine of the run store and the one place where storage exceptions become StoreError.

Every part of the store reads through `Database.read()` and writes through `Database.write()`;
an SQLAlchemy or driver exception raised inside either leaves as one StoreError sentence that
names the database (password masked), so no page or command ever catches an SQLAlchemy error.
"""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, Table, create_engine, event, make_url
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InvalidatePoolError,
    NoSuchModuleError,
    SQLAlchemyError,
)
from sqlalchemy.pool import ConnectionPoolEntry

from playground.errors import PlaygroundError, StoreError

# A team store serves a few app processes and servers, each with a handful of threads: a small
# pool per process keeps the server's connection count sane (max_connections is 100 by default).
POOL_SIZE = 5
MAX_OVERFLOW = 10
POOL_TIMEOUT_S = 10
CONNECT_TIMEOUT_S = 5
# A file has no connection limit, and a connection past the pool is closed when returned: with
# a batch's 16 worker threads reading at once, a pool of 5 reopened a connection (and reran its
# PRAGMAs) for most cache lookups.
SQLITE_POOL_SIZE = 32
# A pooled PostgreSQL connection idle longer than this is pinged (a round trip) before use: a
# firewall may have dropped it without a word. One used more recently is only checked locally.
PING_AFTER_IDLE_S = 30.0


def mask_url(url: str | URL) -> str:
    """The URL as it may be shown: any password replaced by ***."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<a database URL that does not parse>"
    return parsed.render_as_string(hide_password=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # isolation_level None: pysqlite must not open (or skip opening) transactions on its own;
    # _sqlite_begin below emits BEGIN, so DDL in a migration is transactional like any write.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # A write takes the write lock up front (IMMEDIATE): a deferred transaction that read first
    # could not upgrade once another writer committed, and busy_timeout would not help it.
    immediate = conn.get_execution_options().get("playground_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _pending_input(dbapi_connection: Any) -> bool:
    """Whether the server sent something to this idle connection (or its socket is gone)."""
    if not hasattr(select, "poll"):  # Windows: no poll() on sockets, so always ping
        return True
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # a connection psycopg already knows to be closed
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))  # POLLHUP and POLLERR are reported whether asked or not


class Database:
    """One SQLAlchemy engine (SQLite or PostgreSQL) shared by every part of the store."""

    def __init__(self, url: str, password: str | None = None) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StoreError(
                "The database URL does not parse; use sqlite:///PATH or "
                "postgresql://USER@HOST:PORT/DB."
            ) from None
        if password is not None:
            parsed = parsed.set(password=password)
        self.display_url = mask_url(parsed)  # as the user wrote it, with the password masked
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed
        self.backend = parsed.get_backend_name()
        self._password = parsed.password
        self._insert_ignoring: dict[str, Any] = {}
        self._driver_sql: dict[Any, str] = {}
        try:
            if self.backend == "sqlite":
                path = parsed.database or ""
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                self.engine: Engine = create_engine(
                    parsed,
                    pool_size=SQLITE_POOL_SIZE,
                    connect_args={"check_same_thread": False, "timeout": 10},
                )
                event.listen(self.engine, "connect", _sqlite_connect)
                event.listen(self.engine, "begin", _sqlite_begin)
            elif self.backend == "postgresql":
                self.engine = create_engine(
                    parsed,
                    pool_size=POOL_SIZE,
                    max_overflow=MAX_OVERFLOW,
                    pool_timeout=POOL_TIMEOUT_S,
                    connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
                )
                # a restarted server costs one reconnect, not an error
                event.listen(self.engine, "checkout", self._pg_checkout)
            else:
                raise StoreError(
                    f"The run store supports SQLite and PostgreSQL, not {self.backend} "
                    f"({self.display_url}); fix [storage] database_url."
                )
        except NoSuchModuleError:
            raise StoreError(
                f"No driver for {self.display_url}; install it with "
                "`pip install prompt-playground[postgres]`."
            ) from None
        except ModuleNotFoundError as exc:
            raise StoreError(
                f"The PostgreSQL driver is missing ({exc.name}); install it with "
                "`pip install prompt-playground[postgres]`."
            ) from None

    def _pg_checkout(self, dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        # What pool_pre_ping did, without its round trip per checkout (with 8 writers on 2
        # cores, about a fifth of a save's CPU). A server that restarted or ended the session
        # has sent its FATAL notice and closed the socket: an idle connection with input
        # waiting is suspect, so only then (or after a long idle) ping it. A failed ping drops
        # every pooled connection and the pool connects afresh, as after a failed pre-ping.
        now = time.monotonic()
        last_used = record.info.get("playground_used", now)
        record.info["playground_used"] = now
        if now - last_used < PING_AFTER_IDLE_S and not _pending_input(dbapi_connection):
            return
        try:
            self.engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # whatever the ping hit, this connection is not usable
            raise InvalidatePoolError(str(exc)) from exc

    @property
    def where(self) -> str:
        """The database in words: the file for SQLite, host:port/db for PostgreSQL."""
        if self.backend == "sqlite":
            return f"the SQLite file {self.url.database}"
        port = self.url.port or 5432
        return f"the PostgreSQL server at {self.url.host or 'localhost'}:{port}"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading; storage errors leave as StoreError."""
        with self.translated(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in one transaction (committed at the end, rolled back on error)."""
        with (
            self.translated(),
            self.engine.connect().execution_options(playground_write=True) as conn,
            conn.begin(),
        ):
            yield conn

    def execute_alone(self, statement: Any, params: dict[str, Any]) -> None:
        """Run one statement in autocommit: atomic on its own, with no BEGIN or COMMIT trip.

        For a statement run once per saved cell: it is compiled once, and its parameters go to
        the driver as given (plain values the driver adapts; no SQLAlchemy bind processing).
        """
        sql = self._driver_sql.get(statement)
        if sql is None:  # SQLAlchemy's own cache still rebuilds the parameters on every call
            sql = self._driver_sql[statement] = str(statement.compile(dialect=self.engine.dialect))
        with (
            self.translated(),
            self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
        ):
            conn.exec_driver_sql(sql, params)

    @contextmanager
    def translated(self) -> Iterator[None]:
        """Turn any SQLAlchemy or driver exception raised inside into one StoreError."""
        try:
            yield
        except PlaygroundError:
            raise
        except SQLAlchemyError as exc:
            raise self.store_error(exc) from None

    def store_error(self, exc: BaseException) -> StoreError:
        """One sentence for a storage exception: what failed, where, what to do."""
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        first = detail[0] if detail else type(exc).__name__
        if self._password:
            first = first.replace(self._password, "***")
        lowered = first.lower()
        if self.backend == "sqlite":
            if "not a database" in lowered or "malformed" in lowered:
                return StoreError(
                    f"{self.url.database} is not a SQLite database (or is damaged); move it "
                    "away or point [storage] home at another directory."
                )
            if "locked" in lowered or "busy" in lowered:
                return StoreError(
                    f"{self.where} stayed locked by another process for 10 s; try again."
                )
            if "unable to open" in lowered or "readonly" in lowered:
                return StoreError(
                    f"Cannot write {self.where} ({first}); check the directory's permissions."
                )
        else:
            if "password authentication failed" in lowered or "no password supplied" in lowered:
                return StoreError(
                    f"{self.where} refused user '{self.url.username}' (wrong or missing "
                    "password); set the variable named by [storage] password_env."
                )
            if "does not exist" in lowered and "database" in lowered:
                return StoreError(
                    f"{self.where} has no database '{self.url.database}'; create it "
                    "(createdb) or fix [storage] database_url."
                )
            if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                return StoreError(
                    f"Lost the connection to {self.where} ({first}); it reconnects on the next try."
                )
            if (
                "connection refused" in lowered
                or "could not connect" in lowered
                or "connection failed" in lowered
                or "timeout" in lowered
                or "server closed the connection" in lowered
                or "terminating connection" in lowered
                or "name or service not known" in lowered
            ):
                return StoreError(
                    f"Cannot reach {self.where} ({first}); check that it runs and that "
                    "[storage] database_url names it."
                )
        return StoreError(f"The run store at {self.display_url} failed: {first}")

    def insert_ignoring_duplicates(self, conn: Connection, table: Table, rows: Any) -> int:
        """Insert rows, skipping any whose primary key is already stored; return rows added."""
        statement = self._insert_ignoring.get(table.name)
        if statement is None:  # built once per table: compiling it costs more than running it
            insert_for = sqlite_insert if self.backend == "sqlite" else postgresql_insert
            statement = self._insert_ignoring[table.name] = insert_for(
                table
            ).on_conflict_do_nothing()
        result = conn.execute(statement, rows)
        return max(int(result.rowcount or 0), 0)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()
