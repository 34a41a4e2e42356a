"""History: every run newest first; search, filter, open, rerun, compare, share, export."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st
from streamlit.errors import StreamlitAPIException

from playground.history import (
    HistoryFilters,
    HistoryPage,
    history_table,
    to_csv,
    to_json,
    unavailable_models,
)
from playground.records import Draft, Run
from ui.eval_history import dataset_button
from ui.resources import settings, store
from ui.stored_run_view import comparison_view, permalink, run_view

if TYPE_CHECKING:
    from playground.store import DataVersion

PAGE_KEY = "hist_page"


CURSORS = "hist_cursors"  # (filters, data version) -> {page: key of the last run before it}


@st.cache_data(max_entries=32, show_spinner=False)
def _history_page(
    url: str, filters: HistoryFilters, page: int, after: object, version: DataVersion
) -> HistoryPage:
    # Keyed by the store's data version: reruns that changed nothing skip the queries. The
    # version goes along: its deletion marker vouches for a capped count kept from before.
    return store().history.history_page(filters, page, after=after, version=version)  # type: ignore[arg-type]


def _load_page(filters: HistoryFilters, number: int, version: DataVersion) -> HistoryPage:
    """Page `number`, continuing from the last run of the page before when it was shown.

    Keyset pagination: the next page starts after the key of the last row seen, through the
    index, however deep it is. New data renumbers the pages, so the keys are kept per version.
    """
    tag = (filters, version)
    known = st.session_state.get(CURSORS)
    if not known or known[0] != tag:
        known = st.session_state[CURSORS] = (tag, {})
    cursors: dict[int, object] = known[1]
    loaded = _history_page(db.url, filters, number, cursors.get(number), version)
    if loaded.last_key is not None:
        cursors[number + 1] = loaded.last_key
    return loaded


@st.cache_data(max_entries=4, show_spinner=False)
def _model_ids(url: str, version: object) -> list[str]:
    return store().history.model_ids()


def _reset_page() -> None:
    # New filters mean new rows: go back to page 1 and forget row selections.
    st.session_state[PAGE_KEY] = 1
    for key in [k for k in st.session_state if str(k).startswith("hist_table_")]:
        del st.session_state[key]


EDITOR_KEY = "pg_variant_ids"  # present once the Playground's editor holds something
PENDING_CONVERSATION = "pending_conversation"  # a run id the Playground shows to follow up


def _open_in_playground(run: Run, notes: dict[str, str], autorun: bool) -> None:
    draft = Draft.from_run(run)
    if notes:
        draft.note = f"{draft.note} {'; '.join(notes.values())}."
    st.session_state["pending_draft"] = draft
    if autorun:
        st.session_state["pending_autorun"] = True
    try:
        st.switch_page("views/playground_page.py")
    except StreamlitAPIException:  # page not routed (e.g. this page opened alone)
        st.info("Loaded into the editor; open the Playground page to continue.")


ASKING = "hist_asking"  # (run id, autorun) while the question below is open


def _ask(run: Run, notes: dict[str, str], autorun: bool) -> None:
    """Open the question; it stays open across reruns until answered or dismissed."""
    st.session_state[ASKING] = (run.id, autorun)


def _stop_asking() -> None:
    st.session_state.pop(ASKING, None)


@st.dialog("Replace the Playground's editor?", on_dismiss=_stop_asking)
def _confirm_replace(run: Run, notes: dict[str, str], autorun: bool) -> None:
    """Ask before a stored run replaces what is in the Playground's editor."""
    st.write(
        f"The prompts, models, parameters and variables of run `{run.id[:8]}` replace what "
        "the Playground's editor holds now"
        + (", and run at once." if autorun else ".")
        + " What you typed there is not kept."
    )
    yes, no = st.columns(2)
    label = "Replace and run" if autorun else "Replace the editor"
    if yes.button(label, key="hist_confirm_replace", type="primary", width="stretch"):
        _stop_asking()
        _open_in_playground(run, notes, autorun)
    if no.button("Cancel", key="hist_cancel_replace", width="stretch"):
        _stop_asking()
        st.rerun()


st.title("History")
st.caption("Every run from the app and the command line, newest first.")

db = store()
version = db.history.data_version()
search_col, model_col, stars_col, from_col, to_col = st.columns([3, 2, 1, 1, 1])
text = search_col.text_input("Search prompts and answers", key="hist_search", on_change=_reset_page)
model = model_col.selectbox(
    "Model", [None, *_model_ids(db.url, version)], key="hist_model", on_change=_reset_page,
    format_func=lambda m: "All models" if m is None else m,
)  # fmt: skip
min_stars = stars_col.selectbox(
    "Rated at least", [None, 1, 2, 3, 4, 5], key="hist_min_stars", on_change=_reset_page,
    format_func=lambda s: "Any" if s is None else "★" * s,
)  # fmt: skip
date_from = from_col.date_input("From", value=None, key="hist_from", on_change=_reset_page)
date_to = to_col.date_input("To", value=None, key="hist_to", on_change=_reset_page)
filters = HistoryFilters(text, model, min_stars, date_from, date_to)

