"""The app's main flows in a real browser: knowledge, RAG runs, ratings, history, flows, errors.

One `streamlit run app.py` serves the module (its own data home); the failing-endpoint test and
the deep-link test start their own. Helpers live in tests/browser_helpers.py.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from tests.browser_helpers import (
    ANSWER_MS,
    LOCAL_MODEL,
    RERUN_MS,
    ROOT,
    answer_cell,
    answer_text,
    by_key,
    choose,
    chromium,
    expect_heading,
    fresh_page,
    go_to,
    load_sample_corpus,
    nav_link,
    open_app,
    open_expander,
    press_run,
    rerun_after,
    run_id_prefix,
    running_app,
    screenshot,
    set_text,
    short_answers,
    wait_for_answer,
)
from tests.flow_samples import GOOD
from tests.support import free_port

pytestmark = pytest.mark.browser

CORPUS = sorted(p.name for p in (ROOT / "sample_data" / "corpus").iterdir() if p.is_file())


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium through Playwright, shared by the module."""
    with chromium() as instance:
        yield instance


@pytest.fixture(scope="module")
def app_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data home of the module's app (tests may store flows there directly)."""
    return tmp_path_factory.mktemp("flows") / "home"


@pytest.fixture(scope="module")
def app_url(app_home: Path, browser: Browser) -> Iterator[str]:
    """The app run from the checkout with a private data home."""
    with running_app(app_home) as url:
        yield url


def save_flow_versions(home: Path, name: str, temperatures: list[float]) -> None:
    """Save one version of flow `name` per temperature into the app's data home."""
    from playground.config import load_settings
    from playground.flows.loader import parse_spec
    from playground.flows.registry import FlowRegistry

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLAYGROUND_HOME", str(home))
        patch.delenv("PLAYGROUND_CONFIG", raising=False)
        registry = FlowRegistry(load_settings(Path(os.devnull)))
        for temperature in temperatures:
            text = GOOD.replace("name: gear-support", f"name: {name}")
            registry.save(
                parse_spec(text.replace("temperature: 0.0", f"temperature: {temperature}"))
            )


