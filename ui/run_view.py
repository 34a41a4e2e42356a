"""What the Playground shows of the latest run: its cells, their progress, blind labels.

`RunView` is plain state (kept in st.session_state); the functions below draw one cell, live
(state, elapsed time, text so far) or finished (answer, metrics, rating). While blind, nothing
that tells models apart is drawn: no model names in errors, no "~" of estimated token counts,
no cost, no "loading model" (only the local model loads).
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field

import streamlit as st

from playground.formatting import duration, metrics_line
from playground.records import Result, RetrievedChunk, Run
from ui.answer_markdown import answer_markdown, plain_markdown, show_answer
from ui.conversation_view import thread
from ui.live_run import CellProgress, CellState, LiveRun, is_stopped
from ui.response_format import show_result_answer

_STATE_ICONS = {
    CellState.WAITING: ":material/schedule:",
    CellState.RETRIEVING: ":material/manage_search:",
    CellState.LOADING: ":material/downloading:",
    CellState.SENT: ":material/hourglass_top:",
    CellState.STREAMING: ":material/stream:",
    CellState.DONE: ":material/check_circle:",
    CellState.FAILED: ":material/error:",
    CellState.STOPPED: ":material/stop_circle:",
}


@dataclass
class RunView:
    """A run being shown in the Playground grid (rows variants, columns models)."""

    run: Run
    live_run: LiveRun | None = None
    model_order: list[str] = field(default_factory=list)
    blind: bool = False
    revealed: bool = False
    scrolled: set[str] = field(default_factory=set)  # "live", "done": scrolled to it then
    turn: int = 1  # 2 and up: a follow-up of the run shown before

    @classmethod
    def start(
        cls, run: Run, blind: bool, rng: random.Random | None = None, live: LiveRun | None = None
    ) -> RunView:
        """A view of a run (streaming when `live` is given); blind mode shuffles the columns."""
        order: list[str] = []
        for result in run.results:
            if result.model_id not in order:
                order.append(result.model_id)
        if blind:
            (rng or random.Random()).shuffle(order)
        return cls(run=run, live_run=live, model_order=order, blind=blind)

    @classmethod
    def continuing(cls, run: Run) -> RunView:
        """A stored run shown finished in the Playground, ready for a follow-up."""
        view = cls.start(run, blind=False)
        view.turn = run.results[0].turn if run.results else 1
        view.scrolled.add("live")  # scroll to it once, as if it had just finished
        return view

    def follow(self, run: Run, live: LiveRun) -> RunView:
        """The view of this run's next turn: same columns, same blind labels, same reveal."""
        order = [m for m in self.model_order if any(r.model_id == m for r in run.results)]
        return RunView(
            run=run,
            live_run=live,
            model_order=order,
            blind=self.blind,
            revealed=self.revealed,
            turn=self.turn + 1,
        )

    @property
    def live(self) -> bool:
        """True while any cell is still running."""
        return self.live_run is not None and self.live_run.live

    @property
    def variants(self) -> list[str]:
        """Variant names in the order they were written."""
        names: list[str] = []
        for result in self.run.results:
            if result.variant_name not in names:
                names.append(result.variant_name)
        return names

    def row(self, variant: str) -> list[Result]:
        """The cells of one variant, in column order."""
        cells = [r for r in self.run.results if r.variant_name == variant]
        return sorted(cells, key=lambda r: self.model_order.index(r.model_id))

    def cell(self, result_id: str) -> Result:
        """One cell by result id."""
        return next(r for r in self.run.results if r.id == result_id)

    def progress(self, result_id: str) -> CellProgress | None:
        """A cell's live progress, when the run streams in this session."""
        return self.live_run.progress.get(result_id) if self.live_run else None

    @property
    def hidden(self) -> bool:
        """True while model names must stay hidden."""
        return self.blind and not self.revealed

    def label(self, result: Result) -> str:
        """The column heading: the model id, or 'Answer A' while blind."""
        if not self.hidden:
            return result.model_id
        index = self.model_order.index(result.model_id)
        letters = string.ascii_uppercase
        return f"Answer {letters[index % 26]}{'' if index < 26 else index // 26}"

    def labels(self) -> dict[str, str]:
        """Result id -> display label, for votes."""
        return {r.id: self.label(r) for r in self.run.results}


def state_line(progress: CellProgress, hidden: bool) -> str:
    """'streaming · 12 tokens · 3.4 s': a live cell's state in words."""
    state = progress.state
    words = "preparing" if hidden and state is CellState.LOADING else str(state)
    parts = [f"{_STATE_ICONS[state]} {words}"]
    if progress.tokens:
        parts.append(f"{progress.tokens} token{'s' if progress.tokens != 1 else ''}")
    if progress.started is not None:
        parts.append(f"{progress.elapsed():.1f} s")
    return " · ".join(parts)


