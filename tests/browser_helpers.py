"""Helpers for the real-browser tests: start the app, drive Chromium, find Streamlit widgets.

Every interaction that makes Streamlit rerun goes through `rerun_after`, which waits for the
server's "script finished" message on the page's websocket before the test asserts anything.
Model answers stream from parallel fragments inside the run started by Run, so tests wait for
them with `expect(...)` and a generous timeout.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from playground.cli.core import streamlit_command
from tests.support import free_port, wait_http

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, WebSocket

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_MODEL = "local/smollm2-135m-instruct"
PAGE_LOAD_MS = 60_000  # a cold page may import torch or chromadb first
RERUN_MS = 60_000  # a rerun may embed or retrieve on a busy CI machine
ANSWER_MS = 90_000  # a model answer, with another job using the CPU
VIEWPORT = {"width": 1400, "height": 2000}  # tall enough that a screenshot shows a whole run


@contextlib.contextmanager
def running_app(home: Path, cwd: Path = ROOT) -> Iterator[str]:
    """`streamlit run app.py` from `cwd` with data under `home` and no API keys; yield its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k}
    env.pop("PLAYGROUND_CONFIG", None)
    env["PLAYGROUND_HOME"] = str(home)
    log_path = home.parent / f"streamlit-{port}.log"
    with open(log_path, "wb") as log:
        # the launcher's own command line: the browser sees what `playground app` serves
        proc = subprocess.Popen(
            streamlit_command(port, "127.0.0.1", headless=True, dev=False),
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=60, proc=proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium through Playwright."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing; install Debian's chromium package (apt-get).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


_STREAMS: dict[Page, WebSocket] = {}  # each open page's Streamlit connection


def _ends_a_run(payload: str | bytes) -> bool:
    """True for the message that ends a script or fragment run (not one cut short by a rerun)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    if isinstance(payload, str):
        return False
    message = ForwardMsg.FromString(payload)
    return message.WhichOneof("type") == "script_finished" and message.script_finished in {
        ForwardMsg.FINISHED_SUCCESSFULLY,
        ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
        ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
    }


@contextlib.contextmanager
def fresh_page(browser: Browser) -> Iterator[Page]:
    """A page in a new browser context (a new Streamlit session) whose connection is watched."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)  # type: ignore[arg-type]
    page = context.new_page()

    def remember(socket: WebSocket) -> None:
        if socket.url.endswith("/_stcore/stream"):
            _STREAMS[page] = socket

    page.on("websocket", remember)
    try:
        yield page
    finally:
        _STREAMS.pop(page, None)
        context.close()


def rerun_after(page: Page, action: Callable[[], object], timeout: float = RERUN_MS) -> None:
    """Do `action` (something that makes Streamlit rerun) and wait for that run to finish.

    The wait listens for the server's "script finished" message rather than watching the
    page: a quick rerun can start and end within one browser frame and leave no trace there.
    """
    with _STREAMS[page].expect_event("framereceived", predicate=_ends_a_run, timeout=timeout):
        action()


def open_app(page: Page, url: str, heading: str) -> None:
    """Load a URL of the app and wait for its first run to finish and the page's heading."""
    page.goto(url, wait_until="domcontentloaded")
    idle = page.locator("[data-testid='stApp'][data-test-script-state='notRunning']")
    idle.wait_for(state="attached", timeout=PAGE_LOAD_MS)
    expect_heading(page, heading)


def expect_heading(page: Page, name: str) -> None:
    """Assert the page's title heading."""
    from playwright.sync_api import expect

    expect(page_heading(page, name)).to_be_visible(timeout=PAGE_LOAD_MS)


def page_heading(page: Page, name: str) -> Locator:
    """The level-1 heading of a page."""
    return page.get_by_role("heading", name=name, level=1)


def nav_link(page: Page, title: str) -> Locator:
    """A page link in the sidebar navigation."""
    return page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True)


