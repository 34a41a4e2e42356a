"""Flow widgets the pages share: the registry for this session and "Save as flow"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import streamlit as st

from playground.errors import PlaygroundError
from playground.flows.capture import spec_from_result
from playground.flows.diff import diff_specs
from playground.flows.registry import FlowRegistry
from playground.flows.spec import Evidence, FlowSpec, RatingsEvidence
from playground.formatting import NONE_SHOWN, version_name, when
from playground.records import Result, Run
from ui.resources import settings, store

if TYPE_CHECKING:
    from playground.store.flows import LabelMove

LAST_NAME_KEY = "flow_last_name"


def versions_table(overview: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The registry's version overview for people: 'v2', '—' for no parent, readable times."""
    shown = []
    for row in overview:
        row = dict(row)
        row["version"] = version_name(row.get("version"))
        if "parent" in row:
            row["parent"] = version_name(row["parent"])
        if "created" in row:
            row["created"] = when(row["created"])  # type: ignore[arg-type]
        if "mean stars" in row:  # text in every row: a column of numbers and dashes won't load
            mean = row["mean stars"]
            row["mean stars"] = NONE_SHOWN if mean is None else f"{mean:.2f}"
        shown.append(row)
    return shown


def label_moves_table(moves: Sequence[LabelMove]) -> list[dict[str, str]]:
    """Every move of a flow's labels, newest first, in words: from '—' means a new label."""
    return [
        {
            "label": move.label,
            "to": version_name(move.version),
            "from": version_name(move.previous_version),
            "moved": when(move.moved_at),
        }
        for move in reversed(moves)
    ]


def registry() -> FlowRegistry:
    """The flow registry for the current settings, sharing the app's cached store."""
    return FlowRegistry(settings(), store())


def evidence_for(result: Result, run: Run, flows: FlowRegistry) -> Evidence:
    """Ratings and runs of this answer's configuration, as stored so far."""
    found = flows.store.leaderboard.config_evidence(result.config_hash)
    ratings = (
        RatingsEvidence(count=found.rating_count, mean=found.rating_mean)
        if found.rating_count
        else None
    )
    runs = found.run_ids or [run.id]
    return Evidence(ratings=ratings, runs=runs)


def unchanged_version(flows: FlowRegistry, spec: FlowSpec) -> int | None:
    """The newest saved version of the spec's flow if it holds the same flow, else None.

    Version bookkeeping (number, parent, time) aside; a saved version never changes, so a
    second save of the same answer would only add a copy.
    """
    latest = flows.latest(spec.name)
    if latest is None:
        return None
    try:
        saved = flows.get(spec.name, latest)
    except PlaygroundError:  # a damaged newest version: saving a good one is the way out
        return None
    # evidence (ratings, counts) moves with every vote; only the flow itself decides "unchanged"
    same = diff_specs(
        saved.model_copy(update={"evidence": None}), spec.model_copy(update={"evidence": None})
    )
    return latest if same.identical else None


def save_as_flow(result: Result, run: Run, key: str) -> None:
    """A small popover: name + description, "Save as flow", then `name vN` or the error."""
    message_key = f"{key}_message"
    # Drawn only while open: a grid of 48 answers drew 96 text inputs nobody had opened, and
    # each text input costs Streamlit a pass over the whole session state.
    popover = st.popover(
        "Save as flow", icon=":material/account_tree:", key=f"{key}_open", on_change="rerun"
    )
    if not popover.open:
        return
    with popover:
        name = st.text_input(
            "Flow name",
            value=st.session_state.get(LAST_NAME_KEY, ""),
            placeholder="gear-support",
            help="Lowercase letters, digits and dashes. Saving an existing name adds a version.",
            key=f"{key}_name",
        )
        description = st.text_input("Description", key=f"{key}_description")
        if st.button("Save as flow", key=f"{key}_save", type="primary"):
            try:
                flows = registry()
                spec = spec_from_result(
                    result,
                    run,
                    name.strip(),
                    description.strip(),
                    flows.settings,
                    evidence=evidence_for(result, run, flows),
                )
                same = unchanged_version(flows, spec)
                saved = flows.save(spec) if same is None else None
            except PlaygroundError as exc:
                st.session_state[message_key] = ("error", str(exc))
            else:
                st.session_state[LAST_NAME_KEY] = spec.name
                st.session_state[message_key] = (
                    ("ok", f"Saved {saved.name} v{saved.version}")
                    if saved is not None
                    else (
                        "info",
                        f"No changes: {spec.name} v{same} already holds this configuration, "
                        "so nothing was saved. Change the prompt, model or description to save "
                        "a new version.",
                    )
                )
        outcome = st.session_state.get(message_key)
        if outcome is not None:
            kind, text = outcome
            if kind == "ok":
                st.success(text, icon=":material/check:")
            elif kind == "info":
                st.info(text, icon=":material/info:")
            else:
                st.error(text, icon=":material/error:")
