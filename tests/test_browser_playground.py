"""The Playground page in a real browser: what only Chromium shows (state across pages, tabs,
progress while answers stream, stopping, scrolling, the toolbar, remote images).

One `streamlit run app.py` serves the module from a folder whose playground.toml declares a slow
loopback endpoint; helpers live in tests/browser_helpers.py.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_helpers import (
    LOCAL_MODEL,
    ROOT,
    answer_cell,
    chromium,
    fresh_page,
    go_to,
    open_app,
    press_run,
    rerun_after,
    running_app,
    screenshot,
    set_text,
    short_answers,
    wait_for_answer,
)
from tests.support import FaultServer

pytestmark = pytest.mark.browser

SLOW_MODELS = ["slow/m1", "slow/m2"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium through Playwright, shared by the module."""
    with chromium() as instance:
        yield instance


@pytest.fixture(scope="module")
def slow_server() -> Iterator[FaultServer]:
    """A loopback endpoint that answers after 1 s (the module's own, so its delay is known)."""
    with FaultServer(delay_s=1.0) as server:
        yield server


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory, slow_server: FaultServer) -> Iterator[str]:
    """The app run from a folder with the project's .streamlit config and a slow endpoint."""
    work = tmp_path_factory.mktemp("pgpage")
    shutil.copytree(ROOT / ".streamlit", work / ".streamlit")
    (work / "playground.toml").write_text(
        f'[endpoints.slow]\nbase_url = "{slow_server.url("slow")}"\n'
        'models = ["m1", "m2"]\nmax_retries = 0\n',
        encoding="utf-8",
    )
    with running_app(work / "home", cwd=work) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A new browser session (its own Streamlit session state)."""
    with fresh_page(browser) as tab:
        yield tab


def test_rating_then_visiting_another_page_keeps_the_editor_and_the_stars(
    app_url: str, page: Page, tmp_path: Path
) -> None:
    """Defect 1: star -> Compare -> back used to wipe the editor and show empty stars."""
    open_app(page, app_url, "Playground")
    set_text(page, "Variant name", "friendly")
    set_text(page, "question", "Which tent is lightest?")
    short_answers(page)
    press_run(page)
    wait_for_answer(answer_cell(page))
    rerun_after(page, page.get_by_role("radio", name="4 out of 5 stars").click)
    expect(page.get_by_text(re.compile(r"\bsaved$"))).to_be_visible()

    go_to(page, "Compare")
    go_to(page, "Playground")
    screenshot(page, tmp_path, "after-rating-and-compare")
    expect(page.get_by_label("question")).to_have_value("Which tent is lightest?")
    expect(page.get_by_label("Variant name")).to_have_value("friendly")
    expect(page.get_by_role("combobox", name="Models")).to_have_count(1)
    expect(page.get_by_text(LOCAL_MODEL, exact=True).first).to_be_visible()
    expect(page.get_by_role("radio", name="4 out of 5 stars")).to_have_attribute(
        "aria-checked", "true"
    )
