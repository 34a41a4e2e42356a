"""What a served call does, without HTTP: resolve the flow, check inputs, run, record, count.

Every call goes through `Flow.start` (the headless flow path, hence `runner.MeasuredStream`),
`runner.CellFinisher` (the same checks as the CLI) and `RunRecorder` (saved in a batch with others,
after the answer has left; `close` stores every queued run), with `source = "serve"`. A model
that streams on the event loop (`MeasuredStream.is_async`: OpenAI-compatible endpoints, through
AsyncOpenAI) is awaited in the request's task, with no thread per call; a blocking one (the
embedded model) runs on a worker thread. A streaming call's deltas reach the response through
a queue either way, and the model is stopped when the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground.config import Settings
from playground.errors import NotFoundError, PlaygroundError, TemplateError
from playground.flows.registry import REF_PATTERN, FlowRegistry
from playground.flows.run import Flow, coerce_input
from playground.flows.spec import FlowSpec
from playground.records import Result, Run
from playground.runner import CellFinisher
from playground.serve.metrics import ServeMetrics
from playground.serve.recorder import RunRecorder
from playground.serve.settings import ServeSettings
from playground.serve.tracing import Tracing

log = logging.getLogger(__name__)

SOURCE = "serve"
CUT_OFF = "Cut off: the client disconnected after {n} characters, so the model was stopped."
MAX_WORKERS = 256  # blocking model calls in flight; 100 concurrent clients fit with room


class InputProblem(PlaygroundError):
    """A request's inputs or parameters that cannot be used; names the field (422)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class UnknownFlowError(NotFoundError):
    """A flow name this server does not serve (404)."""


@dataclass
class ServedFlow:
    """The flow version that answers a request, and how it was asked for."""

    flow: Flow
    ref: str  # as served: a path, name, name@3 or name@label
    label: str | None

    @property
    def name(self) -> str:
        """The flow's name (the route and the chat `model`)."""
        return self.flow.spec.name

    @property
    def version(self) -> int | None:
        """The version that answers (None for an unsaved spec file)."""
        return self.flow.spec.version


@dataclass
class _Target:
    ref: str
    name: str
    part: str | None  # None: newest; digits: fixed; else a label
    fixed: ServedFlow | None = None


class FlowResolver:
    """Served refs -> the version that answers now; labels are read per request.

    A label moved with `playground flow label` takes effect on the next request: the lookup
    is one indexed query, and loaded versions are cached by (name, version), so the YAML is
    read and checked once per version.
    """

    def __init__(self, settings: Settings, refs: Sequence[str]) -> None:
        if not refs:
            raise PlaygroundError("Nothing to serve; give a flow NAME@LABEL or a spec PATH.")
        self.settings = settings
        self.registry = FlowRegistry(settings)
        self._cache: dict[tuple[str, int], Flow] = {}
        self._lock = threading.Lock()
        self._targets: dict[str, _Target] = {}
        for ref in refs:
            target = self._target(ref)
            if target.name in self._targets:
                raise PlaygroundError(f"Flow {target.name} is given twice; serve it once.")
            self._targets[target.name] = target
            self.resolve(target.name).flow.check()  # a bad spec fails at start, not per call

    def _target(self, ref: str) -> _Target:
        spec, source = self.registry.resolve(ref)
        match = REF_PATTERN.fullmatch(ref)
        if source != spec.ref or match is None or spec.version is None:
            # A spec file: served as read at start.
            fixed = ServedFlow(Flow(spec, self.settings, source), str(Path(ref)), None)
            return _Target(ref, spec.name, None, fixed)
        part = match["ref"]
        return _Target(ref, spec.name, None if part == "latest" else part)

    @property
    def names(self) -> list[str]:
        """Names of the served flows."""
        return list(self._targets)

    def _cached(self, name: str, version: int) -> Flow:
        with self._lock:
            flow = self._cache.get((name, version))
        if flow is None:
            spec: FlowSpec = self.registry.get(name, version)
            flow = Flow(spec, self.settings, spec.ref)
            with self._lock:
                self._cache[(name, version)] = flow
        return flow

    def resolve(self, name: str) -> ServedFlow:
        """The version of a served flow that answers now; UnknownFlowError if not served."""
        target = self._targets.get(name)
        if target is None:
            served = ", ".join(self._targets)
            raise UnknownFlowError(
                f"This server does not serve a flow named {name!r}; it serves {served}."
            )
        if target.fixed is not None:
            return target.fixed
        part = target.part
        if part is None:
            version = self.registry.latest(name)
            if version is None:
                raise UnknownFlowError(f"Flow {name} has no saved versions any more.")
            return ServedFlow(self._cached(name, version), target.ref, None)
        if part.isdigit():
            return ServedFlow(self._cached(name, int(part)), target.ref, None)
        labels = self.registry.store.flows.flow_labels(name)
        if part not in labels:
            raise UnknownFlowError(f"Flow {name} has no label {part!r} any more; set it again.")
        return ServedFlow(self._cached(name, labels[part]), target.ref, part)