def go_to(page: Page, title: str) -> None:
    """Switch pages through the sidebar (same session) and wait for the page to finish."""
    rerun_after(page, nav_link(page, title).click, PAGE_LOAD_MS)
    expect_heading(page, title)


def by_key(page: Page | Locator, key: str) -> Locator:
    """The element container of the widget with Streamlit key `key`."""
    css_key = re.sub(r"[^A-Za-z0-9_-]", "-", key)  # Streamlit's class name for the key
    return page.locator(f".st-key-{css_key}")


def set_number(page: Page, label: str, value: int, within: Locator | None = None) -> None:
    """Type a number into a number input and commit it with Enter (one rerun)."""
    box = (within or page).get_by_label(label, exact=True)
    box.fill(str(value))
    rerun_after(page, lambda: box.press("Enter"))


def set_text(page: Page, label: str, text: str) -> None:
    """Type into a text input or area and commit it by leaving it (one rerun).

    Tab rather than Ctrl+Enter: Ctrl+Enter is the Playground's Run shortcut.
    """
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    rerun_after(page, lambda: box.press("Tab"))


def choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the selectbox `label` (a rerun only when the choice changes)."""
    from playwright.sync_api import expect

    box = page.get_by_role("combobox", name=label, exact=True)
    if box.input_value() != option:
        box.click()
        rerun_after(page, page.get_by_role("option", name=option, exact=True).click)
    expect(box).to_have_value(option)


def open_expander(page: Page, label: str) -> Locator:
    """Open a collapsed expander by its label (no rerun); return the expander."""
    from playwright.sync_api import expect

    details = page.get_by_test_id("stExpander").locator("details")
    details = details.filter(has=page.locator("summary", has_text=label))
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    expect(details).to_have_attribute("open", "")
    return details


def short_answers(page: Page, model_id: str = LOCAL_MODEL, max_tokens: int = 16) -> None:
    """Cap a model's answer length in its Parameters expander, so a run takes seconds."""
    expander = open_expander(page, f"Parameters · {model_id}")
    set_number(page, "max_tokens", max_tokens, within=expander)


def press_run(page: Page) -> None:
    """Press the Playground's Run button and wait until every answer has streamed."""
    rerun_after(page, by_key(page, "btn_run").get_by_role("button").click, ANSWER_MS)


def answer_cell(page: Page, model_id: str = LOCAL_MODEL) -> Locator:
    """One model's answer column in the Playground run grid, by its bold model heading."""
    heading = page.locator("strong").get_by_text(model_id, exact=True)
    return page.get_by_test_id("stColumn").filter(has=heading).last


def wait_for_answer(cell: Locator) -> Locator:
    """Wait until the cell's answer has finished (its metrics line shows); return that line."""
    from playwright.sync_api import expect

    metrics = cell.get_by_text(re.compile(r"^TTFT "))
    expect(metrics).to_be_visible(timeout=ANSWER_MS)
    return metrics


def answer_text(cell: Locator) -> str:
    """The first line of the answer a cell shows (the markdown after the model heading)."""
    text = cell.get_by_test_id("stMarkdown").nth(1).inner_text()
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def run_id_prefix(page: Page) -> str:
    """The 8-character run id the Playground shows above the latest run."""
    heading = page.get_by_role("heading", name=re.compile(r"^Run [0-9a-f]{8}$"))
    return heading.inner_text().split()[1]


def load_sample_corpus(page: Page) -> None:
    """On the Knowledge page, load the sample corpus (fast when it is already loaded)."""
    from playwright.sync_api import expect

    button = by_key(page, "kn_load_sample").get_by_role("button")
    rerun_after(page, button.click, timeout=180_000)  # the first load embeds the corpus
    report = page.get_by_text(re.compile(r"^(Added|Unchanged) \d+ documents \(\d+ chunks\): "))
    expect(report).to_be_visible(timeout=RERUN_MS)


def screenshot(page: Page, folder: Path, name: str) -> Path:
    """Save a screenshot of the page's visible part (Streamlit scrolls inside the page)."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path
