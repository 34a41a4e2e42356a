"""Rating widgets for the Playground: stars + comment under each answer, a best-answer vote.

Both save the moment the user acts (in the widget callback), as new rows tagged with this
browser session, so two people rating at once never overwrite each other. A failed save
shows an error under the widget and never breaks the page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import streamlit as st

from playground.errors import PlaygroundError
from playground.records import Result, Run
from ui.answer_markdown import plain_markdown
from ui.resources import session_id, store

ALL_GOOD = "__all_good__"
ALL_BAD = "__all_bad__"


def _status_key(key: str) -> str:
    return f"{key}__status"


def _guarded(key: str, save: Callable[[], None]) -> None:
    # Ratings must never crash a demo: report a failed save beside the widget instead.
    try:
        save()
    except PlaygroundError as exc:  # StoreError included
        st.session_state[_status_key(key)] = ("error", f"Not saved: {exc}")
    else:
        st.session_state[_status_key(key)] = ("saved", "saved")


def _show_status(key: str) -> None:
    status = st.session_state.get(_status_key(key))
    if status is None:
        return
    kind, text = status
    if kind == "error":
        st.error(text, icon=":material/error:")
    else:
        st.caption(f":material/check: {text}")


def _save_rating(result_id: str, key: str) -> None:
    stars_index = st.session_state.get(f"{key}_stars")
    comment = st.session_state.get(f"{key}_comment") or None
    stars = None if stars_index is None else int(stars_index) + 1
    if stars is None and not comment:
        return  # clearing the stars with no comment: nothing to record
    # Each row is this session's full state for the answer (stars and comment together), so
    # the latest row alone says what this session thinks.
    _guarded(key, lambda: store().ratings.add_rating(result_id, stars, comment, session_id()))


def _recalled(key: str) -> bool:
    return f"{key}_stars" in st.session_state or f"{key}_comment" in st.session_state


def _recall(key: str, stars: int | None, comment: str | None) -> None:
    """Put an earlier rating into the widgets' state (a blank comment marks 'looked up')."""
    if stars is not None:
        st.session_state[f"{key}_stars"] = stars - 1
    st.session_state[f"{key}_comment"] = comment or ""


def recall_session_ratings(keys: Mapping[str, str]) -> None:
    """This session's earlier ratings of many answers (result id -> widget key), one query.

    A grid of 48 answers would otherwise ask the store 48 times before drawing.
    """
    wanted = {result_id: key for result_id, key in keys.items() if not _recalled(key)}
    if not wanted:
        return
    try:
        earlier = store().ratings.session_ratings(list(wanted), session_id())
    except PlaygroundError:
        return  # each card then looks its own up, and shows blanks if that fails too
    for result_id, key in wanted.items():
        _recall(key, *earlier.get(result_id, (None, None)))


def comment_open_key(key: str) -> str:
    """The session-state key of an answer's "Comment" popover (True while it is open)."""
    return f"{key}_comment_open"


def rating_controls(result: Result, run: Run, key: str) -> None:
    """1-5 stars and an optional comment under one answer, saved as soon as they are given."""
    del run  # part of the contract: ratings attach to the result, which knows its run
    stars_key, comment_key = f"{key}_stars", f"{key}_comment"
    if not _recalled(key):
        # Show this session's earlier rating (e.g. after a page switch) instead of blanks.
        try:
            stars, comment = store().ratings.session_rating(result.id, session_id())
        except PlaygroundError:
            stars, comment = None, None
        _recall(key, stars, comment)
    # Stars above the comment, not beside it: in a narrow grid column the comment box
    # would cover the last stars.
    st.feedback(
        "stars",
        key=stars_key,
        on_change=_save_rating,
        args=(result.id, key),
        persist_state="session",
    )
    comment = st.session_state.get(comment_key)
    if comment:  # the popover's label stays fixed (a new label would close it): say it here
        st.caption(f":material/comment: {plain_markdown(comment)}")
    # The comment box is drawn only while its popover is open: Streamlit walks the whole
    # session state for every text input, and 48 cards made that 48 walks of 200+ keys.
    popover = st.popover(
        "Comment",
        icon=":material/add_comment:",
        type="tertiary",
        key=comment_open_key(key),
        on_change="rerun",
    )
    if not popover.open:
        _show_status(key)
        return
    with popover:
        st.text_input(
            "Comment",
            key=comment_key,
            placeholder="Optional comment, saved on Enter",
            label_visibility="collapsed",
            on_change=_save_rating,
            args=(result.id, key),
            persist_state="session",  # kept while the popover is closed
        )
        _show_status(key)  # where the comment was typed: the popover covers the card


def _answer_label(result: Result, results: list[Result], labels: dict[str, str] | None) -> str:
    if labels and result.id in labels:
        return labels[result.id]
    several_variants = len({r.variant_name for r in results}) > 1
    return f"{result.model_id} ({result.variant_name})" if several_variants else result.model_id


def _save_vote(run_id: str, result_ids: list[str], key: str) -> None:
    choice = st.session_state.get(key)
    if choice is None:
        return
    if choice == ALL_GOOD:
        kind, best = "all_good", None
    elif choice == ALL_BAD:
        kind, best = "all_bad", None
    else:
        kind, best = "best", choice
    _guarded(
        key,
        lambda: store().ratings.add_preference(run_id, result_ids, kind, best, session_id()),  # type: ignore[arg-type]
    )


def best_answer_vote(
    run: Run,
    results: list[Result],
    key: str,
    labels: dict[str, str] | None = None,
    label: str = "Best answer",
) -> None:
    """'Which answer is best?' over the answers shown, saved as pairwise preferences.

    `labels` maps result id -> display label (blind mode: "Answer A"); answers that failed
    are left out; with fewer than two answers nothing is shown.
    """
    answered = [r for r in results if r.ok]
    if len(answered) < 2:
        return
    ids = [r.id for r in answered]
    if key not in st.session_state:
        try:
            previous = store().ratings.session_vote(ids, session_id())
        except PlaygroundError:
            previous = None
        if previous is not None:
            kind, best = previous
            choice = {"all_good": ALL_GOOD, "all_bad": ALL_BAD}.get(kind, best)
            if choice in [*ids, ALL_GOOD, ALL_BAD]:
                st.session_state[key] = choice
    names = {r.id: _answer_label(r, answered, labels) for r in answered}
    names[ALL_GOOD] = "All equally good"
    names[ALL_BAD] = "All equally bad"
    st.segmented_control(
        label,
        options=[*ids, ALL_GOOD, ALL_BAD],
        format_func=names.__getitem__,
        key=key,
        on_change=_save_vote,
        args=(run.id, ids, key),
        persist_state="session",
    )
    _show_status(key)
