"""A real PostgreSQL server for the tests: initdb + pg_ctl into a temporary directory.

The server listens on a free loopback port with password logins (so a wrong password can be
tested), fsync off for speed, and is started once per test session. Each test gets its own
database, copied from a template (a file copy, a few milliseconds).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

SUPERUSER = "postgres"
PASSWORD = "pg-test-secret"
MIGRATED_TEMPLATE = "playground_template"


def find_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl: $PLAYGROUND_PG_BIN, PATH, or Debian's place."""
    candidates = [os.environ.get("PLAYGROUND_PG_BIN", "")]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One throwaway PostgreSQL cluster; `url(db)` for SQLAlchemy, `fresh_database()` per test."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        # Not under pytest's tmp_path: its parents are private to root, and the server runs
        # as the postgres user when the tests run as root.
        self.root = Path(tempfile.mkdtemp(prefix="playground-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        self._names = itertools.count(1)

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()} {log[-2000:]}")

    def start(self) -> None:
        """initdb, then start on the loopback port and wait until it accepts connections."""
        pwfile = self.root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "--pwfile", str(pwfile),
            "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        self.launch()

    def launch(self) -> None:
        """Start the initialised cluster (again) on its port and wait until it accepts logins."""
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.root} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast", wait: bool = True) -> None:
        """Stop the server (fast: disconnect clients, then shut down)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w" if wait else "-W", "stop")

    def restart(self) -> None:
        """Stop and start again on the same port (what a server restart looks like to clients)."""
        # stop + launch rather than `pg_ctl restart`, which would log to (and hold) our pipe
        self.stop()
        self.launch()

    def remove(self) -> None:
        """Stop if running and delete every file."""
        with suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate", wait=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", password: str | None = PASSWORD) -> str:
        """A postgresql:// URL for SQLAlchemy (the password inline unless None)."""
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement as the superuser outside a transaction (CREATE DATABASE ...)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, password=PASSWORD,
            dbname="postgres", autocommit=True,
        ) as conn:  # fmt: skip
            conn.execute(sql)  # type: ignore[arg-type]

    def end_sessions(self, database: str, timeout_s: float = 10.0) -> None:
        """End every session on `database` as an administrator would, and wait until they exit.

        pg_terminate_backend only signals: a backend sends its FATAL notice and exits a moment
        later, so a client that looked before then would find the session still alive.
        """
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, password=PASSWORD,
            dbname="postgres", autocommit=True,
        ) as conn:  # fmt: skip
            others = "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
            conn.execute(f"SELECT pg_terminate_backend(pid) {others}", (database,))  # type: ignore[arg-type]
            deadline = time.monotonic() + timeout_s
            while conn.execute(f"SELECT count(*) {others}", (database,)).fetchone()[0]:  # type: ignore[arg-type,index]
                if time.monotonic() > deadline:
                    raise AssertionError(f"sessions on {database} outlived {timeout_s} s")
                time.sleep(0.01)

    def create_database(self, template: str = "template0") -> str:
        """A new, empty (or copied) database; returns its name."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        return name

    def prepare_template(self) -> None:
        """A migrated database that fresh_database() copies, so tests skip migrating."""
        from playground.store import Store

        self.admin(f'CREATE DATABASE "{MIGRATED_TEMPLATE}" TEMPLATE template0')
        store = Store(self.url(MIGRATED_TEMPLATE))
        store.close()

    def fresh_database(self, migrated: bool = True) -> str:
        """A URL of a new database of its own: migrated (from the template) or empty."""
        template = MIGRATED_TEMPLATE if migrated else "template0"
        return self.url(self.create_database(template))


@contextmanager
def running_server(bin_dir: Path) -> Iterator[PostgresServer]:
    """A started server with its migrated template, removed afterwards."""
    server = PostgresServer(bin_dir)
    try:
        server.start()
        server.prepare_template()
        yield server
    finally:
        server.remove()
