"""A Playground run that streams in background threads, so that the page can come and go.

Each cell (variant x model) runs in its own thread and reports its state (waiting, loading
model, retrieving, waiting for the first token, streaming, done, failed, stopped) with the
text so far. Nothing here touches Streamlit: the page polls `progress` while `live` is true.
Reruns, other widgets and page switches do not cancel cells; only `stop()` does, and a
stopped cell is saved with its partial answer and a "stopped" error.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from playground.config import Settings
from playground.errors import PlaygroundError
from playground.models.base import ModelParams
from playground.records import PromptVariant, Result, RetrievalSettings, Run
from playground.runner import (
    CellFinisher,
    EndpointSlots,
    SaveCell,
    measured_stream,
    plan_cells,
    prepare_run,
)

# After Stop, a cell still waiting on a silent server is closed this long after the others.
STOP_GRACE_S = 1.0


class CellState(StrEnum):
    """Where one cell is; the words are shown on the page."""

    WAITING = "waiting"
    RETRIEVING = "retrieving context"
    LOADING = "loading model"
    SENT = "waiting for the first token"
    STREAMING = "streaming"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"


FINAL_STATES = {CellState.DONE, CellState.FAILED, CellState.STOPPED}


def stopped_message(tokens: int) -> str:
    """The error a stopped cell is saved with (its partial text is kept)."""
    if tokens == 0:
        return "Stopped before the model answered."
    return f"Stopped after {tokens} token{'s' if tokens != 1 else ''}; the partial answer is kept."


def is_stopped(result: Result) -> bool:
    """True for an answer the user stopped."""
    return bool(result.error) and str(result.error).startswith("Stopped ")


@dataclass
class CellProgress:
    """What the page shows of one cell while it runs."""

    state: CellState = CellState.WAITING
    text: str = ""
    tokens: int = 0
    started: float | None = None  # time.monotonic() when it began
    ended: float | None = None
    notes: list[str] = field(default_factory=list)  # checks that could not be done, save errors

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the cell began (frozen once it ended); 0 before it began."""
        if self.started is None:
            return 0.0
        end = self.ended if self.ended is not None else (now or time.monotonic())
        return max(0.0, end - self.started)

    @property
    def final(self) -> bool:
        """True once the cell is done, failed or stopped."""
        return self.state in FINAL_STATES


