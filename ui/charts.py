"""The Compare page's charts: stars per configuration, and quality against latency or cost.

Figures are keyed on the numbers they show, so a new run that leaves a chart's data as it was
reuses it. cache_resource, not cache_data: unpickling a Figure re-validates it, which is
slower than building it; the shared figure is only read (plotly_chart copies it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from playground.compare import LeaderboardRow
from playground.formatting import duration, usd

if TYPE_CHECKING:
    import plotly.graph_objects as go

CHART_LIMIT = 25  # more bars than this stop being readable
MARGIN = {"l": 10, "r": 10, "t": 10, "b": 10}


@dataclass(frozen=True)
class Axis:
    """One measurement a quality chart can plot on x."""

    attr: str  # the LeaderboardRow field
    title: str
    tick_format: str  # d3 format of the axis ticks
    hover_unit: str  # "ms" or "usd"


LATENCY = Axis("latency_ms", "median latency (ms)", ",.0f", "ms")
COST = Axis("cost_usd", "mean cost per call (USD)", "$.4~f", "usd")


@st.cache_resource(max_entries=16, show_spinner=False)
def _stars_figure(
    labels: tuple[str, ...],
    intervals: tuple[tuple[float, float, float], ...],
    hover: tuple[str, ...],
) -> go.Figure:
    import plotly.graph_objects as go

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
            hoverinfo="text",
        ),
        layout={
            "xaxis": {"range": [0, 5.2], "title": {"text": "mean stars (95% interval)"}},
            "yaxis": {"autorange": "reversed", "automargin": True},
            "height": 120 + 28 * len(labels),
            "margin": MARGIN,
        },
    )


def stars_figure(rows: Sequence[LeaderboardRow], labels: dict[str, str]) -> go.Figure:
    """Horizontal bars of mean stars with their 95% intervals, best first."""
    shown = rows[:CHART_LIMIT]
    return _stars_figure(
        tuple(labels[r.config_hash] for r in shown),
        tuple(
            (mean, r.quality.low or mean, r.quality.high or mean)
            for r, mean in ((r, r.quality.mean or 0.0) for r in shown)
        ),
        tuple(f"{labels[r.config_hash]}<br>{r.quality.label()}" for r in shown),
    )


@st.cache_resource(max_entries=16, show_spinner=False)
def _quality_figure(
    axis: Axis, points: tuple[tuple[float, float, int], ...], hover: tuple[str, ...]
) -> go.Figure:
    import plotly.graph_objects as go

    return go.Figure(
        go.Scatter(
            x=[x for x, _, _ in points],
            y=[y for _, y, _ in points],
            mode="markers",
            marker={"size": [8 + min(n, 30) for _, _, n in points]},
            hovertext=hover,
            hoverinfo="text",
        ),
        layout={
            # Latency and cost are never negative: the axis starts at 0 (plotly's default
            # range around a single value went from -1 to 1).
            "xaxis": {
                "title": {"text": axis.title},
                "rangemode": "tozero",
                "tickformat": axis.tick_format,
            },
            "yaxis": {"range": [0.8, 5.2], "title": {"text": "mean stars"}},
            "margin": MARGIN,
        },
    )


def quality_figure(
    rows: Sequence[LeaderboardRow], labels: dict[str, str], axis: Axis
) -> tuple[go.Figure | None, str]:
    """Mean stars against a measurement; None and the reason when there is nothing to plot."""
    points = [r for r in rows if getattr(r, axis.attr) is not None]
    if not points:
        return None, "No rated configuration has this measurement yet (every call failed)."
    values = [float(getattr(r, axis.attr)) for r in points]
    if axis is COST and not any(values):
        return None, (
            "Every rated configuration cost $0 per call (local models, or no price set in "
            "playground.toml), so there is no cost to compare."
        )

    def shown(value: float) -> str:
        return duration(value) if axis.hover_unit == "ms" else usd(value)

    figure = _quality_figure(
        axis,
        tuple((v, r.quality.mean or 0.0, r.quality.n) for r, v in zip(points, values, strict=True)),
        tuple(
            f"{labels[r.config_hash]}<br>{r.quality.label()} · {shown(v)}"
            for r, v in zip(points, values, strict=True)
        ),
    )
    return figure, ""
