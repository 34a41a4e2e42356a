"""The main flow in a real browser: `streamlit run app.py` driven by Playwright in Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_helpers import chromium, running_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app under `streamlit run`, with a private data home and no API keys."""
    with running_app(tmp_path_factory.mktemp("browser") / "home") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian Chromium through Playwright."""
    with chromium() as instance:
        yield instance


def test_a_question_is_answered_with_metrics_in_the_browser(
    app_url: str, browser: object, tmp_path: Path
) -> None:
    """Typing a question and pressing Run streams an answer with its metrics."""
    from playwright.sync_api import expect

    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(app_url, wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name="Playground")).to_be_visible(timeout=60_000)
    question = page.get_by_label("question")
    question.fill("Name one colour of the rainbow.")
    question.press("Control+Enter")
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_text("TTFT").first).to_be_visible(timeout=90_000)
    expect(page.get_by_text("**local/smollm2-135m-instruct**")).to_have_count(0)
    expect(page.get_by_text("local/smollm2-135m-instruct").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "playground.png"), full_page=True)
    assert page.get_by_text("Traceback").count() == 0
    page.close()


def test_settings_page_says_how_to_add_an_endpoint(app_url: str, browser: object) -> None:
    """The Settings page explains how to configure an endpoint when none is set."""
    from playwright.sync_api import expect

    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(app_url + "/settings", wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name="Settings")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("No OpenAI-compatible endpoint is configured")).to_be_visible()
    page.close()


def test_the_editor_keeps_its_text_across_pages(app_url: str, browser: object) -> None:
    """A question typed in the Playground is still there after visiting Settings."""
    from playwright.sync_api import expect

    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(app_url, wait_until="domcontentloaded")
    question = page.get_by_label("question")
    expect(question).to_be_visible(timeout=60_000)
    question.fill("Which tent is lightest?")
    question.press("Control+Enter")
    expect(question).to_have_value("Which tent is lightest?")
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Settings")).to_be_visible(timeout=30_000)
    page.get_by_role("link", name="Playground").click()
    expect(page.get_by_label("question")).to_have_value("Which tent is lightest?", timeout=30_000)
    page.close()