def blind_metrics_line(result: Result) -> str:
    """Measurements that do not tell models apart: no '~' for estimated counts, no cost."""
    speed = f"{result.tokens_per_s:.1f} tok/s" if result.tokens_per_s else "— tok/s"
    return " · ".join(
        [
            f"TTFT {duration(result.ttft_ms)}",
            f"total {duration(result.latency_ms)}",
            speed,
            f"{result.usage.prompt_tokens} in / {result.usage.completion_tokens} out",
            "cost shown on reveal",
        ]
    )


def live_cell(view: RunView, result: Result) -> None:
    """A cell still running: heading, state and elapsed time, the text so far."""
    progress = view.progress(result.id)
    st.markdown(f"**{view.label(result)}**")
    thread(result)
    if progress is None:
        return
    st.caption(state_line(progress, view.hidden))
    if progress.text:
        st.markdown(answer_markdown(progress.text))


def rating_key(result: Result) -> str:
    """The key of an answer's stars and comment widgets in the grid."""
    return f"rate_{result.id}"


def recall_grid_ratings(view: RunView) -> None:
    """This session's earlier ratings of every answer in the grid, looked up at once."""
    from ui.rating import recall_session_ratings

    recall_session_ratings({r.id: rating_key(r) for r in view.run.results if r.ok})


def finished_cell(view: RunView, result: Result) -> None:
    """A cell that ended: answer (formatted and raw), error card, metrics, rating."""
    progress = view.progress(result.id)
    st.markdown(f"**{view.label(result)}**")
    thread(result)
    for note in progress.notes if progress else []:
        st.caption(f":material/info: {note}")
    if is_stopped(result):
        if result.text:
            show_answer(result.text, key=f"answer_{result.id}")
        st.warning(answer_markdown(str(result.error)), icon=":material/stop_circle:")
        return
    if result.error:
        if view.hidden:
            st.error(
                "This model failed; the reason names it, so it shows when you reveal the models.",
                icon=":material/error:",
            )
        else:  # a server's message is text from outside: nothing in it may be fetched
            st.error(answer_markdown(result.error), icon=":material/error:")
        return
    show_result_answer(result, key=f"answer_{result.id}")
    st.caption(blind_metrics_line(result) if view.hidden else metrics_line(result))
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

    rating_controls(result, view.run, key=rating_key(result))
    if not view.hidden:
        save_as_flow(result, view.run, key=f"flow_{result.id}")


def answer_texts(view: RunView) -> dict[str, str]:
    """Label -> text of every answered cell, for the word diff (blind labels while hidden)."""
    several = len(view.variants) > 1
    return {
        view.label(r) + (f" · {r.variant_name}" if several else ""): r.text
        for variant in view.variants
        for r in view.row(variant)
        if r.ok and r.text
    }


def chunk_caption(chunk: RetrievedChunk, number: int) -> str:
    """'2 · manual.pdf, page 3 · score 0.812': where a retrieved chunk came from, in words."""
    source = chunk.source or "unknown source"
    where = source if chunk.page is None else f"{source}, page {chunk.page}"  # text files: no pages
    scored = f" · score {chunk.score:.3f}" if chunk.score is not None else ""
    return f"{number} · {plain_markdown(where)}{scored}"


def retrieved_chunks(chunks: Sequence[RetrievedChunk]) -> None:
    """Every chunk a run retrieved, whole (a table cell cut each to one line), with its source."""
    for number, chunk in enumerate(chunks, start=1):
        st.caption(chunk_caption(chunk, number))
        st.markdown("> " + plain_markdown(chunk.text))


SCROLL_TO_RUN = """<script>
// Run was pressed: bring the answers into view (the editor can be taller than the window).
(function scroll(tries) {
  const heading = document.getElementById("run");
  if (heading) heading.scrollIntoView({behavior: "smooth", block: "start"});
  else if (tries > 0) setTimeout(() => scroll(tries - 1), 100);
})(20);
</script>"""


def scroll_to_run(view: RunView) -> None:
    """Scroll to the run's heading when it starts and once more when its answers are in.

    Twice because finished cells are much taller than live ones: the first scroll can only
    go as far as the short page allows. Later reruns (a star, a vote) do not move the page.
    """
    phase = "live" if view.live else "done"
    if phase in view.scrolled:
        return
    view.scrolled.add(phase)
    st.html(SCROLL_TO_RUN, unsafe_allow_javascript=True)


def variant_heading(variant: str, note: str) -> str:
    """The Markdown heading of one variant's row (its note is shown literally)."""
    return f"#### {plain_markdown(variant)}" + (
        f"  \n:gray[{plain_markdown(note)}]" if note else ""
    )
