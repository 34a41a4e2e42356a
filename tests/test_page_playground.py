"""The Playground page, driven through Streamlit's AppTest with real models."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.config import load_settings
from playground.models.base import Message, ModelParams
from playground.records import Draft, PromptVariant, Result, RetrievedChunk, Run
from playground.store import open_store
from tests.support import FaultServer, free_port
from ui.live_run import FINAL_STATES, CellState

PAGE = str(Path(__file__).resolve().parent.parent / "views" / "playground_page.py")
LOCAL = "local/smollm2-135m-instruct"
SERVER = "srv/smollm2-135m-instruct"


def page() -> AppTest:
    """A fresh Playground page with a generous timeout for real generations."""
    return AppTest.from_file(PAGE, default_timeout=90)


def short_answers(at: AppTest, *model_ids: str) -> None:
    """Keep generations short so the suite stays fast."""
    for model_id in model_ids:
        at.session_state[f"pg_p_{model_id}_max_tokens"] = 12
        at.session_state[f"pg_p_{model_id}_temperature"] = 0.0
        at.session_state[f"pg_p_{model_id}_seed"] = 7


LIVE_STATES = [str(s) for s in CellState if s not in FINAL_STATES] + ["preparing"]


def drawn_live(at: AppTest) -> bool:
    """True while the page as last drawn shows a cell still running (its state line)."""
    return any(c.value.split(" · ")[0].endswith(tuple(LIVE_STATES)) for c in at.caption)


def wait_for_answers(at: AppTest, timeout: float = 90) -> AppTest:
    """Rerun the page (as its polling would) until no cell is running; then draw it once more."""
    deadline = time.monotonic() + timeout
    if "run_view" not in at.session_state:
        return at  # nothing started (e.g. the click was refused): keep the page as it is
    if not at.session_state["run_view"].live and not drawn_live(at):
        return at  # already drawn finished
    while at.session_state["run_view"].live:
        assert time.monotonic() < deadline, "the run did not finish in time"
        time.sleep(0.2)
        at.run()
    return at.run()


def run_and_wait(at: AppTest) -> AppTest:
    """Press Run and wait until every answer has ended."""
    at.button(key="btn_run").click().run()
    return wait_for_answers(at)


def metric_captions(at: AppTest) -> list[str]:
    """The metrics lines shown under answers."""
    return [c.value for c in at.caption if c.value.startswith("TTFT")]


@pytest.fixture
def server_config(write_config: Callable[[str], Path], llama_server: str) -> Path:
    """playground.toml with the real llama.cpp server as endpoint `srv`."""
    return write_config(
        f'[endpoints.srv]\nbase_url = "{llama_server}"\nmodels = ["smollm2-135m-instruct"]\n'
    )


def test_fresh_page_offers_the_embedded_model_with_no_key(home: Path) -> None:
    at = page().run()
    assert not at.exception
    assert at.multiselect(key="pg_models").value == [LOCAL]
    assert at.text_area(key="pg_var_question").value  # the sample question is ready to run
    assert any("openai" in c.value for c in at.caption)  # says how to light OpenAI up


def test_two_models_answer_side_by_side_with_metrics(home: Path, server_config: Path) -> None:
    at = page().run()
    at.multiselect(key="pg_models").set_value([LOCAL, SERVER])
    at.run()
    short_answers(at, LOCAL, SERVER)
    at.text_area(key="pg_var_question").set_value("What colour is grass?")
    run_and_wait(at)
    assert not at.exception
    assert not at.error
    headings = [m.value for m in at.markdown]
    assert f"**{LOCAL}**" in headings and f"**{SERVER}**" in headings
    captions = metric_captions(at)
    assert len(captions) == 2
    assert all("tok/s" in c and "$0" in c for c in captions)
    stored = open_store(load_settings()).runs.recent_runs(limit=5)
    assert len(stored) == 1
    assert {r.model_id for r in stored[0].results} == {LOCAL, SERVER}
    assert stored[0].variables == {"question": "What colour is grass?"}
    assert all(r.text for r in stored[0].results)


def test_dead_endpoint_shows_an_error_card_while_the_other_model_answers(
    home: Path, write_config: Callable[[str], Path]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    write_config(f'[endpoints.dead]\nbase_url = "{dead}"\nmodels = ["m"]\nmax_retries = 0\n')
    at = page().run()
    at.multiselect(key="pg_models").set_value([LOCAL, "dead/m"]).run()
    short_answers(at, LOCAL)
    run_and_wait(at)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1
    assert errors[0].startswith("Cannot reach") and "dead/m" in errors[0]
    assert len(metric_captions(at)) == 1  # the local model still answered


def test_failing_server_is_retried_and_explained_in_its_column(
    home: Path, write_config: Callable[[str], Path], fault_server: FaultServer
) -> None:
    write_config(
        f'[endpoints.flaky]\nbase_url = "{fault_server.url("500")}"\nmodels = ["m"]\n'
        "max_retries = 1\n"
    )
    at = page().run()
    at.multiselect(key="pg_models").set_value([LOCAL, "flaky/m"]).run()
    short_answers(at, LOCAL)
    run_and_wait(at)
    errors = [e.value for e in at.error]
    assert errors == [
        f"flaky/m failed with a server error (500) at {fault_server.url('500')} after 1 retry; "
        "try again later."
    ]
    assert len(metric_captions(at)) == 1


def test_template_syntax_error_is_one_sentence_and_nothing_runs(home: Path) -> None:
    at = page().run()
    at.text_area(key="pg_v0_user").set_value("Tell me about {{ topic ")
    run_and_wait(at)
    assert not at.exception
    message = (
        "Template syntax error in the user message on line 1: `{{` is never closed with `}}`; "
        "fix the template and run again."
    )  # defect 16: in the project's words, not Jinja's "expected 'end of print statement'"
    assert [e.value for e in at.error] == [message]
    assert open_store(load_settings()).runs.count_runs() == 0
    # the question field vanished with the broken template: a note says why
    assert "pg_var_question" not in [t.key for t in at.text_area]
    assert [w.value for w in at.warning] == [
        f"The variables of variant “default” are not shown while its user message is broken. "
        f"{message}"
    ]


def test_run_errors_show_next_to_the_run_button(home: Path) -> None:
    """Defect 16: an error from Run is drawn right under the button, not far up the page."""
    at = page().run()
    at.text_area(key="pg_var_question").set_value("   ")
    run_and_wait(at)
    (side,) = [c for c in at.columns if "btn_run" in [b.key for b in c.button]]
    assert [e.value for e in side.error] == [
        "Variable 'question' in the user message is empty; fill it in and run again."
    ]


def test_empty_variable_is_refused_before_anything_is_sent(home: Path) -> None:
    at = page().run()
    at.text_area(key="pg_var_question").set_value("   ")
    run_and_wait(at)
    assert [e.value for e in at.error] == [
        "Variable 'question' in the user message is empty; fill it in and run again."
    ]
    assert not metric_captions(at)


def test_variables_appear_as_fields_when_templates_use_them(home: Path) -> None:
    at = page().run()
    at.text_area(key="pg_v0_user").set_value("Write a {{ tone }} haiku about {{ topic }}.")
    at.run()
    labels = [t.label for t in at.text_area]
    assert "tone" in labels and "topic" in labels
    assert labels.index("tone") < labels.index("topic")


def test_variants_times_models_make_a_grid(home: Path, server_config: Path) -> None:
    at = page().run()
    at.button(key="btn_add_variant").click().run()
    at.text_input(key="pg_v1_name").set_value("terse")
    at.text_area(key="pg_v1_system").set_value("Answer in three words.")
    at.multiselect(key="pg_models").set_value([LOCAL, SERVER]).run()
    short_answers(at, LOCAL, SERVER)
    started = time.perf_counter()
    run_and_wait(at)
    assert not at.exception and not at.error
    assert len(metric_captions(at)) == 4
    assert "#### terse" in [m.value for m in at.markdown]
    run = open_store(load_settings()).runs.recent_runs(limit=1)[0]
    assert sorted((r.variant_name, r.model_id) for r in run.results) == sorted(
        (v, m) for v in ("default", "terse") for m in (LOCAL, SERVER)
    )
    assert time.perf_counter() - started < 60


def test_blind_mode_hides_model_names_until_revealed(home: Path, server_config: Path) -> None:
    at = page().run()
    at.multiselect(key="pg_models").set_value([LOCAL, SERVER]).run()
    short_answers(at, LOCAL, SERVER)
    at.toggle(key="pg_blind").set_value(True)
    run_and_wait(at)
    headings = [m.value for m in at.markdown if m.value.startswith("**")]
    assert sorted(headings) == ["**Answer A**", "**Answer B**"]
    assert not any(LOCAL in h or SERVER in h for h in headings)
    at.button(key="btn_reveal").click().run()
    headings = [m.value for m in at.markdown if m.value.startswith("**")]
    assert sorted(headings) == sorted([f"**{LOCAL}**", f"**{SERVER}**"])


def test_model_output_is_shown_as_text_not_html(home: Path) -> None:
    settings = load_settings()
    store = open_store(settings)
    result = Result(
        model_id=LOCAL,
        messages=[Message(role="user", content="x")],
        params=ModelParams(),
        user_template="x",
        text="<script>alert(1)</script><b>bold</b>",
    )
    run = Run(results=[result])
    store.runs.save_run(run)
    from ui.run_view import RunView

    at = page()
    at.session_state["run_view"] = RunView.start(store.runs.get_run(run.id), blind=False)
    at.run()
    answer = next(m for m in at.markdown if "alert" in m.value)
    assert not answer.allow_html  # rendered as markdown text, raw HTML stays escaped


def test_loading_a_stored_run_restores_the_editor_and_flags_missing_models(home: Path) -> None:
    draft = Draft(
        variants=[PromptVariant("kind", "Be kind.", "Hello {{ name }}", "a note")],
        model_ids=[LOCAL, "gone/model"],
        params={LOCAL: ModelParams(temperature=0.3, max_tokens=33)},
        variables={"name": "Ada"},
        note="Loaded run 1234abcd.",
    )
    at = page()
    at.session_state["pending_draft"] = draft
    at.run()
    assert not at.exception
    assert at.text_input(key="pg_v0_name").value == "kind"
    assert at.text_area(key="pg_v0_user").value == "Hello {{ name }}"
    assert at.text_area(key="pg_var_name").value == "Ada"
    assert at.multiselect(key="pg_models").value == [LOCAL]
    assert at.number_input(key=f"pg_p_{LOCAL}_max_tokens").value == 33
    assert any("gone/model is no longer available" in w.value for w in at.warning)
    assert any("Loaded run 1234abcd." in i.value for i in at.info)


def test_answers_can_be_rated_and_voted_on_right_after_the_run(
    home: Path, server_config: Path
) -> None:
    at = page().run()
    at.multiselect(key="pg_models").set_value([LOCAL, SERVER]).run()
    short_answers(at, LOCAL, SERVER)
    run_and_wait(at)
    run = open_store(load_settings()).runs.recent_runs(limit=1)[0]
    first, second = run.results
    vote_key = f"vote_{run.id}_default"
    vote = at.button_group(key=vote_key)  # the vote appears without another click
    vote.set_value(second.id).run()
    at.feedback(key=f"rate_{first.id}_stars").set_value(3).run()
    assert not at.exception and not at.error
    store = open_store(load_settings())
    assert store.ratings.rating_summaries([first.id])[first.id].mean == 4.0
    assert [(p["winner_result_id"], p["outcome"]) for p in store.exports.export_preferences()] == [
        (second.id, "win")
    ]


def test_knowledge_fills_the_context_and_each_answer_is_scored(home: Path) -> None:
    from playground.rag.sample import SAMPLE_STORE, load_sample_store

    load_sample_store(load_settings())
    at = page().run()
    at.text_area(key="pg_v0_system").set_value("Answer only from the context.")
    at.text_area(key="pg_v0_user").set_value("{{ question }}\n\nContext:\n{{ context }}")
    at.toggle(key="pg_use_rag").set_value(True).run()
    assert at.selectbox(key="pg_store").value == SAMPLE_STORE
    assert "context" not in [t.label for t in at.text_area]  # retrieval fills it, not the user
    at.slider(key="pg_top_k").set_value(3)
    at.text_area(key="pg_var_question").set_value("How long is the warranty on the tents?")
    short_answers(at, LOCAL)
    run_and_wait(at)
    assert not at.exception and not at.error
    assert any(e.label.startswith("Retrieved context · 3 chunks") for e in at.expander)
    (metrics,) = metric_captions(at)
    assert " · grounded " in metrics
    run = open_store(load_settings()).runs.recent_runs(limit=1)[0]
    (result,) = run.results
    assert run.retrieval is not None and run.retrieval.store == SAMPLE_STORE
    assert len(result.chunk_ids or []) == 3
    assert result.groundedness is not None
    assert "Context:" in result.messages[-1].content
    assert run.retrieved[0].text in result.messages[-1].content


def test_a_missing_store_is_one_sentence_and_nothing_runs(home: Path) -> None:
    from playground.rag.sample import load_sample_store

    load_sample_store(load_settings(), name="gone-soon")
    at = page().run()
    at.toggle(key="pg_use_rag").set_value(True).run()
    from playground.rag.retrieval import knowledge_base

    knowledge_base(load_settings()).delete_store("gone-soon")
    run_and_wait(at)
    assert not at.exception
    assert len(at.error) == 1 and "gone-soon" in at.error[0].value
    assert open_store(load_settings()).runs.count_runs() == 0


def test_twelve_models_stream_at_once_not_one_after_another(
    home: Path, write_config: Callable[[str], Path], fault_server: FaultServer
) -> None:
    import shutil

    shutil.copytree(Path(PAGE).parent.parent / ".streamlit", Path.cwd() / ".streamlit")
    names = [f"m{i}" for i in range(1, 13)]
    write_config(
        f'[endpoints.slow]\nbase_url = "{fault_server.url("slow")}"\n'
        f"models = {names!r}\nmax_retries = 0\n".replace("'", '"')
    )
    at = page().run()
    at.multiselect(key="pg_models").set_value([f"slow/{n}" for n in names]).run()
    started = time.perf_counter()
    run_and_wait(at)
    wall = time.perf_counter() - started
    assert not at.exception and not at.error
    assert len(metric_captions(at)) == 12
    assert wall < 9, f"12 models answering after 1 s each took {wall:.1f} s"  # serial: 12+ s


def test_twenty_four_models_answer_in_one_wave_with_their_own_parameters(
    home: Path, write_config: Callable[[str], Path], fault_server: FaultServer
) -> None:
    names = [f"m{i}" for i in range(1, 25)]
    write_config(
        f'[endpoints.slow]\nbase_url = "{fault_server.url("slow")}"\n'
        f"models = {names!r}\nmax_retries = 0\n".replace("'", '"')
    )
    at = page().run()
    at.multiselect(key="pg_models").set_value([f"slow/{n}" for n in names]).run()
    at.session_state["pg_p_slow/m7_max_tokens"] = 9  # its panel is closed: the value still counts
    before = len(fault_server.arrivals)

    run_and_wait(at)

    assert not at.exception and not at.error
    assert len(metric_captions(at)) == 24
    view = at.session_state["run_view"]
    # In waves, a later wave's requests leave only once an earlier answer (1 s) has come back.
    arrivals = fault_server.arrivals[before:]
    spread = max(arrivals) - min(arrivals)
    assert len(arrivals) == 24 and spread < 1.0, f"requests {spread:.1f} s apart: in waves"
    params = {r.model_id: r.params.max_tokens for r in view.run.results}
    assert params["slow/m7"] == 9 and params["slow/m8"] == 256


def test_answers_show_their_moderation_verdict_when_an_endpoint_is_configured(
    home: Path, write_config: Callable[[str], Path], fault_server: FaultServer
) -> None:
    write_config(f'[moderation]\nbase_url = "{fault_server.url("ok")}"\n')
    at = page().run()
    short_answers(at, LOCAL)
    run_and_wait(at)
    (metrics,) = metric_captions(at)
    assert metrics.endswith(" · moderation ok")
    stored = open_store(load_settings()).runs.recent_runs(limit=1)[0].results[0]
    assert stored.moderation is not None


def test_rerun_as_it_was_runs_the_loaded_draft_without_a_click(home: Path) -> None:
    draft = Draft(
        variants=[PromptVariant("default", "", "Say {{ word }}.")],
        model_ids=[LOCAL],
        params={LOCAL: ModelParams(temperature=0.0, seed=7, max_tokens=8)},
        variables={"word": "hello"},
    )
    at = page()
    at.session_state["pending_draft"] = draft
    at.session_state["pending_autorun"] = True
    at.run()
    wait_for_answers(at)
    assert not at.exception and not at.error
    assert len(metric_captions(at)) == 1
    (run,) = open_store(load_settings()).runs.recent_runs(limit=5)
    assert run.variables == {"word": "hello"}
    assert run.results[0].messages[-1].content == "Say hello."
    assert run.results[0].params.max_tokens == 8


def cell_captions(at: AppTest) -> list[str]:
    """The state lines of running cells ('streaming · 12 tokens · 1.3 s')."""
    states = ("waiting", "loading", "retrieving", "streaming", "done", "stopped", "failed")
    return [c.value for c in at.caption if any(s in c.value for s in states) and " s" in c.value]


def start_long_local_answer(at: AppTest) -> None:
    """Ask the local model for a long answer and wait until its first tokens have streamed."""
    at.session_state[f"pg_p_{LOCAL}_max_tokens"] = 400
    at.text_area(key="pg_var_question").set_value("Write a long story about a lighthouse keeper.")
    at.button(key="btn_run").click().run()
    deadline = time.monotonic() + 60
    while not any("streaming" in c for c in cell_captions(at)):
        assert time.monotonic() < deadline, "no token streamed"
        time.sleep(0.2)
        at.run()


def test_running_cells_show_their_state_tokens_and_elapsed_time(home: Path) -> None:
    at = page().run()
    start_long_local_answer(at)
    (line,) = cell_captions(at)
    assert re.search(r"streaming · \d+ tokens? · \d+\.\d s$", line), line
    assert not at.get("feedback")  # no rating controls under an answer still streaming
    at.button(key="btn_stop").click().run()
    wait_for_answers(at)


def test_stop_keeps_and_saves_the_partial_answer_marked_stopped(home: Path) -> None:
    at = page().run()
    start_long_local_answer(at)
    at.button(key="btn_stop").click().run()
    wait_for_answers(at)
    assert not at.exception
    warnings = [w.value for w in at.warning]
    # what the page showed instead, should the stop not have been seen (once in CI)
    shown = (warnings, [e.value for e in at.error], [c.value for c in at.caption])
    assert len(warnings) == 1, shown
    (warning,) = warnings
    assert re.fullmatch(r"Stopped after \d+ tokens?; the partial answer is kept\.", warning)
    (run,) = open_store(load_settings()).runs.recent_runs(limit=5)
    (result,) = run.results
    assert result.error == warning and result.text  # saved, partial text and all
    assert any(result.text[:20] in m.value for m in at.markdown)


def shown_run(results: list[Result], blind: bool = False) -> AppTest:
    """The page drawing a finished run made of these results (saved, as after a real run)."""
    from ui.run_view import RunView

    run = Run(results=results)
    open_store(load_settings()).runs.save_run(run)
    at = page()
    at.session_state["run_view"] = RunView.start(run, blind=blind)
    return at.run()


def answer(model_id: str, variant: str = "default", **fields: object) -> Result:
    """A finished cell."""
    values: dict[str, object] = {
        "text": "Hello there.",
        "ttft_ms": 80.0,
        "latency_ms": 300.0,
    }
    values.update(fields)
    return Result(
        model_id=model_id,
        messages=[Message(role="user", content="hi")],
        params=ModelParams(),
        variant_name=variant,
        user_template="hi",
        **values,  # type: ignore[arg-type]
    )


def all_text(at: AppTest) -> str:
    """Every piece of text the page shows."""
    kinds = ("markdown", "caption", "error", "warning", "info", "subheader", "expander")
    parts = [
        str(getattr(e, "value", "") or getattr(e, "label", "")) for k in kinds for e in at.get(k)
    ]
    parts += [str(getattr(e, "label", "")) for e in at.get("button_group")]
    # the editor names the models the person picked; blind mode hides which answer is whose
    return "\n".join(p for p in parts if not p.startswith("Parameters · "))


def test_one_best_answer_control_per_variant_each_named(home: Path) -> None:
    """Defect 8: two identical "Best answer" controls with no variant named."""
    from playground.models.base import Usage

    cells = [answer(m, v, usage=Usage(5, 5)) for v in ("default", "terse") for m in (LOCAL, SERVER)]
    at = shown_run(cells)
    assert not at.exception
    labels = [e.label for e in at.get("button_group")]
    assert labels == ["Best answer · default", "Best answer · terse"]


def test_blind_mode_names_no_model_in_errors_or_estimated_counts(home: Path) -> None:
    """Defect 11: an error card named the model, and "~" told endpoints from the local model."""
    from playground.models.base import Usage

    endpoint = "myserver/llama3.2"
    failed = f"Cannot reach {endpoint} at http://127.0.0.1:9/v1; start it or fix its base_url."
    cells = [
        answer(LOCAL, usage=Usage(12, 7, estimated=False)),
        answer("other/m", text="A plain answer.", usage=Usage(12, 7, estimated=True)),
        answer(endpoint, text="", error=failed),
    ]
    at = shown_run(cells, blind=True)
    assert not at.exception
    shown = all_text(at)
    for name in (LOCAL, "other/m", endpoint, "myserver", "llama", "smollm"):
        assert name not in shown, name
    assert not re.search(r"~\d", shown)  # no "~12 in": estimated counts come from endpoints
    assert "$" not in shown  # a cost tells a paid endpoint from a free local model
    (card,) = [e.value for e in at.error]
    assert "reveal" in card.lower()
    at.button(key="btn_reveal").click().run()
    assert [e.value for e in at.error] == [failed]
    assert "~12 in / ~7 out" in all_text(at)


def test_the_cost_of_a_run_is_estimated_before_it_is_sent(
    home: Path, write_config: Callable[[str], Path]
) -> None:
    """Comfort: with prices configured, the page says what Run would cost at most."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    write_config(
        f'[endpoints.paid]\nbase_url = "{dead}"\nmodels = ["m", "n"]\nmax_retries = 0\n\n'
        '[prices."paid/m"]\ninput = 1.0\noutput = 2.0\n'
    )
    at = page().run()
    assert not [c for c in at.caption if "Estimated cost" in c.value]  # local only: free
    at.multiselect(key="pg_models").set_value([LOCAL, "paid/m", "paid/n"]).run()
    at.number_input(key="pg_p_paid/m_max_tokens").set_value(100).run()
    prompt = "You are a helpful assistant. Answer in two sentences." + "Why is the sky blue?"
    expected = (round(len(prompt) / 4) * 1.0 + 100 * 2.0) / 1e6
    (caption,) = [c.value for c in at.caption if "Estimated cost" in c.value]
    assert caption == (
        f":material/payments: Estimated cost: up to ${expected:.6f} for paid/m (prompt tokens "
        "estimated, answers at their max_tokens); price unknown for paid/n."
    )
    assert open_store(load_settings()).runs.count_runs() == 0  # nothing was sent


