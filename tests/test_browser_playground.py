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
from playwright.sync_api import Browser, Locator, Page, expect

from playground.config import load_settings
from playground.records import Run
from playground.store import open_store
from tests.browser_helpers import (
    ANSWER_MS,
    LOCAL_MODEL,
    ROOT,
    answer_cell,
    by_key,
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
def app_config(tmp_path_factory: pytest.TempPathFactory, slow_server: FaultServer) -> Path:
    """playground.toml of the app: a slow endpoint, and one that sends two words then stalls."""
    work = tmp_path_factory.mktemp("pgpage")
    shutil.copytree(ROOT / ".streamlit", work / ".streamlit")
    config = work / "playground.toml"
    config.write_text(
        f'[storage]\nhome = "{work / "home"}"\n\n'
        f'[endpoints.slow]\nbase_url = "{slow_server.url("slow")}"\n'
        'models = ["m1", "m2"]\nmax_retries = 0\n\n'
        f'[endpoints.stall]\nbase_url = "{slow_server.url("stall")}"\n'
        'models = ["m"]\nmax_retries = 0\n',
        encoding="utf-8",
    )
    return config


@pytest.fixture(scope="module")
def app_url(app_config: Path) -> Iterator[str]:
    """The app run from a folder with the project's .streamlit config and those endpoints."""
    with running_app(app_config.parent / "home", cwd=app_config.parent) as url:
        yield url


def saved_runs(app_config: Path) -> list[Run]:
    """The runs the app has saved, newest first."""
    return open_store(load_settings(app_config)).runs.recent_runs(limit=50)


def visible(locator: Locator) -> Locator:
    """The visible one of several matches (each variant's tab holds the same fields)."""
    return locator.locator("visible=true")


def add_model(page: Page, model_id: str) -> None:
    """Pick one more model in the Models multiselect (one rerun)."""
    box = page.get_by_role("combobox", name="Models")
    box.click()
    rerun_after(page, page.get_by_role("option", name=model_id, exact=True).click)
    page.keyboard.press("Escape")  # close the dropdown so it covers nothing


def remove_model(page: Page, model_id: str) -> None:
    """Take a model out of the Models multiselect by its chip's remove button (one rerun)."""
    rerun_after(page, page.get_by_role("button", name=f"Remove {model_id}").click)


def press_run_now(page: Page) -> None:
    """Press Run and wait only for the click's own script run (answers stream afterwards)."""
    rerun_after(page, by_key(page, "btn_run").get_by_role("button").click)


def stop_button(page: Page) -> Locator:
    """The Playground's own Stop button."""
    return by_key(page, "btn_stop").get_by_role("button")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A new browser session (its own Streamlit session state)."""
    with fresh_page(browser) as tab:
        yield tab


def test_rating_then_visiting_another_page_keeps_the_editor_and_the_stars(
    app_url: str, app_config: Path, page: Page, tmp_path: Path
) -> None:
    """Defect 1: star -> Compare -> back used to wipe the editor and show empty stars."""
    open_app(page, app_url, "Playground")
    set_text(page, "Variant name", "friendly")
    set_text(page, "question", "Which tent is lightest?")
    short_answers(page)
    press_run(page)
    cell = answer_cell(page)
    wait_for_answer(cell)
    rerun_after(page, page.get_by_role("radio", name="4 out of 5 stars").click)
    expect(page.get_by_text(re.compile(r"\bsaved$"))).to_be_visible()

    # The comment box opens from the card's Comment button; Enter saves what was typed.
    rerun_after(page, cell.get_by_role("button", name="Comment").click)
    box = page.get_by_test_id("stPopoverBody").get_by_role("textbox", name="Comment")
    box.fill("too short")
    rerun_after(page, lambda: box.press("Enter"))
    expect(
        page.get_by_test_id("stPopoverBody").get_by_text(re.compile(r"\bsaved$"))
    ).to_be_visible()
    screenshot(page, tmp_path, "comment-open")
    rerun_after(page, lambda: page.keyboard.press("Escape"))
    expect(cell.get_by_text(re.compile(r"\btoo short$"))).to_be_visible()  # shown on the card
    answer_id = saved_runs(app_config)[0].results[0].id
    rows = open_store(load_settings(app_config)).ratings.ratings_of([answer_id])[answer_id]
    assert (rows[-1]["stars"], rows[-1]["comment"]) == (4, "too short")  # stars kept too

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
    expect(answer_cell(page).get_by_text(re.compile(r"\btoo short$"))).to_be_visible()


STALL = "stall/m"  # sends "Hello from", then only keep-alive comments for 30 s


def test_renaming_a_variant_keeps_its_tab_open(app_url: str, page: Page, tmp_path: Path) -> None:
    """Defect 5: a rename jumped back to the first tab, so the next edit landed there."""
    open_app(page, app_url, "Playground")
    rerun_after(page, by_key(page, "btn_add_variant").get_by_role("button").click)
    page.get_by_role("tab", name="variant 2").click()
    name = visible(page.get_by_label("Variant name", exact=True))
    expect(name).to_have_value("variant 2")
    name.fill("terse")
    rerun_after(page, lambda: name.press("Tab"))
    screenshot(page, tmp_path, "after-rename")
    expect(page.get_by_role("tab", name="terse")).to_have_attribute("aria-selected", "true")
    user = visible(page.get_by_label("User message", exact=True))
    user.fill("In five words: {{ question }}")
    rerun_after(page, lambda: user.press("Tab"))
    expect(page.get_by_role("tab", name="terse")).to_have_attribute("aria-selected", "true")
    page.get_by_role("tab", name="default").click()
    expect(visible(page.get_by_label("User message", exact=True))).to_have_value("{{ question }}")


def test_three_models_show_every_chip_and_no_deploy_button(
    app_url: str, page: Page, tmp_path: Path
) -> None:
    """Defect 15: the first of three model chips scrolled out of sight; "Deploy" showed."""
    open_app(page, app_url, "Playground")
    add_model(page, SLOW_MODELS[0])
    add_model(page, SLOW_MODELS[1])
    screenshot(page, tmp_path, "three-models")
    area = by_key(page, "pg_models").bounding_box() or {}
    left, right = area["x"], area["x"] + area["width"]
    for model_id in (LOCAL_MODEL, *SLOW_MODELS):
        chip = by_key(page, "pg_models").get_by_text(model_id, exact=True)
        box = chip.bounding_box() or {}
        assert left - 1 <= box["x"] and box["x"] + box["width"] <= right + 1, model_id
    expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
    expect(page.get_by_test_id("stAppDeployButton")).to_have_count(0)


def test_run_scrolls_to_the_answers(app_url: str, page: Page, tmp_path: Path) -> None:
    """Defect 15: after Run the answers were below the fold and the page stayed put."""
    page.set_viewport_size({"width": 1400, "height": 700})
    open_app(page, app_url, "Playground")
    add_model(page, SLOW_MODELS[0])
    add_model(page, SLOW_MODELS[1])
    remove_model(page, LOCAL_MODEL)  # answers in a second: the test is about where they show
    short_answers(page, SLOW_MODELS[0])  # an open expander makes the editor taller
    press_run(page)
    heading = page.get_by_role("heading", name=re.compile(r"^Run [0-9a-f]{8}$"))
    expect(heading).to_be_in_viewport(timeout=10_000)
    screenshot(page, tmp_path, "scrolled-to-live-run")
    # the first endpoint call of the process imports the openai SDK: slow on a loaded machine
    done = answer_cell(page, SLOW_MODELS[1]).get_by_text(re.compile(r"^TTFT "))
    expect(done).to_be_visible(timeout=3 * ANSWER_MS)
    page.wait_for_timeout(1500)  # the smooth scroll once the answers are in
    screenshot(page, tmp_path, "scrolled-to-finished-run")
    expect(heading).to_be_in_viewport()
    expect(answer_cell(page, SLOW_MODELS[0])).to_be_in_viewport(ratio=0.9)


def test_stop_keeps_the_partial_answer_and_other_widgets_do_not_cancel(
    app_url: str, app_config: Path, page: Page, tmp_path: Path
) -> None:
    """Defect 7: Stop marks and saves the partial answer; an edit mid-run cancels nothing."""
    open_app(page, app_url, "Playground")
    add_model(page, STALL)
    remove_model(page, LOCAL_MODEL)  # the stall lasts 30 s: no waiting on a busy CPU here
    before = len(saved_runs(app_config))
    press_run_now(page)
    cell = answer_cell(page, STALL)
    # the first endpoint call of the process imports the openai SDK: slow on a loaded machine
    expect(cell.get_by_text(re.compile(r"streaming · 2 tokens · \d+\.\d s"))).to_be_visible(
        timeout=3 * ANSWER_MS
    )
    set_text(page, "question", "Is this still running?")  # cannot change cells already sent
    expect(cell.get_by_text(re.compile(r"streaming · 2 tokens"))).to_be_visible()
    screenshot(page, tmp_path, "streaming-after-an-edit")
    rerun_after(page, stop_button(page).click)
    stopped = cell.get_by_text("Stopped after 2 tokens; the partial answer is kept.")
    expect(stopped).to_be_visible(timeout=ANSWER_MS)
    expect(cell.get_by_text("Hello from").first).to_be_visible()
    screenshot(page, tmp_path, "stopped")
    runs = saved_runs(app_config)
    assert len(runs) == before + 1
    (partial,) = runs[0].results
    assert (partial.text, partial.error) == (
        "Hello from",
        "Stopped after 2 tokens; the partial answer is kept.",
    )


def test_a_new_run_clears_the_last_answers_and_shows_each_cells_state(
    app_url: str, page: Page, tmp_path: Path
) -> None:
    """Defect 6: the last run's answers stayed, greyed, with live stars under the new run."""
    open_app(page, app_url, "Playground")
    add_model(page, SLOW_MODELS[0])
    short_answers(page)
    press_run(page)
    wait_for_answer(answer_cell(page, SLOW_MODELS[0]))
    wait_for_answer(answer_cell(page))
    expect(page.get_by_role("radio", name="4 out of 5 stars")).to_have_count(2)
    first = page.get_by_role("heading", name=re.compile(r"^Run [0-9a-f]{8}$")).inner_text()
    add_model(page, STALL)
    press_run_now(page)
    stall = answer_cell(page, STALL)
    expect(stall.get_by_text(re.compile(r"streaming · 2 tokens · \d+\.\d s"))).to_be_visible(
        timeout=ANSWER_MS
    )
    screenshot(page, tmp_path, "second-run-live")
    headings = page.get_by_role("heading", name=re.compile(r"^Run [0-9a-f]{8}$"))
    expect(headings).to_have_count(1)
    expect(headings).not_to_have_text(first)
    expect(page.get_by_role("radio", name="4 out of 5 stars")).to_have_count(0)
    expect(page.get_by_text("Best answer")).to_have_count(0)
    expect(page.locator("[data-stale='true']")).to_have_count(0)
    rerun_after(page, stop_button(page).click)
    expect(stall.get_by_text(re.compile("^Stopped after"))).to_be_visible(timeout=ANSWER_MS)


def test_a_double_click_on_run_makes_one_run(
    app_url: str, app_config: Path, page: Page, tmp_path: Path
) -> None:
    """Defect 7: a double-click on Run left a phantom second run with a blank answer."""
    open_app(page, app_url, "Playground")
    add_model(page, SLOW_MODELS[0])
    short_answers(page)
    before = len(saved_runs(app_config))
    by_key(page, "btn_run").get_by_role("button").dblclick()
    wait_for_answer(answer_cell(page, SLOW_MODELS[0]))
    wait_for_answer(answer_cell(page))
    screenshot(page, tmp_path, "after-double-click")
    expect(page.get_by_role("heading", name=re.compile(r"^Run [0-9a-f]{8}$"))).to_have_count(1)
    runs = saved_runs(app_config)
    assert len(runs) == before + 1
    assert all(r.text and not r.error for r in runs[0].results)
