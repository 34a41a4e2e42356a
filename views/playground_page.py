"""Playground: one prompt, in named variants, on many models at once, streamed side by side."""

from __future__ import annotations

import streamlit as st

from playground.conversation import plan_follow_up
from playground.errors import PlaygroundError
from playground.heap import freeze_after_imports
from playground.models.base import ModelParams
from playground.models.local import DEFAULT_MODEL_ID
from playground.models.registry import list_models
from playground.runner import apply_response_format
from ui import playground_state as ps
from ui import response_format as rf
from ui.answer_markdown import answer_markdown
from ui.cost_estimate import estimate_run_cost
from ui.live_run import LiveRun
from ui.resources import session_id, settings, store
from ui.run_view import RunView, scroll_to_run

COLUMNS_PER_ROW = 4
KEEP = ps.KEEP
POLL_S = 0.4  # how often a streaming grid redraws
EAGER_PARAMETER_PANELS = 8  # with more models, a Parameters panel is drawn once it is opened
FOLLOW_UP = "pg_follow_up"
RUN_REFUSAL = "pg_run_refusal"  # why the last Run click sent nothing, shown under the button

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


def start_run() -> RunView:
    """Check the editor (a bad click sends nothing), then stream every cell in the background."""
    draft = ps.draft_from_state(state)
    live = LiveRun.prepare(
        config,
        draft.variants,
        draft.model_ids,
        draft.params,
        draft.variables,
        draft.retrieval,
        save=store().runs.save_result,
        session_id=session_id(),
    )
    apply_response_format(live.run.results, rf.format_from_state(state), config)
    view = RunView.start(live.run, blind=bool(state.get(ps.BLIND)), live=live.start())
    state["run_view"] = view
    return view


def click_run() -> None:
    """The Run button (and a run asked for from History): start, or say why not."""
    current: RunView | None = state.get("run_view")
    if current is not None and current.live:  # a double-click while answers stream: one run
        state[RUN_REFUSAL] = ("info", "A run is still going; stop it or wait for it to finish.")
        return
    try:
        start_run()
    except PlaygroundError as exc:
        state[RUN_REFUSAL] = ("error", str(exc))


def few_shot_editor(vid: int, edited: dict[str, object]) -> None:
    """Few-shot messages between the system and the user message: role, text, remove."""
    ids = ps.example_ids(state, vid)
    if ids:
        st.caption("Few-shot examples, sent in this order between the system and user message")
    for number, eid in enumerate(ids, start=1):
        role_col, text_col, remove_col = st.columns([2.3, 5, 0.7], vertical_alignment="center")
        role_col.selectbox(
            f"Role of few-shot message {number}",
            ["user", "assistant"],
            key=ps.example_key(vid, eid, "role"),
            label_visibility="collapsed",
            **edited,  # type: ignore[arg-type]
        )
        text_col.text_area(
            f"Few-shot message {number}",
            key=ps.example_key(vid, eid, "content"),
            height=68,
            label_visibility="collapsed",
            placeholder="An example user question" if number % 2 else "The answer you want",
            **edited,  # type: ignore[arg-type]
        )
        remove_col.button(
            "",
            key=f"btn_remove_example_{vid}_{eid}",
            icon=":material/close:",
            on_click=ps.remove_example,
            args=(state, vid, eid),
            help=f"Remove few-shot message {number}",
        )
    st.button(
        "Add a few-shot message",
        key=f"btn_add_example_{vid}",
        on_click=ps.add_example,
        args=(state, vid),
        icon=":material/add_comment:",
        help="Examples go between the system and the user message: user, assistant, user, ...",
    )


def send_follow_up() -> None:
    """The Send button: every answered cell of the shown run answers in its own thread."""
    current: RunView | None = state.get("run_view")
    try:
        turn = plan_follow_up(current.run if current else None, state.get(FOLLOW_UP) or "")
    except PlaygroundError as exc:
        state["follow_up_error"] = str(exc)
        return
    assert current is not None  # plan_follow_up refuses a follow-up with no run
    live = LiveRun(turn, config, save=store().runs.save_result).start()
    state["run_view"] = current.follow(turn, live)
    state[FOLLOW_UP] = ""


