"""Hostile answers in a real browser: opening a shared run fetches nothing the answer names."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.browser_helpers import chromium, fresh_page, open_app, running_app, screenshot

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("PLAYGROUND_SCREENSHOTS", "/tmp/playground-screenshots"))


class Listener:
    """A loopback HTTP server that records every request it receives (it must receive none)."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the stdlib names handlers this way
                listener.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A loopback listener on a free port."""
    server = Listener()
    try:
        yield server
    finally:
        server.close()


def seed_hostile_runs(home: Path, port: int) -> tuple[str, str]:
    """Two runs whose answer, variable, template and error name images on the listener."""
    from playground.config import load_settings
    from playground.store import open_store
    from tests.history_fixtures import T0, make_run

    image = f"![x](http://127.0.0.1:{port}/?secret=1)"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLAYGROUND_HOME", str(home))
        patch.delenv("PLAYGROUND_CONFIG", raising=False)
        store = open_store(load_settings(Path(os.devnull)))
        first = make_run(
            models=("local/a", "dead/m"),
            prompt=f"Describe {{{{ thing }}}} {image}",
            texts=(f"Here it is: {image} and [a link](data:text/html,<b>hi</b>)", ""),
            variables={"thing": f"{image} <img src='http://127.0.0.1:{port}/?secret=2'>"},
            errors={"dead/m": f"Server said {image}"},
        )
        second = make_run(
            models=("local/a",),
            texts=(f"Newer: {image}",),
            temperature=1.0,
            created_at=T0 + timedelta(minutes=1),
        )
        store.runs.save_run(first)
        store.runs.save_run(second)
    return first.id, second.id


def test_a_shared_run_with_remote_images_fetches_nothing(listener: Listener, tmp_path: Path):
    """Opening /shared?run=ID (alone and beside another run) sends no request to the listener."""
    from playwright.sync_api import expect

    home = tmp_path / "home"
    first, second = seed_hostile_runs(home, listener.port)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_app(home) as url, chromium() as browser, fresh_page(browser) as page:
        open_app(page, f"{url}/shared?run={first}", "Shared run")
        expect(page.get_by_text("Here it is:").first).to_be_visible()  # Answer tab; Raw too
        expect(page.get_by_text("Server said")).to_be_visible()
        page.wait_for_timeout(1500)  # give a fetch every chance to happen
        screenshot(page, SHOTS, "hostile-shared-run")
        assert listener.paths == []
        # what the answer named is still there to read: the image as a link, the tag as text
        expect(page.get_by_role("link", name="image: x").first).to_be_visible()
        expect(page.get_by_text("<img src=", exact=False).first).to_be_visible()

        open_app(page, f"{url}/shared?run={first}&vs={second}", "Shared run")
        expect(page.get_by_text("Prompt template:").first).to_be_visible()
        page.wait_for_timeout(1500)
        screenshot(page, SHOTS, "hostile-shared-comparison")
        assert page.locator("img[src*='secret']").count() == 0
        assert page.get_by_text("Traceback").count() == 0
    assert listener.paths == []
