"""Read-only rendering of stored runs, shared by the History and Shared run pages.

Everything stored came from outside (answers, errors, what people typed), so it is drawn through
ui.answer_markdown: answers and errors as Markdown that fetches nothing, values literally.
"""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from playground.formatting import metrics_line, when
from playground.history import (
    RatingSummary,
    baseline_first,
    config_diff,
    run_models,
)
from playground.records import Result, Run
from ui.answer_markdown import answer_markdown, inline_markdown, plain_markdown
from ui.conversation_view import examples_note, thread, turn_caption
from ui.response_format import show_result_answer
from ui.text_diff import diff_markdown

SHARED_PATH = "shared"
_PAGE_PATHS = ("history", "compare", SHARED_PATH, "playground")


def permalink(run_id: str, vs: str | None = None) -> str:
    """The URL that opens a run (or two runs side by side) read-only on the Shared run page."""
    query = urlencode({"run": run_id, "vs": vs} if vs else {"run": run_id})
    try:
        url = st.context.url or ""
    except Exception:  # no browser context (bare script, AppTest): fall back to a path
        url = ""
    base = url.rstrip("/")
    if base.rsplit("/", 1)[-1] in _PAGE_PATHS:
        base = base.rsplit("/", 1)[0]
    return f"{base}/{SHARED_PATH}?{query}"


def run_header(run: Run, notes: dict[str, str]) -> None:
    """When, where from, which models, the variables, and notes about unavailable models."""
    where = inline_markdown(run.source) + (
        f" · flow {inline_markdown(run.flow_name)} v{run.flow_version}" if run.flow_name else ""
    )
    models = ", ".join(inline_markdown(m) for m in run_models(run))
    st.caption(f"Run `{run.id}` · {when(run.created_at)} · {where} · {models}")
    if run.parent_run_id is not None:
        turn = run.results[0].turn if run.results else 2
        st.caption(
            f":material/forum: {turn_caption(run, turn)} (follows run "
            f"[{run.parent_run_id[:8]}]({permalink(run.parent_run_id)}))"
        )
    if run.variables:
        st.caption(
            "Variables: "
            + "; ".join(
                f"**{plain_markdown(k)}** = {plain_markdown(v)}" for k, v in run.variables.items()
            )
        )
    if run.retrieval is not None:
        st.caption(
            f"Knowledge store **{plain_markdown(run.retrieval.store)}**, top "
            f"{run.retrieval.top_k} chunks into {plain_markdown(run.retrieval.context_variable)}."
        )
    for note in notes.values():
        st.warning(
            f"{inline_markdown(note)}. The stored answers still show; a rerun would fail on "
            "this model.",
            icon=":material/warning:",
        )


def answer_card(
    result: Result, summary: RatingSummary | None, show_prompt: bool = False, key: str = "stored"
) -> None:
    """One answer: model and variant, text (formatted and raw) or error card, measurements."""
    with st.container(border=True):
        st.markdown(
            f"**{inline_markdown(result.model_id)}** · {inline_markdown(result.variant_name)}"
        )
        if show_prompt and result.user_template:
            st.caption(f"Prompt template: {plain_markdown(result.user_template)}")
        examples_note(result)
        thread(result, expanded=True)
        if result.error:
            st.error(answer_markdown(result.error), icon=":material/error:")
        else:  # as in the Playground: small headings and a Raw tab, or JSON with its mark
            show_result_answer(result, key=f"{key}_{result.id}")
        st.caption(metrics_line(result))
        summary = summary or RatingSummary()
        st.caption(summary.label())
        for comment in summary.comments:
            st.caption(f"💬 {plain_markdown(comment)}")


def run_answers(run: Run, summaries: dict[str, RatingSummary], per_row: int = 3) -> None:
    """The answers of a run in a grid, as they were shown when it ran."""
    if not run.results:
        st.info("This run has no saved answers (it may have been stopped before any finished).")
        return
    for start in range(0, len(run.results), per_row):
        columns = st.columns(per_row)
        for column, result in zip(columns, run.results[start : start + per_row], strict=False):
            with column:
                answer_card(result, summaries.get(result.id))


def run_view(run: Run, summaries: dict[str, RatingSummary], notes: dict[str, str]) -> None:
    """A whole run, read-only."""
    run_header(run, notes)
    run_answers(run, summaries)


def prompt_changes(old: Run, new: Run) -> None:
    """The two runs' prompts (system and user template of their first answer), word by word."""
    if not old.results or not new.results:
        return
    a, b = old.results[0], new.results[0]
    parts = [("System message", a.system_template, b.system_template)]
    parts.append(("User message", a.user_template, b.user_template))
    if all(before == after for _, before, after in parts):
        return
    with st.expander("Prompt changes, word by word", icon=":material/difference:"):
        st.caption(
            ":red[~~struck red~~] only in the baseline · :green[**green**] only in the newer"
        )
        for title, before, after in parts:
            st.markdown(f"**{title}**  \n{diff_markdown(before, after)}")


def comparison_view(
    a: Run, b: Run, summaries: dict[str, RatingSummary], notes: dict[str, str]
) -> None:
    """Two runs side by side, the older as baseline, with what changed spelled out."""
    old, new = baseline_first(a, b)
    changes = config_diff(old, new)
    st.markdown("**What changed from the baseline:**")
    if changes:
        st.markdown("\n".join(f"- {inline_markdown(change)}" for change in changes))
    else:
        st.markdown("- nothing in the configuration (same models, parameters and prompts)")
    prompt_changes(old, new)
    left, right = st.columns(2)
    for column, run, title in ((left, old, "Baseline (older)"), (right, new, "Newer")):
        with column:
            st.subheader(title)
            run_header(run, {m: n for m, n in notes.items() if m in run_models(run)})
            for result in run.results:
                answer_card(result, summaries.get(result.id), show_prompt=True, key="cmp")
