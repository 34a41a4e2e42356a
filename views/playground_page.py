"""Playground: one prompt, in named variants, on many models at once, streamed side by side."""

from __future__ import annotations

import streamlit as st

from playground.errors import PlaygroundError
from playground.formatting import metrics_line
from playground.models.local import DEFAULT_MODEL_ID
from playground.models.registry import list_models
from playground.runner import assess, measured_stream, prepare_run
from ui import playground_state as ps
from ui.resources import session_id, settings, store
from ui.run_view import RunView

COLUMNS_PER_ROW = 4
KEEP = ps.KEEP

st.title("Playground")
st.caption(
    "Write a prompt (and variants of it), pick models, and run them all at once. "
    "Variables in `{{ braces }}` become input fields."
)

config = settings()
infos = list_models(config)
# Configured but unreachable endpoints stay selectable: their column explains the failure.
ready = [info.id for info in infos if info.ready or info.status == "unreachable"]
unreachable = {info.id for info in infos if info.status == "unreachable"}
state = st.session_state
ps.init_state(state, DEFAULT_MODEL_ID)

draft = state.pop("pending_draft", None)
if draft is not None:
    missing = ps.apply_draft(state, draft, set(ready))
    if draft.note:
        st.info(draft.note, icon=":material/restore:")
    for model_id in missing:
        st.warning(
            f"{model_id} is no longer available, so it was left out; "
            "configure it on the Settings page to run it again.",
            icon=":material/warning:",
        )
autorun = bool(state.pop("pending_autorun", False))
state[ps.MODELS] = [m for m in state.get(ps.MODELS, []) if m in ready]

editor, side = st.columns([3, 2], gap="large")

with editor:
    variant_ids: list[int] = list(state[ps.VARIANT_IDS])
    names = [str(state.get(ps.variant_key(v, "name")) or f"variant {v + 1}") for v in variant_ids]
    for tab, vid in zip(st.tabs(names), variant_ids, strict=True):
        with tab:
            name_col, note_col = st.columns([1, 2])
            name_col.text_input("Variant name", key=ps.variant_key(vid, "name"), persist_state=KEEP)
            note_col.text_input(
                "Note (optional)", key=ps.variant_key(vid, "note"), persist_state=KEEP
            )
            st.text_area(
                "System message", key=ps.variant_key(vid, "system"), height=80, persist_state=KEEP
            )
            st.text_area(
                "User message", key=ps.variant_key(vid, "user"), height=120, persist_state=KEEP
            )
            if len(variant_ids) > 1:
                st.button(
                    "Remove this variant",
                    key=f"btn_remove_{vid}",
                    on_click=ps.remove_variant,
                    args=(state, vid),
                    icon=":material/delete:",
                )
    st.button(
        "Add a variant",
        key="btn_add_variant",
        on_click=ps.add_variant,
        args=(state,),
        icon=":material/add:",
        help="Variants run on every selected model: rows are variants, columns are models.",
    )

    use_rag = bool(state.get(ps.USE_RAG))
    variables = [v for v in ps.template_variables(state) if not (use_rag and v == "context")]
    if variables:
        st.subheader("Variables", divider="gray")
        for name in variables:
            state.setdefault(ps.var_key(name), "")
            st.text_area(name, key=ps.var_key(name), height=68, persist_state=KEEP)

with side:
    st.multiselect(
        "Models",
        options=ready,
        key=ps.MODELS,
        persist_state=KEEP,
        placeholder="Pick one or more models",
        format_func=lambda m: f"{m} (unreachable)" if m in unreachable else m,
        help="Each model answers in its own column.",
    )
    not_configured = sorted({i.provider for i in infos if i.status == "needs key"})
    if not_configured:
        st.caption(
            f"Not configured: {', '.join(not_configured)}. "
            "Add keys or endpoints to light them up (see Settings)."
        )
    if unreachable:
        st.caption(f"Unreachable now: {', '.join(sorted(unreachable))} (see Settings).")
    for model_id in state[ps.MODELS]:
        with st.expander(f"Parameters · {model_id}"):
            defaults = {"temperature": 0.7, "top_p": 1.0, "max_tokens": 256, "seed": None}
            for param, value in defaults.items():
                state.setdefault(ps.param_key(model_id, param), value)
            state.setdefault(ps.param_key(model_id, "stop"), "")
            st.slider(
                "temperature",
                0.0,
                2.0,
                step=0.05,
                key=ps.param_key(model_id, "temperature"),
                persist_state=KEEP,
            )
            st.slider(
                "top_p",
                0.01,
                1.0,
                step=0.01,
                key=ps.param_key(model_id, "top_p"),
                persist_state=KEEP,
            )
            st.number_input(
                "max_tokens",
                min_value=1,
                max_value=32768,
                key=ps.param_key(model_id, "max_tokens"),
                persist_state=KEEP,
            )
            st.number_input(
                "seed",
                min_value=0,
                max_value=2**31 - 1,
                step=1,
                key=ps.param_key(model_id, "seed"),
                persist_state=KEEP,
                placeholder="random",
                help="With temperature 0 and a seed, local answers repeat exactly.",
            )
            st.text_area(
                "stop sequences (one per line)",
                key=ps.param_key(model_id, "stop"),
                height=68,
                persist_state=KEEP,
            )

    with st.expander("Knowledge (RAG)", expanded=use_rag):
        st.toggle(
            "Use knowledge",
            key=ps.USE_RAG,
            persist_state=KEEP,
            help="Retrieve chunks into {{ context }}.",
        )
        if state.get(ps.USE_RAG):
            from playground.rag.retrieval import list_store_names

            stores = list_store_names(config)
            if not stores:
                st.info("No knowledge store yet; create one on the Knowledge page.")
            else:
                if state.get(ps.STORE) not in stores:
                    state[ps.STORE] = stores[0]
                st.selectbox("Store", stores, key=ps.STORE, persist_state=KEEP)
                state.setdefault(ps.TOP_K, 4)
                state.setdefault(ps.QUERY, "{{ question }}")
                st.slider("top_k", 1, 20, key=ps.TOP_K, persist_state=KEEP)
                st.text_input("Query template", key=ps.QUERY, persist_state=KEEP)
                st.caption("Use `{{ context }}` in a message to place the retrieved chunks.")

    st.toggle(
        "Blind mode",
        key=ps.BLIND,
        persist_state=KEEP,
        help="Hide model names and shuffle the columns until you reveal them.",
    )
    run_clicked = st.button(
        "Run", key="btn_run", type="primary", icon=":material/play_arrow:", width="stretch"
    )


