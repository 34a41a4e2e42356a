"""One PostgreSQL store shared by two `streamlit run` processes and two CLI writers.

Both apps and both writers read one playground.toml that names the database (the password from
[storage] password_env); writers and apps alike ask a loopback stub endpoint, so the test
times the store rather than the CPU. What one process stores, every other one shows after its
next rerun.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from playground.store import Store
from playground.store.leaderboard import Leaderboard
from tests.browser_helpers import (
    PAGE_LOAD_MS,
    RERUN_MS,
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
    wait_for_answer,
)
from tests.pg_support import PASSWORD, PostgresServer
from tests.support import FaultServer

pytestmark = pytest.mark.browser

STUB_MODEL = "stub/m1"


def _team_folder(
    tmp_path: Path, pg_server: PostgresServer, fault_server: FaultServer
) -> tuple[Path, str]:
    """A folder whose playground.toml names a fresh shared database and a stub endpoint."""
    url = pg_server.fresh_database()
    work = tmp_path / "team"
    work.mkdir()
    shutil.copytree(ROOT / ".streamlit", work / ".streamlit")
    database = url.rsplit("/", 1)[1]
    (work / "playground.toml").write_text(
        "[storage]\n"
        f'database_url = "{pg_server.url(database, password=None)}"\n'
        'password_env = "TEAM_DB_PASSWORD"\n\n'
        "[endpoints.stub]\n"
        f'base_url = "{fault_server.url("ok")}"\n'
        'models = ["m1", "m2"]\n'
        "max_retries = 0\n",
        encoding="utf-8",
    )
    return work, url


def _cli_writer(work: Path, name: str) -> subprocess.Popen[str]:
    """`playground run` on two stub models from the team folder (each cell saved on its own)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PLAYGROUND_HOME": str(work / f"home-{name}")}
    models = ["--model", "stub/m1", "--model", "stub/m2"]
    prompt = ["--prompt", f"Question from CLI writer {name}", "--json"]
    return subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "run", *models, *prompt],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _use_stub_model(page: Page) -> None:
    """In the Playground's model picker, swap the embedded model for the stub endpoint's m1.

    The stub answers at once: two apps waiting on the embedded model on a busy 2-core machine
    would test the CPU, not the store.
    """
    box = page.get_by_role("combobox", name="Models")
    box.click()
    rerun_after(page, lambda: page.keyboard.press("Backspace"))  # drops the default model
    box.click()
    rerun_after(page, page.get_by_role("option", name=STUB_MODEL, exact=True).click)
    page.keyboard.press("Escape")


def _ask_and_rate(page: Page, question: str, stars: int) -> None:
    """On the Playground: ask the stub model, wait for the answer, give it `stars`."""
    page.bring_to_front()  # a background tab stops rendering, and the answer would never show
    _use_stub_model(page)
    set_text(page, "question", question)
    press_run(page)
    cell = answer_cell(page, STUB_MODEL)
    wait_for_answer(cell)
    rerun_after(page, cell.get_by_role("radio", name=f"{stars} out of 5 stars").click)
    expect(cell.get_by_text(re.compile(r"\bsaved$"))).to_be_visible()


def _open_searched_run(page: Page, text: str) -> None:
    """On History: search for `text`, expect one run, and open it."""
    page.bring_to_front()
    search = page.get_by_label("Search prompts and answers")
    search.fill(text)
    rerun_after(page, lambda: search.press("Enter"))
    expect(page.get_by_text("1 run matches", exact=False)).to_be_visible(timeout=RERUN_MS)
    table = page.get_by_test_id("stDataFrame").first
    rerun_after(page, lambda: table.click(position={"x": 18, "y": 52}))  # the first row's tick
    heading = page.get_by_role("heading", name=re.compile(r"^Run [0-9a-f]{8}$"))
    expect(heading).to_be_visible(timeout=RERUN_MS)


def test_two_apps_and_two_cli_writers_share_one_postgresql_store(
    pg_server: PostgresServer,
    fault_server: FaultServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Runs and a rating from four processes show in both apps; none lost or doubled."""
    work, url = _team_folder(tmp_path, pg_server, fault_server)
    monkeypatch.setenv("TEAM_DB_PASSWORD", PASSWORD)
    monkeypatch.chdir(work)
    watcher = Store(url)
    watcher.leaderboard.config_aggregates()  # a warm incremental cache in a fifth process
    watcher.leaderboard.preference_pairs()

    with ExitStack() as stack:
        app_a = stack.enter_context(running_app(tmp_path / "home-a", cwd=work))
        app_b = stack.enter_context(running_app(tmp_path / "home-b", cwd=work))
        browser = stack.enter_context(chromium())
        page_a = stack.enter_context(fresh_page(browser))
        page_b = stack.enter_context(fresh_page(browser))

        first = _cli_writer(work, "one")
        _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        # App B's leaderboard is computed (and cached in its process) before the others write.
        open_app(page_b, app_b + "/compare", "Compare")
        expect(page_b.get_by_test_id("stDataFrame").first).to_be_visible(timeout=PAGE_LOAD_MS)
        open_app(page_a, app_a, "Playground")
        second = _cli_writer(work, "two")  # writes while app A runs and rates
        _ask_and_rate(page_a, "Which tent did team A pick?", 4)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 0, err

        # App B shows app A's run with its stars, and both writers' runs.
        page_b.bring_to_front()
        go_to(page_b, "History")
        _open_searched_run(page_b, "team A")
        expect(page_b.get_by_text("★ 4.0 (1)")).to_be_visible()
        screenshot(page_b, tmp_path, "app-b-history-sees-a")
        search = page_b.get_by_label("Search prompts and answers")
        for name in ("one", "two"):
            search.fill(f"CLI writer {name}")
            rerun_after(page_b, lambda: search.press("Enter"))
            expect(page_b.get_by_text("1 run matches", exact=False)).to_be_visible()
        # App A shows all three runs: its own and the two writers'.
        page_a.bring_to_front()
        go_to(page_a, "History")
        expect(page_a.get_by_text("3 runs match", exact=False)).to_be_visible()
        screenshot(page_a, tmp_path, "app-a-history-all")

        # App B's Compare, cached before app A rated, now counts app A's rating.
        page_b.bring_to_front()
        go_to(page_b, "Compare")
        chart = page_b.get_by_test_id("stPlotlyChart").first
        bar = chart.locator("g.point path").first
        expect(bar).to_be_visible(timeout=PAGE_LOAD_MS)  # plotly's script loads on first use
        bar.hover(force=True)  # the chart's drag layer lies over the bars
        expect(chart.locator(".hoverlayer")).to_contain_text("n=1")
        screenshot(page_b, tmp_path, "app-b-compare")

    counts = watcher.counts()
    assert counts == {"runs": 3, "results": 5, "ratings": 1, "preferences": 0, "flow_versions": 0}
    fresh = Leaderboard(watcher.db, watcher.runs, watcher.ratings, watcher.history)
    expected = [asdict(agg) for agg in fresh.config_aggregates()]
    assert [asdict(agg) for agg in watcher.leaderboard.config_aggregates()] == expected
    assert sum(agg["stars_n"] for agg in expected) == 1
    assert sum(agg["n_results"] for agg in expected) == 5
    watcher.close()
