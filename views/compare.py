"""Compare: configurations ranked by ratings and votes, with honesty, cost, latency and harm."""

from __future__ import annotations

import streamlit as st

from playground.compare import (
    HARM_NOT_CHECKED,
    INTERVAL_METHOD,
    ConfigFilters,
    LeaderboardRow,
    config_labels,
    config_runs_table,
    leaderboard,
    leaderboard_table,
)
from playground.eval.results import batch_scores, with_batch_scores
from playground.history import to_csv, to_json
from ui.answer_markdown import plain_markdown
from ui.charts import COST, LATENCY, quality_figure, stars_figure
from ui.flow_widgets import save_as_flow
from ui.resources import store
from ui.stored_run_view import permalink


@st.cache_data(max_entries=32, show_spinner=False)
def _leaderboard(url: str, filters: ConfigFilters, version: object) -> list[LeaderboardRow]:
    # Keyed by the store's data version: a new rating or run recomputes, other reruns don't.
    return leaderboard(
        store().leaderboard.config_aggregates(filters), store().leaderboard.preference_pairs()
    )


@st.cache_data(max_entries=4, show_spinner=False)
def _model_ids(url: str, version: object) -> list[str]:
    return store().history.model_ids()


st.title("Compare")
st.caption(
    "A configuration is model + parameters + prompt template + retrieval settings. "
    "Ranked by mean stars, then by pairwise votes; batch rank and pass rate come from "
    "Evaluate batches of the same configuration."
)

db = store()
version = db.history.data_version()
text_col, model_col, from_col, to_col = st.columns([3, 2, 1, 1])
template = text_col.text_input("Prompt template contains", key="cmp_template")
model = model_col.selectbox(
    "Model", [None, *_model_ids(db.url, version)], key="cmp_model",
    format_func=lambda m: "All models" if m is None else m,
)  # fmt: skip
date_from = from_col.date_input("From", value=None, key="cmp_from")
date_to = to_col.date_input("To", value=None, key="cmp_to")

rows = _leaderboard(db.url, ConfigFilters(template, model, date_from, date_to), version)
if not rows:
    st.info("No runs match. Run prompts in the Playground, rate the answers, then come back.")
    st.stop()

labels = config_labels(rows)
# human ratings and batch pass rates side by side: batch cells are ordinary runs, same hashes
table = with_batch_scores(leaderboard_table(rows), batch_scores(db))
event = st.dataframe(
    table,
    key="cmp_table",
    on_select="rerun",
    selection_mode="single-row",
    hide_index=True,
    column_config={
        "rank": st.column_config.NumberColumn(width=40),
        "configuration": st.column_config.TextColumn(width="large"),
        "BT score": st.column_config.TextColumn(help="Bradley-Terry score, 1000 = average"),
        "batch rank": st.column_config.TextColumn(
            help="Rank by batch pass rate (lower end of its 95% interval)"
        ),
        "batch pass rate": st.column_config.TextColumn(
            help="Pass rate over every Evaluate batch cell, 95% Wilson interval"
        ),
        "honesty": st.column_config.TextColumn(help="Mean groundedness of RAG answers"),
        "TTFT": st.column_config.TextColumn(help="Median time to first token"),
        "latency": st.column_config.TextColumn(help="Median total time"),
        "cost / call": st.column_config.TextColumn(help="Mean cost of a successful call"),
    },
)
st.caption(
    f"Quality: {INTERVAL_METHOD}, latest rating per session. Win rate counts a tie as half a "
    "win; BT score is Bradley-Terry on an Elo scale (1000 = average). Honesty is mean "
    f"groundedness of RAG answers. Harm is '{HARM_NOT_CHECKED}' unless a moderation endpoint "
    "checked the answers. Select a row to see its runs."
)

rated = [r for r in rows if r.quality.mean is not None]
stars_tab, latency_tab, cost_tab = st.tabs(
    ["Stars per configuration", "Quality vs latency", "Quality vs cost"]
)
if not rated:
    for tab in (stars_tab, latency_tab, cost_tab):
        tab.info("No ratings yet: rate answers in the Playground to see quality charts.")
else:
    stars_tab.plotly_chart(stars_figure(rated, labels), key="cmp_chart_stars")
    for tab, axis, key in (
        (latency_tab, LATENCY, "cmp_chart_latency"),
        (cost_tab, COST, "cmp_chart_cost"),
    ):
        figure, why_not = quality_figure(rated, labels, axis)
        if figure is None:
            tab.info(why_not)
        else:
            tab.plotly_chart(figure, key=key)

if event.selection.rows:
    chosen = rows[event.selection.rows[0]]
    st.subheader(f"Runs of {labels[chosen.config_hash]}")
    st.caption(
        f"Configuration `{chosen.config_hash}` · {chosen.model_id} · "
        + ", ".join(f"{k}={v}" for k, v in chosen.params.items() if v not in (None, []))
        + (f" · knowledge store {chosen.store_name}" if chosen.store_name else "")
    )
    if chosen.system_template:
        st.caption(f"System: {plain_markdown(chosen.system_template)}")
    st.caption(f"Prompt template: {plain_markdown(chosen.user_template)}")
    best = db.leaderboard.best_answer(chosen.config_hash)
    if best is not None:
        best_run, best_result = best
        save_as_flow(best_result, best_run, key=f"cmp_flow_{chosen.config_hash}")
        st.caption("Saves this configuration with its best-rated answer's variables as defaults.")
    answers = [
        {"open": permalink(answer["run"]), **answer}
        for answer in config_runs_table(db.leaderboard.config_runs(chosen.config_hash))
    ]
    st.dataframe(
        answers,
        key="cmp_runs",
        hide_index=True,
        # The link first: after a long answer column it was cut off at the right edge.
        column_order=["open", "when", "variant", "stars", "answer", "latency", "cost"],
        column_config={
            "open": st.column_config.LinkColumn("run", display_text="open", width=60),
            "answer": st.column_config.TextColumn(width="large"),
        },
    )

with st.expander("Export the leaderboard", icon=":material/download:"):
    batch = {row["hash"]: row for row in table}
    export = [
        {
            **r.as_dict(),
            "batch_rank": batch[r.config_hash]["batch rank"],
            "batch_pass_rate": batch[r.config_hash]["batch pass rate"],
            "batch_cells": batch[r.config_hash]["batch cells"],
        }
        for r in rows
    ]
    left, right = st.columns(2)
    left.download_button(
        "Leaderboard CSV", data=lambda: to_csv(export), file_name="leaderboard.csv",
        mime="text/csv", key="cmp_dl_csv", on_click="ignore",
    )  # fmt: skip
    right.download_button(
        "Leaderboard JSON", data=lambda: to_json(export), file_name="leaderboard.json",
        mime="application/json", key="cmp_dl_json", on_click="ignore",
    )  # fmt: skip