page = _load_page(filters, int(st.session_state.get(PAGE_KEY, 1)), version)
if page.page > page.pages:  # the filters shrank the result below the page we were on
    st.session_state[PAGE_KEY] = page.pages
    page = _load_page(filters, page.pages, version)

if not page.runs:
    if page.total == 0 and not any([text, model, min_stars, date_from, date_to]):
        st.info("No runs yet. Run a prompt in the Playground or with `playground run`.")
    else:
        st.info("No run matches these filters.")
    st.stop()

event = st.dataframe(
    history_table(page),
    key=f"hist_table_{page.page}",
    on_select="rerun",
    selection_mode="multi-row",
    hide_index=True,
    column_config={"run": st.column_config.TextColumn(width="small")},
)
nav_left, nav_right = st.columns([1, 3], vertical_alignment="bottom")
nav_left.number_input(
    f"Page (of {page.pages})", min_value=1, max_value=page.pages, step=1, key=PAGE_KEY
)
nav_right.caption(
    f"{page.matches()}. Select one row to open it, or two to compare them side by side."
)

selected = [page.runs[i] for i in event.selection.rows if i < len(page.runs)]
if len(selected) == 1:
    run = selected[0]
    notes = unavailable_models([r.model_id for r in run.results], settings())
    st.subheader(f"Run {run.id[:8]}")
    open_col, rerun_col, continue_col, _ = st.columns([1, 1, 1, 1])
    # What the Playground's editor holds would be lost: ask first (a fresh session has none).
    go = _ask if EDITOR_KEY in st.session_state else _open_in_playground
    if open_col.button("Open in Playground", key="hist_open", icon=":material/edit:"):
        go(run, notes, autorun=False)
    if rerun_col.button(
        "Rerun as it was",
        key="hist_rerun",
        icon=":material/replay:",
        help="Run the same prompt, models and parameters again in the Playground.",
    ):
        go(run, notes, autorun=True)
    if continue_col.button(
        "Continue the conversation",
        key="hist_continue",
        icon=":material/forum:",
        disabled=not any(r.ok for r in run.results),  # no answer: no thread to continue
        help="Show these answers in the Playground with a follow-up box; the editor stays.",
    ):
        st.session_state[PENDING_CONVERSATION] = run.id
        try:
            st.switch_page("views/playground_page.py")
        except StreamlitAPIException:  # page not routed (e.g. this page opened alone)
            st.info("Open the Playground page to continue the conversation.")
    asking = st.session_state.get(ASKING)
    if asking is not None and asking[0] == run.id:
        _confirm_replace(run, notes, autorun=asking[1])
    st.caption("Permalink (read-only):")
    st.code(permalink(run.id), language=None)
    run_view(run, page.ratings, notes)
elif len(selected) == 2:
    first, second = selected
    notes = unavailable_models([r.model_id for run in selected for r in run.results], settings())
    st.subheader("Side by side")
    st.caption("Permalink (read-only):")
    older, newer = sorted(selected, key=lambda r: (r.created_at, r.id))
    st.code(permalink(older.id, vs=newer.id), language=None)
    comparison_view(first, second, page.ratings, notes)
elif len(selected) > 2:
    st.warning("Select one run to open it, or two to compare them.")
dataset_button(selected, page.ratings)  # evaluation: the selected runs as a dataset

with st.expander("Export", icon=":material/download:"):
    st.caption("Answers of the runs that match the filters (all pages), every rating, every vote.")
    cols = st.columns(4)
    cols[0].download_button(
        "Answers CSV", data=lambda: to_csv(db.exports.export_results(filters)),
        file_name="runs.csv", mime="text/csv", key="hist_dl_runs_csv", on_click="ignore",
    )  # fmt: skip
    cols[1].download_button(
        "Answers JSON", data=lambda: to_json(db.exports.export_results(filters)),
        file_name="runs.json", mime="application/json", key="hist_dl_runs_json",
        on_click="ignore",
    )  # fmt: skip
    cols[2].download_button(
        "Ratings CSV", data=lambda: to_csv(db.exports.export_ratings()),
        file_name="ratings.csv", mime="text/csv", key="hist_dl_ratings_csv", on_click="ignore",
    )  # fmt: skip
    cols[3].download_button(
        "Ratings + votes JSON",
        data=lambda: to_json(
            {"ratings": db.exports.export_ratings(), "votes": db.exports.export_preferences()}
        ),
        file_name="ratings.json", mime="application/json", key="hist_dl_ratings_json",
        on_click="ignore",
    )  # fmt: skip