def start_run() -> None:
    """Validate the editor, retrieve context once, and queue every variant x model cell."""
    draft = ps.draft_from_state(state)
    with st.spinner("Preparing the run…"):
        run = prepare_run(
            config,
            draft.variants,
            draft.model_ids,
            draft.params,
            draft.variables,
            draft.retrieval,
            source="app",
            session_id=session_id(),
        )
    state["run_view"] = RunView.start(run, blind=bool(state.get(ps.BLIND)))


if run_clicked or autorun:
    try:
        start_run()
    except PlaygroundError as exc:
        st.error(str(exc), icon=":material/error:")


@st.fragment(parallel=True)
def answer_cell(result_id: str) -> None:
    """One model's answer: streamed on the first pass, then shown with metrics and rating."""
    view: RunView = state["run_view"]
    result = view.cell(result_id)
    st.markdown(f"**{view.label(result)}**")
    if result_id in view.pending:
        view.pending.discard(result_id)
        st.write_stream(iter(measured_stream(result, config)))
        for problem in assess(config, view.run, [result]):
            st.caption(f":material/info: {problem}")
        try:
            store().save_result(view.run, result, view.position(result_id))
        except Exception as exc:  # the answer stays on screen even if saving failed
            st.warning(f"This answer could not be saved ({exc}).")
        view.finished.add(result_id)
        if view.complete and len(view.run.results) > 1:
            st.rerun()  # the last answer is in: redraw once so the best-answer vote appears
    elif view.interrupted(result_id):
        st.markdown(result.text)
        st.warning("Stopped before it finished (the page reran); press Run to try again.")
        return
    elif result.text:
        st.markdown(result.text)
    if result.error:
        st.error(result.error, icon=":material/error:")
        return
    st.caption(metrics_line(result))
    if result.groundedness is not None:
        from playground.rag.retrieval import GROUNDEDNESS_HELP

        st.progress(result.groundedness)
        st.caption(
            f":material/fact_check: {result.groundedness:.0%} of the answer's sentences "
            "are supported by the retrieved chunks",
            help=GROUNDEDNESS_HELP,
        )
    # Imported here: they pull in SQLAlchemy and the flow registry, which a page that has
    # not run anything yet does not need (app start stays fast).
    from ui.flow_widgets import save_as_flow
    from ui.rating import rating_controls

    rating_controls(result, view.run, key=f"rate_{result.id}")
    if not view.hidden:
        save_as_flow(result, view.run, key=f"flow_{result.id}")


view: RunView | None = state.get("run_view")
if view is not None:
    st.divider()
    head, reveal = st.columns([4, 1])
    head.subheader(f"Run {view.run.id[:8]}")
    if view.hidden and reveal.button(
        "Reveal models", key="btn_reveal", icon=":material/visibility:"
    ):
        view.revealed = True
        st.rerun()
    if view.run.retrieved:
        count = len(view.run.retrieved)
        with st.expander(f"Retrieved context · {count} chunk{'s' if count != 1 else ''}"):
            st.dataframe(
                [
                    {
                        "score": round(float(c.get("score", 0)), 3),
                        "source": c.get("source"),
                        "page": c.get("page"),
                        "text": c.get("text"),
                    }
                    for c in view.run.retrieved
                ],
                hide_index=True,
                height=min(36 * (count + 1) + 2, 400),  # every chunk visible without scrolling
            )
    for variant in view.variants:
        cells = view.row(variant)
        if len(view.variants) > 1:
            note = cells[0].variant_note
            st.markdown(f"#### {variant}" + (f"  \n:gray[{note}]" if note else ""))
        for start in range(0, len(cells), COLUMNS_PER_ROW):
            chunk = cells[start : start + COLUMNS_PER_ROW]
            for column, cell in zip(st.columns(len(chunk)), chunk, strict=True):
                with column, st.container(border=True):
                    answer_cell(cell.id)
    if view.complete:
        from ui.rating import best_answer_vote

        for variant in view.variants:
            answered = [r for r in view.row(variant) if r.ok]
            if len(answered) >= 2:
                best_answer_vote(
                    view.run, answered, key=f"vote_{view.run.id}_{variant}", labels=view.labels()
                )
