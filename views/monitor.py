"""Monitor: what served flows did, per flow and version; alerts and the worst recent calls."""

from __future__ import annotations

import streamlit as st

from playground.errors import PlaygroundError
from playground.formatting import when
from playground.serve.charts import monitor_figures
from playground.serve.monitor import (
    call_label,
    calls_to_dataset,
    monitor_report,
    served_flow_names,
    versions_table,
    worst_table,
)
from ui.resources import settings, store

WINDOWS = {"Last hour": "1h", "Last 24 hours": "24h", "Last 7 days": "7d", "Last 30 days": "30d"}
ALL_FLOWS = "All served flows"

st.title("Monitor")
st.caption(
    "Calls served by `playground flow serve`, from the run store: every replica that shares "
    "the store shows up here."
)

window_col, flow_col = st.columns(2)
window_label = window_col.selectbox("Window", list(WINDOWS), index=1, key="mon_window")
window = WINDOWS[window_label]
config = settings()
try:
    everything = monitor_report(config, window, traces=store().traces)
except PlaygroundError as exc:  # e.g. a bad [[alerts]] table
    st.error(str(exc), icon=":material/error:")
    st.stop()
flow_choice = flow_col.selectbox(
    "Flow", [ALL_FLOWS, *served_flow_names(everything)], key="mon_flow"
)
report = (
    everything
    if flow_choice == ALL_FLOWS
    else monitor_report(config, window, flow_choice, traces=store().traces)
)

firing = [a for a in report.alerts if a["firing"]]
for alert in firing:
    value = "no data" if alert["value"] is None else f"{alert['value']:.4g}"
    st.error(
        f"Alert **{alert['name']}** is firing: {alert['rule']} (now {value}, since "
        f"{when(alert['since'])}).",
        icon=":material/notifications_active:",
    )
if report.alerts and not firing:
    st.success(f"No alert is firing ({len(report.alerts)} configured).", icon=":material/check:")

if not report.versions:
    st.info(
        f"No served calls in the {window_label.lower()}; serve a flow with "
        "`playground flow serve NAME@LABEL`.",
        icon=":material/info:",
    )
    st.stop()

st.subheader("Per flow version")
st.dataframe(
    versions_table(report),
    hide_index=True,
    column_config={
        "version": st.column_config.TextColumn(width="small"),
        "p50": st.column_config.TextColumn("p50 latency"),
        "p95": st.column_config.TextColumn("p95 latency"),
        "online score": st.column_config.TextColumn(help="Mean score of the online scorers"),
    },
    key="mon_versions",
)

figures = monitor_figures(report)
for left, right in (("requests", "errors"), ("latency", "tokens"), ("cost", "scores")):
    col_a, col_b = st.columns(2)
    col_a.plotly_chart(figures[left], key=f"mon_chart_{left}")
    col_b.plotly_chart(figures[right], key=f"mon_chart_{right}")
st.plotly_chart(figures["stars"], key="mon_chart_stars")

st.subheader("Worst recent calls")
st.dataframe(
    worst_table(report),
    hide_index=True,
    column_order=["when", "flow", "version", "why", "latency", "open", "inputs", "answer"],
    column_config={"open": st.column_config.LinkColumn("open", display_text="open run")},
    key="mon_worst",
)

with st.container(border=True):
    st.markdown("**Add to dataset**: turn calls into evaluation rows (inputs, answer, feedback).")
    labels = {w.run_id: call_label(w) for w in report.worst}
    picked = st.multiselect("Calls", list(labels), format_func=labels.__getitem__, key="mon_pick")
    default_name = f"{report.worst[0].flow}-production" if report.worst else "production"
    name = st.text_input("Dataset", value=default_name, key="mon_dataset")
    if st.button("Add to dataset", key="mon_add", disabled=not picked, icon=":material/add:"):
        try:
            info, added = calls_to_dataset(config, store(), picked, name)
        except PlaygroundError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            st.success(
                f"Added {added} call(s) to dataset {info.ref} ({info.rows} row(s) in all); "
                f"evaluate it with `playground eval run SPEC --dataset {info.ref}`.",
                icon=":material/check:",
            )

if report.events:
    with st.expander(f"Alert history ({len(report.events)})"):
        st.dataframe(
            [
                {
                    "when": when(e["created_at"]),
                    "alert": e["name"],
                    "kind": e["kind"],
                    "message": e["message"],
                    "delivered": e["delivered"],
                    "attempts": e["attempts"],
                    "last error": e["last_error"],
                }
                for e in report.events
            ],
            hide_index=True,
            key="mon_events",
        )
