"""Read-only rendering of stored runs, shared by the History and Shared run pages."""

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
from ui.response_format import show_result_answer

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
    where = f"{run.source}" + (
        f" · flow {run.flow_name} v{run.flow_version}" if run.flow_name else ""
    )
    st.caption(f"Run `{run.id}` · {when(run.created_at)} · {where} · " + ", ".join(run_models(run)))
    if run.variables:
        st.caption("Variables: " + "; ".join(f"**{k}** = {v}" for k, v in run.variables.items()))
    if run.retrieval is not None:
        st.caption(
            f"Knowledge store **{run.retrieval.store}**, top {run.retrieval.top_k} chunks "
            f"into `{run.retrieval.context_variable}`."
        )
    for note in notes.values():
        st.warning(
            f"{note}. The stored answers still show; a rerun would fail on this model.",
            icon=":material/warning:",
        )


def answer_card(result: Result, summary: RatingSummary | None, show_prompt: bool = False) -> None:
    """One answer: model and variant, text or error card, measurements, ratings."""
    with st.container(border=True):
        st.markdown(f"**{result.model_id}** · {result.variant_name}")
        if show_prompt and result.user_template:
            st.caption(f"Prompt template: {result.user_template}")
        if result.error:
            st.error(result.error, icon=":material/error:")
        elif result.format_check is not None:  # a JSON answer: formatted, with its mark
            show_result_answer(result, key=f"stored_{result.id}")
        else:
            st.markdown(result.text or "_(empty answer)_")
        st.caption(metrics_line(result))
        summary = summary or RatingSummary()
        st.caption(summary.label())
        for comment in summary.comments:
            st.caption(f"💬 {comment}")


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


def comparison_view(
    a: Run, b: Run, summaries: dict[str, RatingSummary], notes: dict[str, str]
) -> None:
    """Two runs side by side, the older as baseline, with what changed spelled out."""
    old, new = baseline_first(a, b)
    changes = config_diff(old, new)
    st.markdown("**What changed from the baseline:**")
    if changes:
        st.markdown("\n".join(f"- {change}" for change in changes))
    else:
        st.markdown("- nothing in the configuration (same models, parameters and prompts)")
    left, right = st.columns(2)
    for column, run, title in ((left, old, "Baseline (older)"), (right, new, "Newer")):
        with column:
            st.subheader(title)
            run_header(run, {m: n for m, n in notes.items() if m in run_models(run)})
            for result in run.results:
                answer_card(result, summaries.get(result.id), show_prompt=True)