def follow_up_box(view: RunView) -> None:
    """Under a finished run: a follow-up that every model answers with its own history."""
    st.text_area(
        "Follow-up",
        key=FOLLOW_UP,
        height=68,
        placeholder="Ask every model a follow-up; each one sees its own earlier answers.",
    )
    st.button(
        "Send follow-up",
        key="btn_follow_up",
        icon=":material/send:",
        on_click=send_follow_up,
        help="Each column continues its own conversation (rows and columns stay as they are).",
    )
    problem = state.pop("follow_up_error", None)
    if problem:
        st.error(problem, icon=":material/error:")


draft = state.pop("pending_draft", None)
if draft is not None:
    missing = ps.apply_draft(state, draft, set(ready))
    rf.apply_format(state, draft.response_format)
    if draft.note:
        st.info(answer_markdown(draft.note), icon=":material/restore:")
    for model_id in missing:
        st.warning(
            f"{model_id} is no longer available, so it was left out; "
            "configure it on the Settings page to run it again.",
            icon=":material/warning:",
        )
continued = state.pop("pending_conversation", None)  # from History: follow up a stored run
if continued is not None:
    shown: RunView | None = state.get("run_view")
    if shown is not None and shown.live:
        st.info(
            "A run is still going here; stop it or let it finish, then continue the "
            "conversation from History.",
            icon=":material/info:",
        )
    else:
        state["run_view"] = RunView.continuing(store().runs.get_run(continued))
autorun = bool(state.pop("pending_autorun", False))
state[ps.MODELS] = [m for m in state.get(ps.MODELS, []) if m in ready]

editor, side = st.columns([3, 2], gap="large")

with editor:
    variant_ids: list[int] = list(state[ps.VARIANT_IDS])
    labels = ps.variant_tab_labels(state)
    tabs = st.tabs(labels, default=ps.active_tab(state, labels))
    for tab, vid in zip(tabs, variant_ids, strict=True):
        with tab:
            # Each edit marks its variant as the open tab (a rename redraws the tabs).
            edited = {"on_change": ps.focus_variant, "args": (state, vid), "persist_state": KEEP}
            name_col, note_col = st.columns([1, 2])
            name_col.text_input("Variant name", key=ps.variant_key(vid, "name"), **edited)
            note_col.text_input("Note (optional)", key=ps.variant_key(vid, "note"), **edited)
            st.text_area("System message", key=ps.variant_key(vid, "system"), height=80, **edited)
            few_shot_editor(vid, edited)
            st.text_area("User message", key=ps.variant_key(vid, "user"), height=120, **edited)
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
    broken = ps.broken_template_notes(state)
    if variables or broken:
        st.subheader("Variables", divider="gray")
        for note in broken:  # its fields vanished: say why, where the fields were
            st.warning(note, icon=":material/warning:")
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
        wrap=True,  # in a column the chips would scroll sideways and hide the first model
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
    chosen = state[ps.MODELS]
    for model_id in chosen:
        if len(chosen) <= EAGER_PARAMETER_PANELS:
            panel = st.expander(f"Parameters · {model_id}")
        else:  # five widgets x 48 models made every rerun take a second: draw only open ones
            panel = st.expander(
                f"Parameters · {model_id}", key=f"pg_params_open_{model_id}", on_change="rerun"
            )
            if not panel.open:
                continue  # its parameters are ModelParams' defaults until it is opened
        # Set once a panel is drawn: 240 unused keys made every text input of the grid slower
        # (Streamlit walks the whole session state for each one).
        defaults = ModelParams()
        for param in ("temperature", "top_p", "max_tokens", "seed"):
            state.setdefault(ps.param_key(model_id, param), getattr(defaults, param))
        state.setdefault(ps.param_key(model_id, "stop"), "")
        with panel:
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

    rf.response_format_picker(state)
    st.toggle(
        "Blind mode",
        key=ps.BLIND,
        persist_state=KEEP,
        help="Hide model names and shuffle the columns until you reveal them.",
    )
    if autorun:
        click_run()
    view: RunView | None = state.get("run_view")
    st.button(
        "Run",
        key="btn_run",
        type="primary",
        icon=":material/play_arrow:",
        width="stretch",
        shortcut="Ctrl+Enter",
        disabled=view is not None and view.live,
        # A callback runs before the page is drawn again, so the requests leave before the
        # editor's widgets are: with 48 models every millisecond of the click's rerun counts.
        on_click=click_run,
        help="Runs every variant on every selected model (Ctrl+Enter).",
    )
    refusal = state.pop(RUN_REFUSAL, None)
    if refusal is not None:  # shown under the Run button, where the click was
        kind, sentence = refusal
        if kind == "info":
            st.info(sentence, icon=":material/info:")
        else:
            st.error(sentence, icon=":material/error:")
    try:  # what the click would cost, when prices are configured for the chosen models
        estimate = estimate_run_cost(ps.draft_from_state(state), config)
    except PlaygroundError:  # a bad parameter: Run will say so in one sentence
        estimate = None
    if estimate is not None:
        st.caption(f":material/payments: {estimate.sentence()}")


