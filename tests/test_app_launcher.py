"""`playground app` as a real process: no file watcher unless asked, and it stops when killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def launched(work: Path, *flags: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`python -m playground.cli app --headless` from `work`; yield the process and its port.

    The launcher runs in its own process group, so whatever it leaves behind is killed too.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k}
    env["PLAYGROUND_HOME"] = str(work / "home")
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "playground.cli", "app", "--headless", "--port", str(port)]
    with open(work / f"app-{port}.log", "wb") as log:
        proc = subprocess.Popen(
            [*command, *flags], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=60, proc=proc)
            yield proc, port
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@contextlib.contextmanager
def browser_session(port: int) -> Iterator[None]:
    """Stay connected to the app's websocket as a browser tab does (that starts a session)."""
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", open_timeout=30):
        time.sleep(2.0)  # the session registers its file watchers as it starts
        yield


def inotify_watches(pid: int) -> int:
    """How many inotify watches the process holds (one line per watch in fdinfo)."""
    count = 0
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        with contextlib.suppress(OSError):
            count += info.read_text().count("inotify wd:")
    return count


def answers(port: int) -> bool:
    """True while something answers on the app's port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="needs Linux /proc")
def test_the_app_watches_no_files_unless_developing(tmp_path: Path) -> None:
    with launched(tmp_path) as (proc, port), browser_session(port):
        assert inotify_watches(proc.pid) == 0
    with launched(tmp_path, "--dev") as (proc, port), browser_session(port):
        assert inotify_watches(proc.pid) > 0  # --dev watches, so the count above means something


def test_terminating_the_launcher_stops_the_app(tmp_path: Path) -> None:
    with launched(tmp_path) as (proc, port):
        os.kill(proc.pid, signal.SIGTERM)  # what `kill PID` or a service manager sends
        proc.wait(timeout=20)
        deadline = time.monotonic() + 10
        while answers(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not answers(port), "Streamlit still serves the port after the launcher was killed"


def toolbar_mode(port: int) -> int:
    """The toolbar mode the app tells a new browser session (from its NewSession message)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", open_timeout=30) as socket:
        hello = BackMsg()
        hello.rerun_script.query_string = ""
        socket.send(hello.SerializeToString())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = ForwardMsg.FromString(socket.recv(timeout=60))  # type: ignore[arg-type]
            if message.WhichOneof("type") == "new_session":
                return int(message.new_session.config.toolbar_mode)
    raise AssertionError("the app sent no new_session message")


def test_the_app_shows_no_deploy_button_unless_developing(tmp_path: Path) -> None:
    """Issue 10 defect 15: Streamlit's "Deploy" button showed to every audience."""
    from streamlit.proto.NewSession_pb2 import Config

    with launched(tmp_path) as (_, port):
        assert toolbar_mode(port) == Config.VIEWER  # no Deploy button, no developer menu
    with launched(tmp_path, "--dev") as (_, port):
        assert toolbar_mode(port) == Config.DEVELOPER


@pytest.mark.parametrize("dev", [False, True])
def test_the_app_skips_streamlits_full_collection_after_every_rerun(dev: bool) -> None:
    """A live grid reruns every 0.4 s; a forced gc.collect() each time (most of a second with
    torch and a model loaded, holding the GIL) left a RAG answer unscored for 45 s."""
    from playground.cli.core import streamlit_command

    command = streamlit_command(None, "127.0.0.1", headless=True, dev=dev)
    assert command[command.index("--runner.postScriptGC") + 1] == "false"
