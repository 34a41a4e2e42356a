"""Plotly figures of a MonitorReport: one line or bar per flow version over UTC days."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import plotly.graph_objects as go

from playground.serve.monitor import DailyRow, MonitorReport

CHARTS: dict[str, tuple[str, Callable[[DailyRow], float | None], str]] = {
    "requests": ("Requests per day", lambda r: float(r.requests), "bar"),
    "errors": ("Errors per day", lambda r: float(r.errors), "bar"),
    "latency": ("Latency p50 (ms)", lambda r: r.latency_p50_ms, "line"),
    "tokens": ("Tokens per day", lambda r: float(r.tokens), "bar"),
    "cost": ("Cost per day (USD)", lambda r: r.cost_usd, "bar"),
    "scores": ("Online score (0-1)", lambda r: r.online_score, "line"),
    "stars": ("Feedback, mean stars", lambda r: r.mean_stars, "line"),
}


def monitor_figures(report: MonitorReport) -> dict[str, go.Figure]:
    """One figure per chart in CHARTS; a series per flow@version."""
    series: dict[str, list[DailyRow]] = defaultdict(list)
    for row in report.daily:
        series[f"{row.flow}@v{row.version}"].append(row)
    figures = {}
    for key, (title, value, kind) in CHARTS.items():
        figure = go.Figure()
        for name, rows in sorted(series.items()):
            points = [(r.day, value(r)) for r in rows if value(r) is not None]
            if not points:
                continue
            days, values = zip(*points, strict=True)
            if kind == "bar":
                figure.add_trace(go.Bar(x=list(days), y=list(values), name=name))
            else:
                figure.add_trace(
                    go.Scatter(x=list(days), y=list(values), name=name, mode="lines+markers")
                )
        if not figure.data:
            figure.add_annotation(
                text="no data in this window", showarrow=False, xref="paper", yref="paper"
            )
            figure.update_yaxes(visible=False)
        figure.update_layout(
            title=title, height=280, margin={"l": 10, "r": 10, "t": 40, "b": 10}, barmode="group"
        )
        figure.update_xaxes(type="category")
        figures[key] = figure
    return figures