@pytest.fixture(scope="module")
def dead_endpoint_url(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[str]:
    """The app run from a folder whose playground.toml declares an endpoint nobody serves."""
    work = tmp_path_factory.mktemp("dead")
    (work / ".streamlit").mkdir()
    shutil.copy(ROOT / ".streamlit" / "config.toml", work / ".streamlit" / "config.toml")
    (work / "playground.toml").write_text(
        "[endpoints.dead]\n"
        f'base_url = "http://127.0.0.1:{free_port()}/v1"\n'  # free: nothing listens there
        'models = ["m"]\n'
        "max_retries = 0\n",
        encoding="utf-8",
    )
    with running_app(work / "home", cwd=work) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A new browser session (its own Streamlit session state)."""
    with fresh_page(browser) as tab:
        yield tab


def run_question(page: Page, question: str) -> None:
    """On the Playground, ask `question` with short answers and press Run."""
    short_answers(page)
    set_text(page, "question", question)
    press_run(page)


def add_dead_model(page: Page) -> None:
    """Add the unreachable endpoint's model to the Playground's model picker."""
    page.get_by_role("combobox", name="Models").click()
    rerun_after(page, page.get_by_role("option", name="dead/m (unreachable)").click)
    page.keyboard.press("Escape")


def test_loading_the_sample_corpus_lists_its_documents_with_chunk_counts(
    app_url: str, page: Page, tmp_path: Path
) -> None:
    """One click on "Load sample corpus" lists every sample document with its chunk count."""
    open_app(page, app_url + "/knowledge", "Knowledge")
    load_sample_corpus(page)

    report = page.get_by_text(
        re.compile(rf"^(Added|Unchanged) {len(CORPUS)} documents \(\d+ chunks\): ")
    )
    expect(report).to_be_visible()  # one line for the whole corpus, not one per document
    expect(report).to_contain_text(f" and {len(CORPUS) - 5} more.")
    summary = page.get_by_text(re.compile(rf"^{len(CORPUS)} documents · \d+ chunks · "))
    expect(summary).to_be_visible()
    expect(page.get_by_role("tab", name="Documents")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    screenshot(page, tmp_path, "knowledge-loaded")


def test_a_query_on_the_knowledge_page_shows_top_chunks_with_scores_and_sources(
    app_url: str, page: Page, tmp_path: Path
) -> None:
    """A question typed under "Try a query" lists the top chunks with their scores and sources."""
    open_app(page, app_url + "/knowledge", "Knowledge")
    load_sample_corpus(page)
    page.get_by_role("tab", name="Try a query").click()
    query = by_key(page, "kn_query").get_by_role("textbox")
    query.fill("Is the trail tent waterproof?")
    rerun_after(page, lambda: query.press("Enter"))

    hit = re.compile(r"^\[(\d+)\] (\S+?)(?:, page \d+)? · score (-?\d\.\d{3})$")
    headers = page.get_by_text(hit)
    expect(headers).to_have_count(4)  # the default top k
    found = [hit.match(text) for text in headers.all_inner_texts()]
    assert [int(m[1]) for m in found if m] == [1, 2, 3, 4]
    assert all(m and m[2] in CORPUS for m in found), found
    scores = [float(m[3]) for m in found if m]
    assert scores == sorted(scores, reverse=True)
    assert any(m and m[2] == "trail-tent-2p-manual.md" for m in found), found
    screenshot(page, tmp_path, "knowledge-query")


def test_a_run_with_knowledge_shows_its_retrieved_context_and_groundedness(
    app_url: str, page: Page, tmp_path: Path
) -> None:
    """With "Use knowledge" on, a run shows the retrieved chunks and a groundedness line."""
    open_app(page, app_url + "/knowledge", "Knowledge")
    load_sample_corpus(page)
    go_to(page, "Playground")
    open_expander(page, "Knowledge (RAG)")
    rerun_after(page, page.get_by_text("Use knowledge", exact=True).click)
    choose(page, "Store", "sample-gear")
    top_k = page.get_by_role("slider", name="top_k")
    top_k.focus()
    rerun_after(page, lambda: top_k.press("Home"))  # one chunk: a short prompt, a quick answer
    set_text(page, "User message", "Context:\n{{ context }}\n\nQuestion: {{ question }}")
    short_answers(page, max_tokens=40)  # a sentence or two: the 256-token default took a minute
    run_question(page, "Is the trail tent waterproof?")

    wait_for_answer(answer_cell(page))
    context = page.get_by_test_id("stExpander").filter(has_text="Retrieved context · 1 chunk")
    expect(context).to_be_visible()
    grounded = answer_cell(page).get_by_text(
        re.compile(r"^\S+ \d+% of the answer's sentences are supported by the retrieved chunks")
    )
    expect(grounded).to_be_visible(timeout=RERUN_MS)
    context.locator("summary").click()
    # each chunk listed whole with its source, page (when it has one) and score
    expect(context.get_by_text(re.compile(r"^1 · \S+\.\w+ · score 0\.\d+$"))).to_be_visible()
    expect(context.locator("blockquote")).to_contain_text("waterproof")
    expect(context).not_to_contain_text("None")
    screenshot(page, tmp_path, "playground-knowledge")


def test_a_rated_run_is_in_history_and_its_permalink_shows_it_read_only(
    app_url: str, page: Page, browser: Browser, tmp_path: Path
) -> None:
    """A run rated 4 stars shows with its rating in History and, read-only, at its permalink."""
    question = "Name one colour of the sea."
    open_app(page, app_url, "Playground")
    run_question(page, question)
    cell = answer_cell(page)
    wait_for_answer(cell)
    prefix = run_id_prefix(page)
    answer = answer_text(cell)
    cell.get_by_role("radio", name="4 out of 5 stars").click()
    expect(cell.get_by_text(re.compile(r"\bsaved$"))).to_be_visible(timeout=RERUN_MS)

    go_to(page, "History")
    search = page.get_by_label("Search prompts and answers")
    search.fill(question)
    rerun_after(page, lambda: search.press("Enter"))
    expect(page.get_by_text("1 run matches", exact=False)).to_be_visible()
    table = page.get_by_test_id("stDataFrame").first
    rerun_after(page, lambda: table.click(position={"x": 18, "y": 52}))  # the first row's tick
    expect(page.get_by_role("heading", name=f"Run {prefix}")).to_be_visible()
    card = page.get_by_test_id("stVerticalBlock").filter(has_text="★ 4.0 (1)").last
    expect(card).to_contain_text(answer)
    permalink = page.get_by_test_id("stCode").filter(has_text="/shared?run=").inner_text().strip()
    assert re.fullmatch(rf"{re.escape(app_url)}/shared\?run={prefix}[0-9a-f]+", permalink)

    with fresh_page(browser) as shared:
        open_app(shared, permalink, "Shared run")
        expect(shared.get_by_text("Read-only: open it from the History page")).to_be_visible()
        expect(shared.get_by_text(answer, exact=False).first).to_be_visible()
        expect(shared.get_by_text("★ 4.0 (1)")).to_be_visible()
        expect(shared.get_by_role("radio", name="4 out of 5 stars")).to_have_count(0)
        expect(shared.get_by_role("button", name="Rerun as it was")).to_have_count(0)
        screenshot(shared, tmp_path, "shared-run")


def test_an_answer_saved_as_a_flow_shows_on_the_flows_page_as_version_1(
    app_url: str, page: Page, tmp_path: Path
) -> None:
    """Saving an answer as a flow lists it on the Flows page at v1, with its YAML and exports."""
    open_app(page, app_url, "Playground")
    run_question(page, "Name one kind of tree.")
    cell = answer_cell(page)
    wait_for_answer(cell)
    cell.get_by_role("button", name="Save as flow").click()
    popover = page.get_by_test_id("stPopoverBody")
    name = popover.get_by_role("textbox", name="Flow name")
    name.fill("browser-trees")
    rerun_after(page, lambda: name.press("Enter"))
    popover.get_by_role("button", name="Save as flow").click()
    expect(popover.get_by_text("Saved browser-trees v1")).to_be_visible(timeout=RERUN_MS)
    page.keyboard.press("Escape")

    go_to(page, "Flows")
    choose(page, "Flow", "browser-trees")
    expect(page.get_by_role("combobox", name="Version")).to_have_value("v1")
    code = page.get_by_test_id("stCode").filter(has_text="schema: playground.flow/v1")
    expect(code).to_contain_text("name: browser-trees")
    expect(code).to_contain_text("version: 1")
    expect(code).to_contain_text(f"id: {LOCAL_MODEL}")
    expect(code).to_contain_text("max_tokens: 16")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download YAML").click()
    spec = yaml.safe_load(Path(download.value.path()).read_text(encoding="utf-8"))
    assert (spec["name"], spec["version"], spec["model"]["id"]) == ("browser-trees", 1, LOCAL_MODEL)

    page.get_by_role("tab", name="Export").click()
    formats = page.get_by_role("radiogroup", name="Format")
    rerun_after(page, formats.get_by_text("python", exact=True).click)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download python export (.zip)").click()
    assert download.value.suggested_filename == "browser-trees-v1-python.zip"
    names = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())).namelist()
    assert any(n.endswith(".py") for n in names), names
    screenshot(page, tmp_path, "flows")


def test_a_failing_endpoint_shows_an_error_card_while_the_local_model_answers(
    dead_endpoint_url: str, page: Page, tmp_path: Path
) -> None:
    """An unreachable endpoint's column says "Cannot reach" while the local model answers."""
    open_app(page, dead_endpoint_url, "Playground")
    add_dead_model(page)
    run_question(page, "Name one planet.")

    error = answer_cell(page, "dead/m").get_by_test_id("stAlertContentError")
    expect(error).to_contain_text("Cannot reach", timeout=ANSWER_MS)
    wait_for_answer(answer_cell(page))
    expect(answer_cell(page, "dead/m").get_by_text(re.compile(r"^TTFT "))).to_have_count(0)
    screenshot(page, tmp_path, "dead-endpoint")


def test_the_fifth_star_can_be_clicked_when_two_models_answer_side_by_side(
    dead_endpoint_url: str, page: Page
) -> None:
    """With two answer columns, the fifth star under an answer is not covered by the comment."""
    open_app(page, dead_endpoint_url, "Playground")
    add_dead_model(page)
    run_question(page, "Name one river.")
    cell = answer_cell(page)
    wait_for_answer(cell)
    cell.get_by_role("radio", name="5 out of 5 stars").click(trial=True, timeout=5_000)


def test_a_permalink_opens_without_a_page_not_found_dialog(app_url: str, page: Page) -> None:
    """A permalink (/shared?run=ID) opens the Shared run page with no "Page not found" dialog."""
    open_app(page, app_url + "/shared?run=0123456789abcdef", "Shared run")
    expect(page.get_by_text(re.compile(r"^No run with id 0123456789abcdef"))).to_be_visible()
    expect(page.get_by_role("dialog").filter(has_text="Page not found")).to_have_count(0)


def test_a_deep_link_opened_first_uses_the_app_navigation(
    tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> None:
    """The first visitor after a restart who opens /history sees the app's own sidebar pages."""
    work = tmp_path_factory.mktemp("deeplink")
    with running_app(work / "home") as url, fresh_page(browser) as page:
        page.goto(url + "/history", wait_until="domcontentloaded")
        expect_heading(page, "History")
        expect(nav_link(page, "Shared run")).to_be_visible()


def test_pointing_a_label_at_an_older_version_keeps_that_version_picked(
    app_url: str, app_home: Path, page: Page, tmp_path: Path
) -> None:
    """After "Point at v1", the picker still shows v1, and the export downloads v1."""
    save_flow_versions(app_home, "label-pick", [0.0, 0.4])
    open_app(page, app_url + "/flows", "Flows")
    choose(page, "Flow", "label-pick")
    choose(page, "Version", "v1")
    page.get_by_role("tab", name="Labels").click()
    rerun_after(page, page.get_by_role("button", name="Point at v1").click)
    expect(page.get_by_text("production → v1")).to_be_visible()
    page.get_by_role("tab", name="Export").click()
    formats = page.get_by_role("radiogroup", name="Format")
    rerun_after(page, formats.get_by_text("python", exact=True).click)  # any rerun after the move
    expect(page.get_by_role("combobox", name="Version")).to_have_value("v1")
    expect(page.get_by_text("Labelled production")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download python export (.zip)").click()
    assert download.value.suggested_filename == "label-pick-v1-python.zip"
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    v1_temperature = re.compile(r"temperature['\"]?\s*[:=]\s*0\.0\b")
    code = "".join(archive.read(n).decode() for n in archive.namelist() if n.endswith(".py"))
    assert v1_temperature.search(code), "the export is not v1's configuration"
    screenshot(page, tmp_path, "flows-label-kept")


def seed_rated_runs(home: Path) -> None:
    """Two rated configurations differing only in the system prompt, and one that only failed."""
    from playground.config import load_settings
    from playground.store import open_store
    from tests.history_fixtures import make_run

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLAYGROUND_HOME", str(home))
        patch.delenv("PLAYGROUND_CONFIG", raising=False)
        store = open_store(load_settings(Path(os.devnull)))
        for system, stars in (("Be brief.", 4), ("Answer in detail, citing the manual.", 2)):
            for _ in range(2):
                run = make_run(models=(LOCAL_MODEL,), system=system)
                store.runs.save_run(run)
                store.ratings.add_rating(run.results[0].id, stars, session_id="s")
        store.runs.save_run(make_run(models=("dead/m",), errors={"dead/m": "Cannot reach dead."}))


def test_the_compare_page_reads_as_words_with_distinct_labels(
    app_url: str, app_home: Path, page: Page, tmp_path: Path
) -> None:
    """Compare shows distinct labels, no "None", no cost axis for free runs, and an open link."""
    seed_rated_runs(app_home)
    open_app(page, app_url + "/compare", "Compare")
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible(timeout=RERUN_MS)  # charts and table come after the queries
    page.get_by_role("tab", name="Quality vs cost").click()
    expect(page.get_by_text("Every rated configuration cost $0 per call")).to_be_visible()
    page.get_by_role("tab", name="Stars per configuration").click()
    screenshot(page, tmp_path, "compare")
    rerun_after(page, lambda: table.click(position={"x": 18, "y": 52}))  # the first row's tick
    expect(page.get_by_role("heading", name=re.compile(r"^Runs of #1 "))).to_be_visible()
    runs = page.get_by_test_id("stDataFrame").nth(1)
    expect(runs).to_be_visible()
    runs.scroll_into_view_if_needed()
    screenshot(page, tmp_path, "compare-runs")
