"""A two-turn conversation with two models in a real browser: each column keeps its own thread."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from playground.config import load_settings
from playground.store import open_store
from tests.browser_helpers import (
    ANSWER_MS,
    ROOT,
    answer_cell,
    by_key,
    chromium,
    fresh_page,
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

PEAR = "pear/m"  # a loopback endpoint that always answers "pear"


@pytest.fixture(scope="module")
def app_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """playground.toml with the parrot endpoint beside the embedded model."""
    with FaultServer() as server:
        work = tmp_path_factory.mktemp("pgconvo")
        shutil.copytree(ROOT / ".streamlit", work / ".streamlit")
        config = work / "playground.toml"
        config.write_text(
            f'[storage]\nhome = "{work / "home"}"\n\n'
            f'[endpoints.pear]\nbase_url = "{server.url("say-pear")}"\n'
            'models = ["m"]\nmax_retries = 0\n',
            encoding="utf-8",
        )
        yield config


@pytest.fixture(scope="module")
def app_url(app_config: Path) -> Iterator[str]:
    """The app, run from that folder."""
    with running_app(app_config.parent / "home", cwd=app_config.parent) as url:
        yield url


@pytest.fixture
def page(app_url: str) -> Iterator[Page]:
    """A browser session on the app."""
    browser: Browser
    with chromium() as browser, fresh_page(browser) as tab:
        yield tab


def test_a_follow_up_continues_each_models_own_thread(
    app_url: str, page: Page, app_config: Path, tmp_path: Path
) -> None:
    """Two models answer, then a follow-up: each column shows its own earlier answer above."""
    open_app(page, app_url, "Playground")
    box = page.get_by_role("combobox", name="Models")
    box.click()
    rerun_after(page, page.get_by_role("option", name=PEAR, exact=True).click)
    page.keyboard.press("Escape")
    short_answers(page)
    press_run(page)
    local, pear = answer_cell(page), answer_cell(page, PEAR)
    wait_for_answer(local)
    wait_for_answer(pear)

    set_text(page, "Follow-up", "Now answer in one word.")
    rerun_after(page, by_key(page, "btn_follow_up").get_by_role("button").click, ANSWER_MS)
    wait_for_answer(answer_cell(page))
    wait_for_answer(answer_cell(page, PEAR))
    turn = page.get_by_text("Turn 2 · follow-up: Now answer in one word.")
    expect(turn).to_be_visible()
    threads = page.get_by_test_id("stExpander").filter(has_text="Conversation so far")
    expect(threads).to_have_count(2)
    answer_cell(page).scroll_into_view_if_needed()
    shot = screenshot(page, tmp_path, "two-turn-conversation")
    assert shot.exists()

    runs = open_store(load_settings(app_config)).runs.recent_runs(limit=5)
    second = next(r for r in runs if r.parent_run_id is not None)
    first = next(r for r in runs if r.id == second.parent_run_id)
    earlier = {r.model_id: r.text for r in first.results}
    pear_thread = answer_cell(page, PEAR).get_by_test_id("stExpander")
    expect(pear_thread).to_contain_text("pear")
    for result in second.results:
        assert result.messages[-2].content == earlier[result.model_id]

    # the permalink of the second turn shows both threads, read-only
    open_app(page, f"{app_url}/shared?run={second.id[:8]}", "Shared run")
    shared = page.get_by_test_id("stExpander").filter(has_text="Conversation so far")
    expect(shared).to_have_count(2)
    expect(page.get_by_text("Turn 2 · follow-up: Now answer in one word.")).to_be_visible()
    screenshot(page, tmp_path, "shared-second-turn")


def test_few_shot_messages_are_edited_as_a_list(app_url: str, page: Page, tmp_path: Path) -> None:
    """Add an example pair between the system and the user message, then remove one."""
    open_app(page, app_url, "Playground")
    add = by_key(page, "btn_add_example_0").get_by_role("button")
    rerun_after(page, add.click)
    rerun_after(page, add.click)
    set_text(page, "Few-shot message 1", "Why is grass green?")
    set_text(page, "Few-shot message 2", "Chlorophyll.")
    roles = page.get_by_role("combobox", name="Role of few-shot message 2")
    expect(roles).to_have_value("assistant")
    screenshot(page, tmp_path, "few-shot-editor")
    remove = page.get_by_role("button", name="Remove few-shot message 2")
    if not remove.count():  # the help text is a tooltip: find the button by its key instead
        remove = by_key(page, "btn_remove_example_0_1").get_by_role("button")
    rerun_after(page, remove.click)
    expect(page.get_by_label("Few-shot message 2", exact=True)).to_have_count(0)
    expect(page.get_by_label("Few-shot message 1", exact=True)).to_have_value("Why is grass green?")
