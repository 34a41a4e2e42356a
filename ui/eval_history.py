"""History's one evaluation control: selected runs become a dataset for the Evaluate page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from playground.errors import PlaygroundError
from playground.eval.datasets import Datasets, dataset_from_runs
from playground.records import Run
from ui.resources import settings


def _save(runs: Sequence[Run], ratings: Mapping[str, Any], name: str) -> None:
    try:
        info = dataset_from_runs(settings(), runs, ratings, name)
    except PlaygroundError as exc:
        st.session_state["hist_dataset_note"] = ("error", str(exc))
        return
    rated = sum(1 for row in Datasets(settings()).preview(info.ref, info.rows)["expected"] if row)
    st.session_state["hist_dataset_note"] = (
        "success",
        f"Saved dataset {info.ref}: {info.rows} rows, {rated} with a best-rated answer as "
        "`expected`. Pick it on the Evaluate page under Stored.",
    )
    st.session_state["ev_source"] = "Stored"  # the Evaluate page opens on it
    st.session_state["ev_stored"] = info.ref


def dataset_button(runs: Sequence[Run], ratings: Mapping[str, Any]) -> None:
    """'Dataset from N selected runs': rows are the runs' variables, `expected` the best answer."""
    note = st.session_state.pop("hist_dataset_note", None)
    if runs:
        count = len(runs)
        st.button(
            f"Dataset from {count} selected run{'s' if count != 1 else ''}",
            key="hist_dataset",
            icon=":material/dataset:",
            on_click=_save,
            args=(list(runs), dict(ratings), "from-history"),
            help="Each run becomes a row (its template variables); the best-rated answer "
            "becomes the reference `expected`, for the Evaluate page.",
        )
    if note is not None:
        kind, text = note
        (st.success if kind == "success" else st.error)(text)
