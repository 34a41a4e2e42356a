"""Shared run: a read-only view of ?run=ID, or of two runs side by side with ?run=A&vs=B."""

from __future__ import annotations

import streamlit as st

from playground.errors import AmbiguousIdError, NotFoundError
from playground.history import unavailable_models
from ui.resources import settings, store
from ui.stored_run_view import comparison_view, run_view

st.title("Shared run")

run_id = st.query_params.get("run", "").strip()
vs_id = st.query_params.get("vs", "").strip()
if not run_id:
    st.info("Open a run from the History page and share its link (it ends in `?run=ID`).")
    st.stop()

db = store()
found = []
for wanted in [run_id, vs_id] if vs_id else [run_id]:
    try:
        found.append(db.runs.get_run(db.runs.resolve_id(wanted)))
    except AmbiguousIdError as exc:
        st.error(str(exc), icon=":material/search_off:")
        st.stop()
    except NotFoundError:
        st.error(
            f"No run with id `{wanted}`: the link may be cut short, or the run was made on "
            "another machine. Check the id on the History page.",
            icon=":material/search_off:",
        )
        st.stop()

notes = unavailable_models([r.model_id for run in found for r in run.results], settings())
summaries = db.ratings.rating_summaries([r.id for run in found for r in run.results])
st.caption("Read-only: open it from the History page to edit or rerun it.")
if len(found) == 2:
    comparison_view(found[0], found[1], summaries, notes)
else:
    run_view(found[0], summaries, notes)
