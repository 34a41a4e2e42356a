"""Fixtures shared by every test: a private data home, the real model server, a fault server."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # app.py, ui/ and tests/support.py import from the checkout

from playground.config import load_settings  # noqa: E402
from playground.store import Store, open_store  # noqa: E402
from tests.pg_support import PostgresServer, find_bin_dir, running_server  # noqa: E402
from tests.support import FaultServer, serve_model  # noqa: E402

KEY_VARS = [
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "OPENAI_API_VERSION",
    "AZURE_OPENAI_DEPLOYMENTS",
    "PLAYGROUND_CONFIG",
]

# CI decides whether a change lands: there the fuzz tests replay the same examples every run
# (derandomized), so a new find by chance cannot turn an unrelated change red. Elsewhere they
# explore, and what they find becomes a named regression test.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data home and working directory, with no API keys in the environment."""
    data = tmp_path / "home"
    monkeypatch.setenv("PLAYGROUND_HOME", str(data))
    monkeypatch.chdir(tmp_path)
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    return data


@pytest.fixture
def write_config(home: Path) -> Iterator[object]:
    """Write playground.toml in the working directory: write_config('...toml text...')."""

    def write(text: str) -> Path:
        path = Path.cwd() / "playground.toml"
        path.write_text(text, encoding="utf-8")
        return path

    yield write


@pytest.fixture
def store(home: Path) -> Store:
    """The run store in the fresh data home (a test file may override it)."""
    return open_store(load_settings())


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """A real OpenAI-compatible server (llama_cpp.server via `playground serve-model`)."""
    with serve_model() as base_url:
        yield base_url


@pytest.fixture(scope="session")
def fault_server() -> Iterator[FaultServer]:
    """The loopback server that injects 500/429/401/hang/garbage and a 1 s delay (/slow)."""
    with FaultServer(delay_s=1.0) as server:
        yield server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (skipped without binaries, failed in CI)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = "no PostgreSQL binaries (initdb, pg_ctl); apt-get install postgresql"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests, but found {reason}.")
        pytest.skip(reason)
    with running_server(bin_dir) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, migrated store on each backend: one test body, two databases."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store' / 'playground.db'}"
        Store(url).close()
        return url
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.fresh_database()


@pytest.fixture
def backend_store(backend_url: str) -> Iterator[Store]:
    """A Store over backend_url, closed afterwards."""
    opened = Store(backend_url)
    yield opened
    opened.close()
