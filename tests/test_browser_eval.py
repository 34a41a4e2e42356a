"""The Evaluate page's main flow in Chromium: uploaded dataset -> run -> results -> baseline.

The embedded model answers (real llama.cpp, short answers) four rows of the sample questions,
uploaded as a CSV (18 rows took over six minutes a batch on a loaded 2-core machine).
Screenshots of the live progress, the results, the comparison and one cell are saved under the
test's temporary folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_helpers import (
    LOCAL_MODEL,
    PAGE_LOAD_MS,
    RERUN_MS,
    by_key,
    chromium,
    fresh_page,
    open_app,
    rerun_after,
    running_app,
    screenshot,
    set_number,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

BATCH_MS = 300_000  # answers from the embedded model on a shared 2-core machine
ROWS = 4
SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "eval" / "gear-questions.jsonl"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium through Playwright, shared by the module."""
    with chromium() as instance:
        yield instance


@pytest.fixture
def page(tmp_path: Path, browser: Browser) -> Iterator[Page]:
    """The Evaluate page of an app with a fresh data home."""
    with running_app(tmp_path / "home") as url, fresh_page(browser) as opened:
        open_app(opened, f"{url}/evaluate", "Evaluate")
        yield opened


def run_batch(page: Page, shots: Path, name: str) -> None:
    """Press Run batch, photograph the live progress, wait for the full results."""
    rerun_after(page, by_key(page, "ev_run").get_by_role("button").click, PAGE_LOAD_MS)
    bar = page.get_by_test_id("stProgress")
    expect(bar).to_be_visible(timeout=PAGE_LOAD_MS)
    expect(page.get_by_text(re.compile(rf"^[1-9]\d*/{ROWS} cells"))).to_be_visible(timeout=BATCH_MS)
    screenshot(page, shots, f"{name}-running")
    finished = page.get_by_text(re.compile(rf"^{ROWS}/{ROWS} cells · done · gate "))
    expect(finished).to_be_visible(timeout=BATCH_MS)
    expect(bar).to_have_count(0)
    # the results are drawn by the same run: wait for it to end before looking at them
    idle = page.locator("[data-testid='stApp'][data-test-script-state='notRunning']")
    idle.wait_for(state="attached", timeout=RERUN_MS)


def test_sample_dataset_run_results_and_baseline(page: Page, tmp_path: Path) -> None:
    """Two batches of the sample on the embedded model, then the second against the first."""
    shots = tmp_path / "shots"
    shots.mkdir()
    import pandas as pd

    upload = tmp_path / "gear-four.csv"
    pd.read_json(SAMPLE, lines=True).head(ROWS).drop(columns="sources").to_csv(upload, index=False)
    rerun_after(page, by_key(page, "ev_source").get_by_text("Upload", exact=True).click)
    rerun_after(page, lambda: page.locator("input[type=file]").set_input_files(str(upload)))
    expect(page.get_by_text(re.compile(rf"^gear-four@\w+ · {ROWS} rows"))).to_be_visible()
    models = by_key(page, "ev_models")
    expect(models.get_by_text(LOCAL_MODEL)).to_be_visible(timeout=RERUN_MS)
    set_number(page, "max_tokens", 8)
    estimate = page.get_by_text(re.compile(rf"^Estimate: {ROWS} cells, {ROWS} model calls"))
    expect(estimate).to_be_visible()
    screenshot(page, shots, "1-setup")

    run_batch(page, shots, "2-first")
    expect(page.get_by_text("Inspect a cell", exact=True)).to_be_visible(timeout=RERUN_MS)
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(3)  # heatmap, cost, latency
    screenshot(page, shots, "3-results")

    set_number(page, "max_tokens", 12)  # longer answers: other rows may pass the keyword
    run_batch(page, shots, "4-second")
    baseline = page.get_by_role("combobox", name="Baseline batch", exact=True)
    baseline.click()
    first = page.get_by_role("option").last  # newest first: the last is the first batch
    rerun_after(page, first.click)
    expect(
        page.get_by_text(re.compile(r"rows went pass → fail, \d+ went fail → pass"))
    ).to_be_visible()
    screenshot(page, shots, "5-baseline")

    box = page.get_by_role("combobox", name="Inspect a cell", exact=True)
    box.scroll_into_view_if_needed()
    box.click()
    page.keyboard.type("row 1 ")  # the picker filters as you type
    rerun_after(page, lambda: page.keyboard.press("Enter"))
    cell = by_key(page, "ev_cell")
    expect(cell.get_by_text(re.compile(r"^local/smollm2-135m-instruct · row \d+"))).to_be_visible()
    expect(cell.get_by_test_id("stDataFrame")).to_have_count(1)  # every scorer's verdict
    cell.scroll_into_view_if_needed()
    screenshot(page, shots, "6-cell")
    print(f"screenshots in {shots}")