def checked_inputs(spec: FlowSpec, given: Mapping[str, Any]) -> dict[str, object]:
    """Inputs checked one field at a time, so a 422 names the field; defaults fill the rest."""
    for key in given:
        if key not in spec.inputs:
            known = ", ".join(spec.inputs) or "no inputs"
            raise InputProblem(
                f"inputs.{key}", f"Flow {spec.name} has no input '{key}'; it takes {known}."
            )
    values: dict[str, object] = {}
    for key, declared in spec.inputs.items():
        value = given.get(key)
        if value is None:
            if declared.default is None:
                raise InputProblem(
                    f"inputs.{key}",
                    f"Input '{key}' is required by flow {spec.name}; send it in inputs.",
                )
            continue
        if isinstance(value, dict | list):
            raise InputProblem(
                f"inputs.{key}",
                f"Input '{key}' must be a {declared.type}, not {type(value).__name__}.",
            )
        try:
            values[key] = coerce_input(key, declared, value)
        except TemplateError as exc:
            raise InputProblem(f"inputs.{key}", str(exc)) from None
    return values


def capped_params(served: ServedFlow, requested: int | None, limit: int) -> Any:
    """The spec's params with max_tokens lowered to the request's and the server's limit."""
    if requested is not None and requested > limit:
        raise InputProblem(
            "max_tokens", f"max_tokens is {requested}, above this server's limit of {limit}."
        )
    params = served.flow.spec.model.params
    wanted = min(requested or params.max_tokens, params.max_tokens, limit)
    if wanted == params.max_tokens:
        return params
    return params.model_copy(update={"max_tokens": wanted})


_CHATCMPL = re.compile(r"^chatcmpl-")


def run_id_of(value: str) -> str:
    """A run id as given to feedback: the run id itself or a chat completion id."""
    return _CHATCMPL.sub("", value.strip())


@dataclass
class Call:
    """One served call in flight: its run, its result, and (when streaming) its deltas."""

    served: ServedFlow
    run: Run
    route: str
    pump: asyncio.Task[None] | None = None  # the task streaming an async model, if any

    # Made when a streamed call first uses them: a Queue and an Event (a Condition and a Lock)
    # per call were 5% of a non-streamed call's CPU.
    @functools.cached_property
    def queue(self) -> asyncio.Queue[tuple[str, str]]:
        """The call's events on their way to the response (streamed calls)."""
        return asyncio.Queue()

    @functools.cached_property
    def stop(self) -> threading.Event:
        """Set when the client went away: a threaded model stops at its next delta."""
        return threading.Event()

    @property
    def result(self) -> Result:
        """The call's only result."""
        return self.run.results[0]


