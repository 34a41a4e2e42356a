"""Evaluate: a dataset x configurations batch with automatic scorers, live progress, results."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import streamlit as st

from playground.errors import PlaygroundError
from playground.eval import charts
from playground.eval.batch import (
    BatchPlan,
    BatchRunner,
    EvalConfig,
    check_plan,
    configs_from_flow,
    configs_from_variants,
    estimate,
)
from playground.eval.datasets import Datasets
from playground.eval.export import export_report
from playground.eval.results import load_report
from playground.eval.spec import EvaluationSpec
from playground.models.registry import list_models
from playground.records import PromptVariant
from ui import playground_state as ps
from ui.answer_markdown import plain_markdown
from ui.resources import settings

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "eval" / "gear-questions.jsonl"

st.title("Evaluate")
st.caption(
    "Run configurations over every row of a dataset, score each answer automatically, and gate "
    "on the pass rate. Every cell is an ordinary run: History and Compare see it."
)
config = settings()
datasets = Datasets(config)
state = st.session_state

# 1. Dataset
st.subheader("1 · Dataset")
source = st.radio(
    "Dataset", ["Sample questions", "Upload", "Stored"], horizontal=True, key="ev_source"
)
info = None
try:
    if source == "Sample questions":
        info = datasets.import_file(SAMPLE)
    elif source == "Upload":
        upload = st.file_uploader("CSV or JSONL", type=["csv", "tsv", "jsonl"], key="ev_upload")
        if upload is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / upload.name
                path.write_bytes(upload.getvalue())
                info = datasets.import_file(path)
    else:
        stored = [i.ref for i in datasets.list()]
        if stored:
            info = datasets.resolve(st.selectbox("Stored dataset", stored, key="ev_stored"))
        else:
            st.info("No stored dataset yet; pick the sample or upload a file.")
except PlaygroundError as exc:
    st.error(str(exc))
if info is not None:
    columns = ", ".join(plain_markdown(c) for c in info.columns)  # names come from the file
    st.caption(f"{info.ref} · {info.rows} rows · columns {columns}")
    st.dataframe(datasets.preview(info.ref, 5), hide_index=True)

# 2. Configurations
st.subheader("2 · Configurations")
kind = st.radio(
    "Configurations",
    ["Playground variants x models", "Saved flow versions"],
    horizontal=True,
    key="ev_kind",
)
configs: list[EvalConfig] = []
try:
    if kind == "Playground variants x models":
        ready = [m.id for m in list_models(config) if m.ready]
        variants = (
            ps.variants_from_state(state)
            if ps.VARIANT_IDS in state
            else [PromptVariant("default", "Answer in one short sentence.", "{{ question }}")]
        )
        chosen = st.multiselect(
            "Models",
            ready,
            default=[m for m in state.get(ps.MODELS, ready[:1]) if m in ready],
            key="ev_models",
        )
        max_tokens = st.number_input("max_tokens", 8, 2048, 64, key="ev_max_tokens")
        st.caption(
            "Variants: "
            + ", ".join(
                f"**{plain_markdown(v.name)}** {plain_markdown(v.user[:60])}" for v in variants
            )
        )
        from playground.models.base import ModelParams

        params = {
            m: ModelParams(temperature=0.0, max_tokens=int(max_tokens), seed=1) for m in chosen
        }
        configs = configs_from_variants(variants, chosen, params)
    else:
        from playground.flows.registry import FlowRegistry

        registry = FlowRegistry(config)
        refs = [f"{f.name}@{v.version}" for f in registry.list() for v in f.versions]
        picked = st.multiselect("Flow versions", refs, key="ev_flows")
        for ref in picked:
            configs += configs_from_flow(registry.resolve_ref(ref))
except PlaygroundError as exc:
    st.error(str(exc))

# 3. Scorers and gate
st.subheader("3 · Scorers and gate")
cols = st.columns(4)
scorers: list[dict[str, object]] = []
if cols[0].checkbox("contains {{ keyword }}", value=True, key="ev_contains"):
    scorers.append({"type": "contains", "value": "{{ keyword }}", "name": "has-keyword"})
if cols[1].checkbox("similar to {{ expected }}", value=False, key="ev_similarity"):
    threshold = cols[1].slider("similarity ≥", 0.0, 1.0, 0.6, key="ev_sim_threshold")
    scorers.append({"type": "similarity", "reference": "{{ expected }}", "threshold": threshold})
if cols[2].checkbox("latency", value=True, key="ev_latency"):
    max_ms = cols[2].number_input("max ms", 100, 600_000, 20_000, key="ev_max_ms")
    scorers.append({"type": "latency", "max_ms": max_ms})
if cols[3].checkbox("LLM judge", value=False, key="ev_judge"):
    rubric = cols[3].text_input("rubric", "Answers the question correctly", key="ev_rubric")
    scorers.append({"type": "judge", "rubric": rubric})
gate = st.slider("Gate: pass rate per configuration", 0.0, 1.0, 0.8, key="ev_gate")

plan = None
if info is not None and configs and scorers:
    try:
        evaluation = EvaluationSpec.model_validate(
            {"dataset": info.ref, "scorers": scorers, "gate": {"pass_rate": gate}}
        )
        plan = BatchPlan(name="evaluate", dataset=info, configs=configs, evaluation=evaluation)
        check_plan(config, plan)
        st.info("Estimate: " + estimate(config, plan).sentence(), icon=":material/calculate:")
    except PlaygroundError as exc:
        st.error(str(exc))
        plan = None
else:
    st.caption("Pick a dataset, at least one configuration and one scorer to run.")

run_col, cancel_col = st.columns([1, 5])
if run_col.button("Run batch", type="primary", disabled=plan is None, key="ev_run"):
    assert plan is not None
    cancel_col.button("Cancel", key="ev_cancel")  # a click reruns the page, which stops this one
    bar = st.progress(0.0, text="Starting…")
    partial = st.empty()
    counts = {"pass": 0, "fail": 0, "unmeasured": 0, "error": 0}

    def progress(done: int, total: int, outcome: object) -> None:
        counts[getattr(outcome, "status", "error")] += 1
        bar.progress(done / total, text=f"{done}/{total} cells")
        partial.caption(" · ".join(f"{k} {v}" for k, v in counts.items()))

    cancel = threading.Event()
    runner = BatchRunner(config, plan, concurrency=8, on_progress=progress, cancel=cancel)
    try:
        runner.run()
    except BaseException:  # a rerun (Cancel) stops the script: cells in flight still save
        cancel.set()
        runner.batches.set_status(plan.batch_id, "cancelled")
        raise
    state["ev_batch"] = plan.batch_id

# 4. Results
st.subheader("4 · Results")
from ui.resources import store  # noqa: E402 - only the results need the store

records = store().batches.list()
if not records:
    st.caption("No batch yet.")
    st.stop()
labels = {
    r.id: f"{r.created_at:%Y-%m-%d %H:%M} · {r.name} · {r.dataset} · {r.status}" for r in records
}
ids = list(labels)
default = ids.index(state["ev_batch"]) if state.get("ev_batch") in ids else 0
batch_id = st.selectbox("Batch", ids, index=default, format_func=labels.get, key="ev_show")
report = load_report(config, batch_id)
summary = charts.summary_frame(report)
verdict = "met" if report.gate_passed else "NOT met"
st.markdown(
    f"**{report.record.done_cells}/{report.record.total_cells} cells · gate {verdict}** "
    f"(pass rate ≥ {report.plan.evaluation.gate.pass_rate:.0%} per configuration)"
)
st.dataframe(summary, hide_index=True)
left, right = st.columns(2)
left.plotly_chart(charts.heatmap_figure(report), key="ev_heatmap")
right.plotly_chart(charts.quality_cost_figure(report), key="ev_pareto")
with st.expander("Rows: every scorer's verdict and reason", icon=":material/table_rows:"):
    st.dataframe(charts.rows_frame(report), hide_index=True)
downloads = st.columns(4)
for column, fmt, mime in zip(
    downloads,
    ["csv", "jsonl", "junit", "html"],
    ["text/csv", "application/jsonl", "application/xml", "text/html"],
    strict=True,
):
    column.download_button(
        f"Download {fmt}",
        export_report(report, fmt, config),
        file_name=f"batch-{batch_id[:8]}.{'xml' if fmt == 'junit' else fmt}",
        mime=mime,
        key=f"ev_dl_{fmt}",
    )
