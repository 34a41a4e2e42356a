"""Evaluate: a dataset x configurations batch with automatic scorers, live progress, results."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from playground.errors import PlaygroundError
from playground.eval import charts
from playground.eval.batch import (
    BatchPlan,
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
from ui.eval_live import LiveBatch
from ui.eval_results import baseline_compare, batch_label, drill_down, figures, save_as_flow
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

live: LiveBatch | None = state.get("ev_live")
running = live is not None and live.live
if st.button(
    "Run batch",
    type="primary",
    icon=":material/play_arrow:",
    disabled=plan is None or running,
    key="ev_run",
):
    assert plan is not None
    # The batch runs in a thread: reruns, other widgets and page switches do not stop it.
    live = state["ev_live"] = LiveBatch(config, plan).start()
    state["ev_show"] = plan.batch_id  # the results below follow the new batch
    st.rerun()  # redraw with Run disabled and the progress view


def cancel_batch() -> None:
    """The Cancel button: start no new cell; the ones in flight finish and are saved."""
    current: LiveBatch | None = state.get("ev_live")
    if current is not None:
        current.cancel()


@st.fragment(run_every=1.0)  # once a second: polls compete with the model for CPU
def batch_progress() -> None:
    """Progress bar, counts per configuration and the latest answers while a batch runs."""
    current: LiveBatch = state["ev_live"]
    if not current.live:
        st.rerun(scope="app")  # finished: redraw once with the full results
    st.progress(current.fraction, text=current.progress_text())
    st.button(
        "Cancel",
        key="ev_cancel",
        icon=":material/stop:",
        on_click=cancel_batch,
        disabled=current.cancelling,
        help="Starts no new cell; answers in flight are kept. `playground eval resume` runs "
        "the rest.",
    )
    st.dataframe(
        current.partial_frame(),
        hide_index=True,
        key="ev_partial",
        column_config={"pass rate so far": st.column_config.ProgressColumn(format="percent")},
    )
    recent = current.recent_frame()
    if len(recent):
        st.caption("Latest answers")
        st.dataframe(recent, hide_index=True, key="ev_recent")


if live is not None:
    if running:
        with st.container(border=True, key="ev_live_box"):
            batch_progress()
    elif live.error:
        st.error(live.error, icon=":material/error:")
    elif live.status == "cancelled":
        st.warning(
            f"Batch {live.batch_id[:8]} cancelled after {live.done} of {live.total} cells; "
            f"`playground eval resume {live.batch_id}` runs the rest.",
            icon=":material/stop_circle:",
        )

# 4. Results
st.subheader("4 · Results")
from ui.resources import store  # noqa: E402 - only the results need the store

records = store().batches.list()
if not records:
    st.caption("No batch yet.")
    st.stop()
ids = [r.id for r in records]
by_id = {r.id: r for r in records}
if state.get("ev_show") not in ids:
    state.pop("ev_show", None)
batch_id = st.selectbox("Batch", ids, format_func=lambda i: batch_label(by_id[i]), key="ev_show")
try:
    report = load_report(config, batch_id)
except PlaygroundError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
if running and live is not None and batch_id == live.batch_id:
    # the counts above move every second; a table drawn once would only contradict them
    st.caption("This batch is running: its results appear here when it finishes.")
    st.stop()
verdict = "met" if report.gate_passed else "NOT met"
if report.record.status == "running":
    verdict = "pending (still running)"
st.markdown(
    f"**{report.record.done_cells}/{report.record.total_cells} cells · {report.record.status} · "
    f"gate {verdict}** "
    f"(pass rate ≥ {report.plan.evaluation.gate.pass_rate:.0%} per configuration)"
)
st.dataframe(
    charts.summary_frame(report),
    hide_index=True,
    key="ev_summary",
    column_config={"pass rate": st.column_config.ProgressColumn(format="percent")},
)
st.markdown("**Against a baseline**")
baseline_compare(config, report, records)
figures(report)
drill_down(report)
save_as_flow(config, report)
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
