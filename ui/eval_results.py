"""The Evaluate page's results parts: charts, per-row drill-down and the baseline comparison.

The tables and figures come from playground.eval.charts; this module only lays them out.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from playground.config import Settings
from playground.errors import PlaygroundError
from playground.eval import charts
from playground.eval.results import BatchReport, compare_reports, load_report
from playground.store.batches import BatchRecord, CellRecord
from ui.stored_run_view import permalink


def batch_label(record: BatchRecord) -> str:
    """'2026-12-02 16:05 · evaluate · gear-questions@ab12 · 4809a0db' for pickers.

    No status or counts: they change while a batch runs, and a picker's shown label did not
    follow (the browser kept "running · 0/18" next to a finished batch).
    """
    return (
        f"{record.created_at:%Y-%m-%d %H:%M:%S} · {record.name} · {record.dataset} · "
        f"{record.id[:8]}"
    )


def figures(report: BatchReport) -> None:
    """Variants x models heatmap, and quality against cost and against latency (Pareto)."""
    heat, quality = st.columns(2)
    heat.plotly_chart(charts.heatmap_figure(report), key="ev_heatmap")
    cost_tab, latency_tab = quality.tabs(["Quality vs cost", "Quality vs latency"])
    cost_tab.plotly_chart(charts.quality_cost_figure(report), key="ev_pareto")
    latency_tab.plotly_chart(
        charts.quality_cost_figure(report, x="latency p50 ms"), key="ev_pareto_latency"
    )


def cell_label(report: BatchReport, cell: CellRecord) -> str:
    """'row 3 · gpt-4o-mini · fail' for the cell picker."""
    repeat = f" · repeat {cell.repeat_index + 1}" if report.plan.repeat > 1 else ""
    label = report.plan.configs[cell.config_index].label
    return f"row {cell.row_index + 1}{repeat} · {label} · {cell.status}"


def drill_down(report: BatchReport) -> None:
    """Every cell as a row; picking one shows its answer, every scorer's reason and chunks."""
    st.markdown("**Rows** · every cell's verdict; pick one to see its answer, reasons and chunks")
    frame = charts.rows_frame(report)
    if not len(frame):
        st.caption("No finished cell yet.")
        return
    st.dataframe(
        frame,
        hide_index=True,
        key="ev_rows",
        column_config={"answer": st.column_config.TextColumn(width="large")},
    )
    # rows_frame lists the cells in the store's (configuration, row, repeat) order
    cells = report.cells
    picked = st.selectbox(
        "Inspect a cell",
        [None, *range(len(cells))],
        format_func=lambda i: "Pick a cell" if i is None else cell_label(report, cells[i]),
        key="ev_cell_pick",
    )
    if picked is None:
        return
    cell = cells[picked]
    config = report.plan.configs[cell.config_index]
    with st.container(border=True, key="ev_cell"):
        st.markdown(f"**{config.label} · row {cell.row_index + 1}** · {cell.status}")
        if cell.variables:
            st.caption(" · ".join(f"{k}: {v}" for k, v in cell.variables.items()))
        result = cell.result
        if result is not None and result.error:
            st.error(result.error, icon=":material/error:")
        st.markdown(result.text if result is not None and result.text else "*(no answer)*")
        st.dataframe(
            charts.verdicts_frame(cell),
            hide_index=True,
            key="ev_cell_verdicts",
            column_config={"reason": st.column_config.TextColumn(width="large")},
        )
        chunks = charts.chunks_frame(cell)
        if len(chunks):
            st.caption(f"Retrieved context · {len(chunks)} chunks")
            st.dataframe(chunks, hide_index=True, key="ev_cell_chunks")
        else:
            st.caption("No retrieval: this configuration answers without a knowledge store.")
        st.caption(f"[Open run {cell.run_id[:8]}]({permalink(cell.run_id)})")


def baseline_compare(
    settings: Settings, report: BatchReport, records: Sequence[BatchRecord]
) -> None:
    """Pick an earlier batch; show rows that went pass -> fail and back, and McNemar's test."""
    others = [r for r in records if r.id != report.record.id]
    if not others:
        st.caption("Run another batch to compare it with this one.")
        return
    name = report.record.dataset.split("@")[0]
    choices = [r for r in others if r.dataset.split("@")[0] == name] or others
    chosen = st.selectbox(
        "Baseline batch",
        [None, *(r.id for r in choices)],
        format_func=lambda i: "No baseline" if i is None else batch_label(
            next(r for r in choices if r.id == i)
        ),
        key="ev_baseline",
    )  # fmt: skip
    if chosen is None:
        return
    try:
        comparisons = compare_reports(report, load_report(settings, chosen))
    except PlaygroundError as exc:
        st.info(str(exc), icon=":material/info:")
        return
    st.markdown(charts.comparison_sentence(comparisons))
    st.dataframe(charts.comparison_frame(comparisons), hide_index=True, key="ev_comparison")


def save_as_flow(settings: Settings, report: BatchReport) -> None:
    """Save one configuration of the batch as a flow version with its evaluation and figures."""
    from playground.eval.save import save_batch_as_flow

    configs = report.plan.configs
    with st.expander("Save as flow", icon=":material/account_tree:"):
        st.caption(
            "Writes the configuration as the next version of a flow, with this batch's "
            "evaluation block (so `playground flow test` reruns it) and its figures as evidence."
        )
        pick, name_col = st.columns([3, 2])
        index = pick.selectbox(
            "Configuration",
            range(len(configs)),
            format_func=lambda i: (
                f"{configs[i].label} · pass rate "
                + (
                    "—"
                    if report.configs[i].pass_rate is None
                    else f"{report.configs[i].pass_rate:.0%}"
                )
            ),
            key="ev_flow_config",
        )
        default = configs[index].flow_name or report.record.name
        name = name_col.text_input("Flow name", value=default, key="ev_flow_name")
        if st.button("Save as flow", key="ev_flow_save", icon=":material/save:"):
            try:
                saved = save_batch_as_flow(settings, report, index, name.strip())
            except PlaygroundError as exc:
                st.error(str(exc), icon=":material/error:")
            else:
                st.success(
                    f"Saved {saved.name} v{saved.version} with the evaluation block and batch "
                    f"{report.record.id[:8]}'s figures; `playground flow test "
                    f"{saved.name}@{saved.version}` reruns it.",
                    icon=":material/check_circle:",
                )