class ServeService:
    """Runs served calls (on the event loop or worker threads) and records each as a run."""

    def __init__(
        self,
        settings: Settings,
        serve: ServeSettings,
        resolver: FlowResolver,
        metrics: ServeMetrics,
        on_recorded: Any = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.serve = serve
        self.resolver = resolver
        self.metrics = metrics
        self.on_recorded = on_recorded  # e.g. the online scorer's enqueue
        self.executor = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="serve")
        self.recorder = RunRecorder(settings)
        self.tracing = tracing  # OpenTelemetry export, when configured

    def _span(self, call: Call) -> contextlib.AbstractContextManager[Any]:
        # Entered on the worker thread that calls the model, so the SDK's span is its child.
        return self.tracing.call_span(call) if self.tracing else contextlib.nullcontext()

    def close(self) -> None:
        """Wait for calls in flight to finish, then store every queued run."""
        self.executor.shutdown(wait=True)
        self.recorder.close()

    def prepare(
        self, name: str, inputs: Mapping[str, Any], max_tokens: int | None, route: str
    ) -> tuple[Call, Any]:
        """Resolve, check and plan a call (no model contact yet): InputProblem, NotFound..."""
        served = self.resolver.resolve(name)
        values = checked_inputs(served.flow.spec, inputs)
        params = capped_params(served, max_tokens, self.serve.max_tokens)
        run, stream = served.flow.start(values, source=SOURCE, params=params)
        return Call(served, run, route), stream

    def _finish_blocks(self, call: Call) -> bool:
        """True when finishing may call out (moderation, groundedness): not on the loop then."""
        return self.settings.moderation is not None or call.run.retrieval is not None

    async def _finish_async(self, call: Call) -> None:
        """`_finish` from the event loop: assessed here (or on a worker thread when that may
        block), queued for saving once the loop is free, i.e. after the answer was written."""
        if self._finish_blocks(call):
            await asyncio.get_running_loop().run_in_executor(self.executor, self._assess, call)
        else:
            self._assess(call)
        # Queueing wakes the writer thread, and on a busy box that wake-up took ~2 ms from the
        # answer (bench/README.md); the loop runs this before reading the next request, so
        # feedback on the run id still finds it queued.
        asyncio.get_running_loop().call_soon(self._record, call)

    def _finish(self, call: Call) -> Future[None]:
        """Assess and count a finished call, and queue its run for saving (the future says when)."""
        self._assess(call)
        return self._record(call)

    def _assess(self, call: Call) -> None:
        """Score (moderation, groundedness) and count a finished call."""
        for problem in CellFinisher(self.settings, call.run).check(call.run.results):
            log.warning(problem)  # a check that failed must not lose the answer
        self.metrics.observe_call(call.served, call.result, call.route)

    def _record(self, call: Call) -> Future[None]:
        """Queue a finished call's run for saving; online scoring follows its commit.

        Never raises: the answer has left (or is leaving), so a run that cannot be stored is
        logged and counted in playground_serve_unrecorded_calls instead.
        """
        on_recorded, served, run = self.on_recorded, call.served, call.run
        failures = self.metrics.unrecorded.labels(served.name, str(served.version or 0))
        try:
            saved = self.recorder.submit(run)
        except Exception as exc:
            log.exception("Served run %s could not be queued for recording", run.id)
            failures.inc()
            refused: Future[None] = Future()
            refused.set_exception(exc)
            return refused

        def recorded(done: Future[None]) -> None:
            if done.exception() is not None:
                failures.inc()
            elif on_recorded is not None:  # scores refer to the stored result
                on_recorded(served, run)

        saved.add_done_callback(recorded)
        return saved

    async def complete(self, call: Call, stream: Any) -> Result:
        """Run the call to the end (on the loop or a worker thread); its run is stored after."""
        if stream.is_async:
            with self._span(call):
                await stream.adrain()
            await self._finish_async(call)
            return call.result

        def work() -> None:
            with self._span(call):
                stream.drain()
            self._finish(call)

        await asyncio.get_running_loop().run_in_executor(self.executor, work)
        return call.result

    def start_stream(self, call: Call, stream: Any) -> None:
        """Pump the model's deltas into call.queue (task or worker thread) until done or stopped."""
        if stream.is_async:
            call.pump = asyncio.get_running_loop().create_task(self._pump(call, stream))
            return
        loop = asyncio.get_running_loop()
        put = call.queue.put_nowait

        def pump() -> None:
            deltas = iter(stream)
            cut = False
            sent = 0
            with self._span(call):
                try:
                    for delta in deltas:
                        if call.stop.is_set():
                            cut = True
                            break
                        sent += len(delta)
                        loop.call_soon_threadsafe(put, ("delta", delta))
                finally:
                    deltas.close()  # type: ignore[attr-defined] # stops the model's HTTP stream or llama loop
                if cut:
                    call.result.error = CUT_OFF.format(n=sent)
            try:
                self._finish(call)
            except Exception:
                log.exception("A streamed call could not be finished")
                loop.call_soon_threadsafe(put, ("failed", "The answer could not be recorded."))
                return
            loop.call_soon_threadsafe(put, ("done", ""))

        self.executor.submit(pump)

    async def _pump(self, call: Call, stream: Any) -> None:
        """Stream an async model into call.queue; cancelled (the client left), it is cut off."""
        put = call.queue.put_nowait
        sent = 0
        with self._span(call):
            try:
                async for delta in stream:
                    sent += len(delta)
                    put(("delta", delta))
            except asyncio.CancelledError:  # the model's HTTP stream is closed by now
                call.result.error = CUT_OFF.format(n=sent)
        try:
            await self._finish_async(call)
        except Exception:
            log.exception("A streamed call could not be finished")
            put(("failed", "The answer could not be recorded."))
            return
        put(("done", ""))

    async def events(self, call: Call) -> AsyncIterator[tuple[str, str]]:
        """The call's events: ("delta", text)..., then ("done", "") or ("failed", why).

        Closing this iterator early (the client went away) stops the model.
        """
        try:
            while True:
                kind, value = await call.queue.get()
                yield kind, value
                if kind in ("done", "failed"):
                    return
        finally:
            call.stop.set()
            if call.pump is not None and not call.pump.done():
                call.pump.cancel()  # stops the model at once, not at its next delta