def stop_run() -> None:
    """The Stop button: end every running cell, keeping what streamed so far."""
    current: RunView | None = state.get("run_view")
    if current is not None and current.live_run is not None:
        current.live_run.stop()


def run_grid(view: RunView) -> None:
    """Every cell, row by row; finished runs add the best-answer vote under each variant."""
    from ui.run_view import (
        answer_texts,
        finished_cell,
        live_cell,
        recall_grid_ratings,
        variant_heading,
    )

    live = view.live
    if not live:
        recall_grid_ratings(view)
    for variant in view.variants:
        cells = view.row(variant)
        if len(view.variants) > 1:
            st.markdown(variant_heading(variant, cells[0].variant_note))
        for start in range(0, len(cells), COLUMNS_PER_ROW):
            chunk = cells[start : start + COLUMNS_PER_ROW]
            # Bordered columns, not a bordered container in each: one block less per card.
            for column, cell in zip(st.columns(len(chunk), border=True), chunk, strict=True):
                with column:
                    (live_cell if live else finished_cell)(view, cell)
        answered = [r for r in cells if r.ok]
        if not live and len(answered) >= 2:
            from ui.rating import best_answer_vote

            label = "Best answer" + (f" · {variant}" if len(view.variants) > 1 else "")
            best_answer_vote(
                view.run,
                answered,
                key=f"vote_{view.run.id}_{variant}",
                labels=view.labels(),
                label=label,
            )
    scroll_to_run(view)  # after the cells: the page is tall enough to bring them into view
    if not live:
        from ui.text_diff import diff_picker

        diff_picker(answer_texts(view), key=f"diff_{view.run.id}", title="Compare two answers")


@st.fragment(run_every=POLL_S)
def live_grid() -> None:
    """The grid while answers stream, redrawn from the cells' progress a few times a second."""
    current: RunView = state["run_view"]
    if not current.live:
        st.rerun()  # the last cell ended: redraw the page once, with ratings and votes
    run_grid(current)


if view is not None:
    st.divider()
    head, actions = st.columns([4, 1], vertical_alignment="bottom")
    head.subheader(f"Run {view.run.id[:8]}", anchor="run")
    if view.turn > 1:
        from ui.conversation_view import turn_caption

        head.caption(f":material/forum: {turn_caption(view.run, view.turn)}")
    if view.live:
        actions.button(
            "Stop",
            key="btn_stop",
            icon=":material/stop:",
            on_click=stop_run,
            disabled=bool(view.live_run and view.live_run.stopping),
            width="stretch",
            help="Stops every answer still streaming; what came so far is kept and saved.",
        )
    elif view.hidden and actions.button(
        "Reveal models", key="btn_reveal", icon=":material/visibility:"
    ):
        view.revealed = True
        st.rerun()
    if view.live_run is not None and view.live_run.error:
        st.error(answer_markdown(view.live_run.error), icon=":material/error:")
    if view.run.retrieved:
        from ui.run_view import retrieved_chunks

        count = len(view.run.retrieved)
        with st.expander(f"Retrieved context · {count} chunk{'s' if count != 1 else ''}"):
            retrieved_chunks(view.run.retrieved)
    if view.live:
        live_grid()
    else:
        run_grid(view)
        follow_up_box(view)

# After the imports this run made (the SDK, on a first Run): keeps full collections short
# while a grid of answers streams in.
freeze_after_imports()
