"""Compare: configurations ranked by ratings and votes, with honesty, cost, latency and harm."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from playground.compare import (
    HARM_NOT_CHECKED,
    INTERVAL_METHOD,
    ConfigFilters,
    LeaderboardRow,
    config_label,
    leaderboard,
    leaderboard_table,
)
from playground.history import to_csv, to_json
from ui.flow_widgets import save_as_flow
from ui.resources import store
from ui.stored_run_view import permalink

CHART_LIMIT = 25  # more bars than this stop being readable
MARGIN = {"l": 10, "r": 10, "t": 10, "b": 10}


@st.cache_data(max_entries=32, show_spinner=False)
def _leaderboard(url: str, filters: ConfigFilters, version: object) -> list[LeaderboardRow]:
    # Keyed by the store's data version: a new rating or run recomputes, other reruns don't.
    return leaderboard(
        store().leaderboard.config_aggregates(filters), store().leaderboard.preference_pairs()
    )


@st.cache_data(max_entries=4, show_spinner=False)
def _model_ids(url: str, version: object) -> list[str]:
    return store().history.model_ids()


# Figures are keyed on the numbers they show, so a new run that leaves a chart's data as it
# was reuses it. cache_resource, not cache_data: unpickling a Figure re-validates it, which
# is slower than building it; the shared figure is only read (plotly_chart copies it).
@st.cache_resource(max_entries=16, show_spinner=False)
def _stars_figure(
    labels: tuple[str, ...],
    intervals: tuple[tuple[float, float, float], ...],
    hover: tuple[str, ...],
) -> go.Figure:
    means = [mean for mean, _, _ in intervals]
    # Layout in the constructor: update_layout() costs several times the whole build.
    return go.Figure(
        go.Bar(
            x=means,
            y=labels,
            orientation="h",
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [high - mean for mean, _, high in intervals],
                "arrayminus": [mean - low for mean, low, _ in intervals],
            },
            hovertext=hover,
        ),
        layout={
            "xaxis": {"range": [0, 5.2], "title": {"text": "mean stars (95% interval)"}},
            "yaxis": {"autorange": "reversed"},
            "height": 120 + 28 * len(labels),
            "margin": MARGIN,
        },
    )


@st.cache_resource(max_entries=16, show_spinner=False)
def _quality_figure(
    title: str, points: tuple[tuple[float, float, int], ...], hover: tuple[str, ...]
) -> go.Figure:
    return go.Figure(
        go.Scatter(
            x=[x for x, _, _ in points],
            y=[y for _, y, _ in points],
            mode="markers",
            marker={"size": [8 + min(n, 30) for _, _, n in points]},
            hovertext=hover,
        ),
        layout={
            "xaxis": {"title": {"text": title}},
            "yaxis": {"range": [0.8, 5.2], "title": {"text": "mean stars"}},
            "margin": MARGIN,
        },
    )


st.title("Compare")
st.caption(
    "A configuration is model + parameters + prompt template + retrieval settings. "
    "Ranked by mean stars, then by pairwise votes."
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

table = leaderboard_table(rows)
event = st.dataframe(
    table,
    key="cmp_table",
    on_select="rerun",
    selection_mode="single-row",
    hide_index=True,
    column_config={
        "stars": st.column_config.NumberColumn(format="%.2f"),
        "win rate": st.column_config.NumberColumn(format="percent"),
        "BT score": st.column_config.NumberColumn(format="%.0f"),
        "honesty": st.column_config.NumberColumn(format="percent", help="Mean groundedness"),
        "cost $/call": st.column_config.NumberColumn(format="$%.6f"),
        "TTFT ms": st.column_config.NumberColumn(format="%.0f", help="Median time to first token"),
        "latency ms": st.column_config.NumberColumn(format="%.0f", help="Median total time"),
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
    shown = rated[:CHART_LIMIT]
    stars_tab.plotly_chart(
        _stars_figure(
            tuple(config_label(r) for r in shown),
            tuple(
                (m, r.quality.low or m, r.quality.high or m)
                for r, m in ((r, r.quality.mean or 0.0) for r in shown)
            ),
            tuple(r.quality.label() for r in shown),
        ),
        key="cmp_chart_stars",
    )
    for tab, attr, title, key in (
        (latency_tab, "latency_ms", "median latency (ms)", "cmp_chart_latency"),
        (cost_tab, "cost_usd", "mean cost per call (USD)", "cmp_chart_cost"),
    ):
        points = [r for r in rated if getattr(r, attr) is not None]
        figure = _quality_figure(
            title,
            tuple((getattr(r, attr), r.quality.mean or 0.0, r.quality.n) for r in points),
            tuple(config_label(r) for r in points),
        )
        tab.plotly_chart(figure, key=key)

if event.selection.rows:
    chosen = rows[event.selection.rows[0]]
    st.subheader(f"Runs of {config_label(chosen)}")
    st.caption(
        f"Configuration `{chosen.config_hash}` · {chosen.model_id} · "
        + ", ".join(f"{k}={v}" for k, v in chosen.params.items() if v not in (None, []))
        + (f" · knowledge store {chosen.store_name}" if chosen.store_name else "")
    )
    if chosen.system_template:
        st.caption(f"System: {chosen.system_template}")
    st.caption(f"Prompt template: {chosen.user_template}")
    best = db.leaderboard.best_answer(chosen.config_hash)
    if best is not None:
        best_run, best_result = best
        save_as_flow(best_result, best_run, key=f"cmp_flow_{chosen.config_hash}")
        st.caption("Saves this configuration with its best-rated answer's variables as defaults.")
    answers = db.leaderboard.config_runs(chosen.config_hash)
    for answer in answers:
        answer["open"] = permalink(answer["run"])
    st.dataframe(
        answers,
        key="cmp_runs",
        hide_index=True,
        column_config={
            "open": st.column_config.LinkColumn(display_text="open run"),
            "stars": st.column_config.NumberColumn(format="%.1f ★"),
        },
    )

with st.expander("Export the leaderboard", icon=":material/download:"):
    export = [r.as_dict() for r in rows]
    left, right = st.columns(2)
    left.download_button(
        "Leaderboard CSV", data=lambda: to_csv(export), file_name="leaderboard.csv",
        mime="text/csv", key="cmp_dl_csv", on_click="ignore",
    )  # fmt: skip
    right.download_button(
        "Leaderboard JSON", data=lambda: to_json(export), file_name="leaderboard.json",
        mime="application/json", key="cmp_dl_json", on_click="ignore",
    )  # fmt: skip