def test_retrieved_chunks_show_whole_with_their_source_and_no_none(home: Path) -> None:
    """Defect 10: the context table said "page None" and cut every chunk to one line."""
    from ui.run_view import RunView

    long_text = "The trail tent is waterproof to 3000 mm. " * 6 + "Seams are taped."
    run = Run(results=[answer(LOCAL)])
    run.retrieved = [
        RetrievedChunk("c1", long_text, "tents.md", None, 0.8123),
        RetrievedChunk("c2", "Warranty: 2 years.", "manual.pdf", 3, 0.5),
    ]
    open_store(load_settings()).runs.save_run(run)
    at = page()
    at.session_state["run_view"] = RunView.start(run, blind=False)
    at.run()
    assert not at.exception
    (expander,) = [e for e in at.expander if e.label.startswith("Retrieved context")]
    captions = [c.value for c in expander.caption]
    assert captions == ["1 · tents\\.md · score 0.812", "2 · manual\\.pdf, page 3 · score 0.500"]
    quoted = [m.value for m in expander.markdown]
    assert quoted[0].endswith("Seams are taped\\.") and len(quoted[0]) > len(long_text)
    assert "None" not in all_text(at)


def test_two_answers_can_be_diffed_word_by_word(home: Path) -> None:
    """Comfort: a text diff of two answers of the run on screen."""
    at = shown_run(
        [answer(LOCAL, text="The sky is blue."), answer(SERVER, text="The sky is grey.")]
    )
    (expander,) = [e for e in at.expander if e.label == "Compare two answers"]
    assert [s.value for s in expander.selectbox] == [LOCAL, SERVER]
    assert "The sky is :red[~~blue\\.~~] :green[**grey\\.**]" in [
        m.value for m in expander.markdown
    ]
