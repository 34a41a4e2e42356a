"""Structured answers in a real browser: pick JSON Schema, run the embedded model, see it valid."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_helpers import (
    ANSWER_MS,
    ROOT,
    answer_cell,
    by_key,
    chromium,
    fresh_page,
    open_app,
    open_expander,
    press_run,
    rerun_after,
    running_app,
    screenshot,
)
from ui.response_format import FORMAT

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app run from a folder with the project's .streamlit config and no endpoints."""
    work = tmp_path_factory.mktemp("structured")
    shutil.copytree(ROOT / ".streamlit", work / ".streamlit")
    with running_app(work / "home", cwd=work) as url:
        yield url


@pytest.fixture
def page() -> Iterator[Page]:
    """A new Chromium session (its own Streamlit session state)."""
    browser: Browser
    with chromium() as browser, fresh_page(browser) as tab:
        yield tab


def test_picking_json_schema_runs_and_marks_the_answer_valid(
    app_url: str, page: Page, tmp_path: Path
) -> None:
    """The example schema, the embedded model, a formatted JSON answer with a Valid mark."""
    open_app(page, app_url, "Playground")
    expander = open_expander(page, "Response format")
    rerun_after(page, by_key(expander, FORMAT).get_by_text("JSON Schema", exact=True).click)
    expect(page.get_by_role("textbox", name="Schema", exact=True)).to_be_visible()
    press_run(page)
    cell = answer_cell(page)
    # the embedded model shares two cores with other jobs: allow it a few minutes
    expect(cell.get_by_text(re.compile(r"^TTFT "))).to_be_visible(timeout=ANSWER_MS * 3)
    cell.scroll_into_view_if_needed()
    screenshot(page, tmp_path, "json-schema-answer")
    expect(cell.get_by_test_id("stMarkdown").filter(has_text=re.compile(r"Valid$"))).to_be_visible()
    expect(cell.get_by_text("Valid JSON matching schema 'answer'.")).to_be_visible()
    shown = cell.get_by_test_id("stCode").first.inner_text()
    assert set(json.loads(shown)) == {"answer", "confidence"}