class LiveRun:
    """Runs every cell of `run` in its own thread; `save` stores each cell as it ends."""

    def __init__(
        self,
        run: Run,
        settings: Settings,
        save: SaveCell,
        retrieval_inputs: tuple[Sequence[PromptVariant], Mapping[str, ModelParams]] | None = None,
    ) -> None:
        self.run = run
        self.settings = settings
        # one finisher for the run: the retrieved chunks are embedded once, not once per cell
        self._finisher = CellFinisher(settings, run, save)
        self._retrieval_inputs = retrieval_inputs
        # every cell streams at once, within each endpoint's max_concurrency (48 cells, no waves)
        self._slots = EndpointSlots(settings)
        self._cancel = threading.Event()
        self._retrieved = threading.Event()
        self._lock = threading.Lock()
        self._claimed: set[str] = set()  # cells whose outcome is being or has been kept
        self.progress: dict[str, CellProgress] = {r.id: CellProgress() for r in run.results}
        self.error: str | None = None  # a failure of the whole run (retrieval)
        if retrieval_inputs is not None:
            for cell in self.progress.values():
                cell.state = CellState.RETRIEVING
        self.started = time.monotonic()

    # --- starting -------------------------------------------------------------------------

    @classmethod
    def prepare(
        cls,
        settings: Settings,
        variants: Sequence[PromptVariant],
        model_ids: Sequence[str],
        params: Mapping[str, ModelParams],
        variables: Mapping[str, str],
        retrieval: RetrievalSettings | None,
        save: SaveCell,
        session_id: str | None = None,
    ) -> LiveRun:
        """Check everything now (a bad click sends nothing); retrieval, if any, runs later.

        Raises the first PlaygroundError, like `runner.prepare_run`.
        """
        if retrieval is None:
            run = prepare_run(
                settings, variants, model_ids, params, variables, None, "app", session_id
            )
            return cls(run, settings, save)
        from playground.prompts import render
        from playground.rag.retrieval import knowledge_base

        knowledge_base(settings).get_store(retrieval.store)  # StoreNotFoundError if gone
        render(retrieval.query, variables, "retrieval query")
        # Plan with a stand-in context so templates, models and variables are checked now;
        # the real context replaces it once retrieval has run in the background.
        stand_in = {**variables, retrieval.context_variable: "(retrieved context)"}
        run = Run(
            source="app", variables=dict(variables), retrieval=retrieval, session_id=session_id
        )
        run.results = plan_cells(variants, model_ids, params, stand_in, settings, retrieval)
        return cls(run, settings, save, retrieval_inputs=(list(variants), dict(params)))

    def start(self) -> LiveRun:
        """Start every cell's thread (and retrieval first, when the run retrieves)."""
        if self._retrieval_inputs is not None:
            threading.Thread(target=self._retrieve, name="pg-retrieve", daemon=True).start()
        else:
            self._retrieved.set()
        for index, result in enumerate(self.run.results):
            thread = threading.Thread(
                target=self._cell, args=(index, result), name=f"pg-cell-{index}", daemon=True
            )
            thread.start()
        return self

    # --- state ----------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """True while any cell has not ended."""
        return not all(cell.final for cell in self.progress.values())

    @property
    def stopping(self) -> bool:
        """True once Stop was pressed."""
        return self._cancel.is_set()

    def stop(self) -> None:
        """Stop every cell: streaming ones keep their text; silent ones end after a grace."""
        if self._cancel.is_set():
            return
        self._cancel.set()
        threading.Thread(target=self._close_silent_cells, name="pg-stop", daemon=True).start()

    # --- work -----------------------------------------------------------------------------

    def _retrieve(self) -> None:
        assert self._retrieval_inputs is not None
        variants, params = self._retrieval_inputs
        run = self.run
        try:
            prepared = prepare_run(
                self.settings,
                variants,
                list(dict.fromkeys(r.model_id for r in run.results)),
                params,
                run.variables,
                run.retrieval,
            )
        except PlaygroundError as exc:
            self.error = str(exc)
        else:
            run.retrieved = prepared.retrieved
            for mine, fresh in zip(run.results, prepared.results, strict=True):
                mine.messages = fresh.messages
        finally:
            self._retrieved.set()

    def _cell(self, index: int, result: Result) -> None:
        cell = self.progress[result.id]
        self._retrieved.wait()
        if self.error is not None:  # retrieval failed: nothing was sent, nothing is saved
            with self._lock:
                self._claimed.add(result.id)
                result.error = self.error
                cell.state, cell.ended = CellState.FAILED, time.monotonic()
            return
        self._move(result.id, CellState.WAITING)
        with self._slots.hold(result.model_id):
            if self._cancel.is_set():
                self._finish(index, result, None)
                return
            cell.started = time.monotonic()
            # The stream fills its own copy: a cell closed by Stop is saved from what was
            # shown, and a late reply from a silent server cannot change it afterwards.
            working = replace(result, messages=list(result.messages))
            stream = measured_stream(working, self.settings)
            prepare = getattr(stream.model, "prepare", None)
            if prepare is not None:
                self._move(result.id, CellState.LOADING)
                with contextlib.suppress(Exception):  # the stream reports it as the error
                    prepare()
            self._move(result.id, CellState.SENT)
            deltas = iter(stream)
            try:
                for delta in deltas:
                    with self._lock:
                        if result.id in self._claimed:  # closed by Stop meanwhile
                            break
                        cell.text += delta
                        cell.tokens += 1
                        cell.state = CellState.STREAMING
                    if self._cancel.is_set():
                        break
            finally:
                deltas.close()  # type: ignore[attr-defined]  # ends the HTTP stream or local decode
            self._finish(index, result, working)

    def _move(self, result_id: str, state: CellState) -> None:
        with self._lock:
            if result_id not in self._claimed:
                self.progress[result_id].state = state

    def _finish(self, index: int, result: Result, working: Result | None) -> None:
        """Copy a cell's outcome into the run, score it, save it; once per cell."""
        cell = self.progress[result.id]
        with self._lock:
            if result.id in self._claimed:
                return
            self._claimed.add(result.id)
            stopped = self._cancel.is_set() and (working is None or working.error is None)
            if working is not None:
                _copy_outcome(working, result)
            if stopped:
                result.text = cell.text
                result.error = stopped_message(cell.tokens)
        sent = self._retrieved.is_set() and self.error is None
        if sent:  # a cell stopped during retrieval sent nothing: nothing to keep
            try:
                cell.notes += self._finisher.finish(result, index)
            except Exception as exc:  # the answer stays on screen even if saving failed
                cell.notes.append(f"This answer could not be saved ({exc}).")
        with self._lock:
            if stopped:
                cell.state = CellState.STOPPED
            else:
                cell.state = CellState.DONE if result.error is None else CellState.FAILED
            cell.ended = time.monotonic()

    def _close_silent_cells(self) -> None:
        time.sleep(STOP_GRACE_S)
        for index, result in enumerate(self.run.results):
            if not self.progress[result.id].final:
                self._finish(index, result, None)


def _copy_outcome(source: Result, target: Result) -> None:
    for name in (
        "text",
        "error",
        "usage",
        "ttft_ms",
        "latency_ms",
        "tokens_per_s",
        "cost_usd",
    ):
        setattr(target, name, copy.copy(getattr(source, name)))
