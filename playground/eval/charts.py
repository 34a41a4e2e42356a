"""Tables and plotly figures of a batch for the Evaluate page (testable without Streamlit)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from playground.eval.results import BatchReport, ConfigComparison

if TYPE_CHECKING:
    import pandas as pd

    from playground.store.batches import CellRecord


def summary_frame(report: BatchReport) -> pd.DataFrame:
    """One row per configuration: pass rate and interval, counts, gate, cost, latency."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "configuration": c.label,
                "model": c.model,
                "variant": c.variant,
                "pass rate": c.pass_rate,
                "95% CI low": c.ci_low,
                "95% CI high": c.ci_high,
                "passed": c.passed,
                "failed": c.failed,
                "unmeasured": c.unmeasured,
                "errors": c.errors,
                "gate": "met" if c.gate_passed else "not met",
                "cost USD": c.cost_usd,
                "latency p50 ms": c.latency_p50_ms,
                "latency p95 ms": c.latency_p95_ms,
                **{f"{name} pass": f["pass_rate"] for name, f in c.scorers.items()},
            }
            for c in report.configs
        ]
    )


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For (cost, quality) points: True where no other point is cheaper-or-equal and better."""
    flags = []
    for i, (cost, quality) in enumerate(points):
        dominated = any(
            (c <= cost and q >= quality) and (c < cost or q > quality)
            for j, (c, q) in enumerate(points)
            if j != i
        )
        flags.append(not dominated)
    return flags


def heatmap_figure(report: BatchReport) -> Any:
    """Pass rate per variant (rows) x model (columns)."""
    import plotly.express as px

    frame = summary_frame(report)
    table = frame.pivot_table(index="variant", columns="model", values="pass rate", aggfunc="mean")
    figure = px.imshow(
        table,
        text_auto=".0%",
        zmin=0,
        zmax=1,
        color_continuous_scale="RdYlGn",
        aspect="auto",
        labels={"color": "pass rate"},
    )
    figure.update_layout(title="Pass rate: variants x models", height=300)
    return figure


def quality_cost_figure(report: BatchReport, x: str = "cost USD") -> Any:
    """Pass rate against cost (or latency), the Pareto front marked."""
    import plotly.express as px

    frame = summary_frame(report).fillna({"pass rate": 0.0, x: 0.0})
    frame["Pareto front"] = pareto_front(list(zip(frame[x], frame["pass rate"], strict=True)))
    figure = px.scatter(
        frame,
        x=x,
        y="pass rate",
        color="Pareto front",
        hover_name="configuration",
        range_y=[-0.05, 1.05],
        title=f"Quality against {x.split(' ')[0]}",
    )
    figure.update_traces(marker={"size": 14})
    figure.update_layout(height=320)
    return figure


def rows_frame(report: BatchReport) -> pd.DataFrame:
    """Per-row drill-down: configuration, row, status, answer, every scorer's reason."""
    import pandas as pd

    records = []
    for config in report.configs:
        for row in config.rows:
            record = {
                "configuration": config.label,
                "row": row["row"] + 1,
                "status": row["status"],
                "input": next(iter(row["inputs"].values()), "") if row["inputs"] else "",
                "answer": row["answer"] or row["error"] or "",
                "latency ms": row["latency_ms"],
            }
            for verdict in row["verdicts"]:
                record[verdict["scorer"]] = f"{verdict['status']}: {verdict['reason']}"
            records.append(record)
    return pd.DataFrame(records)


def comparison_frame(comparisons: list[ConfigComparison]) -> pd.DataFrame:
    """Per configuration against the baseline: rows that flipped and McNemar's p-value."""
    import pandas as pd

    def rows(found: list[int]) -> str:
        return ", ".join(str(r + 1) for r in found) or "none"

    return pd.DataFrame(
        [
            {
                "configuration": c.label,
                "pass rate": c.pass_rate,
                "baseline pass rate": c.baseline_pass_rate,
                "paired rows": c.paired,
                "pass → fail": rows(c.pass_to_fail),
                "fail → pass": rows(c.fail_to_pass),
                # text: no flipped row means no test, and a blank reads as a bug
                "p-value (McNemar)": "no row flipped" if c.p_value is None else f"{c.p_value:.3f}",
                "significant": "yes (p < 0.05)" if c.significant else "no",
            }
            for c in comparisons
        ]
    )


def comparison_sentence(comparisons: list[ConfigComparison]) -> str:
    """One line: how many rows flipped each way and whether any difference is significant."""
    worse = sum(len(c.pass_to_fail) for c in comparisons)
    better = sum(len(c.fail_to_pass) for c in comparisons)
    significant = [c.label for c in comparisons if c.significant]
    verdict = (
        "significant for " + ", ".join(significant)
        if significant
        else "no difference is significant (McNemar, p < 0.05)"
    )
    return f"{worse} rows went pass → fail, {better} went fail → pass; {verdict}."


def verdicts_frame(cell: CellRecord) -> pd.DataFrame:
    """Every scorer's verdict, score and reason for one cell."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "scorer": v["scorer"],
                "verdict": v["status"],
                "score": v.get("score"),
                "reason": v.get("reason", ""),
            }
            for v in cell.verdicts
        ],
        columns=["scorer", "verdict", "score", "reason"],
    )


def chunks_frame(cell: CellRecord) -> pd.DataFrame:
    """The chunks retrieved for one cell's answer (empty without retrieval)."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "score": round(c.score or 0.0, 3),
                "source": c.source,
                "page": c.page,
                "text": c.text,
            }
            for c in cell.retrieved
        ],
        columns=["score", "source", "page", "text"],
    )
