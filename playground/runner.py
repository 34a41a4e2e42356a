"""Fan one prompt out to many models and measure each answer: the one place for metrics.

`plan_cells` validates everything before anything is sent; `MeasuredStream` wraps one
model's stream and fills its Result (time to first token, latency, tokens/s, tokens, cost),
timed from the moment the provider sent its request (imports and client set-up excluded);
`run_cells` runs every cell at once for the CLI and headless flows, while the app iterates
one MeasuredStream per cell in that cell's own thread (ui/live_run.py); both hold back only
for an endpoint's `max_concurrency` (EndpointSlots).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence

from playground.config import Price, Settings
from playground.errors import EndpointError, PlaygroundError
from playground.models.base import (
    ChatModel,
    Message,
    ModelParams,
    Usage,
    request_sent,
    request_sent_at,
    start_call,
)
from playground.models.registry import get_model, provider_of
from playground.models.response_format import ResponseFormat
from playground.prompts import render_messages
from playground.records import PromptVariant, Result, RetrievalSettings, Run
from playground.redaction import clean_message


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters a token) for servers that report none."""
    return max(1, round(len(text) / 4)) if text else 0


def cost_usd(usage: Usage, price: Price) -> float:
    """USD for a call's tokens at the configured price per million tokens."""
    return (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1e6


class MeasuredStream:
    """Iterate to get a model's text deltas; afterwards `result` holds text and measurements.

    Iterate it (`for`, on a thread) or, when the model has `astream`, asynchronously
    (`async for`, on an event loop); both fill the result the same way (`_Meter`).
    Errors never escape: a failing model ends its stream and sets `result.error`, so the
    other models in a comparison carry on.
    """

    def __init__(self, model: ChatModel, result: Result, price: Price) -> None:
        self.model = model
        self.result = result
        self.price = price

    @property
    def is_async(self) -> bool:
        """True when the model streams on an event loop (`async for`, `adrain`)."""
        return callable(getattr(self.model, "astream", None))

    def __iter__(self) -> Iterator[str]:
        meter = _Meter(self)
        try:
            prepare = getattr(self.model, "prepare", None)
            if prepare is not None:
                prepare()  # one-off loading is not latency
            meter.begin()
            for item in _open_stream(self.model, self.result):
                delta = meter.take(item)
                if delta:
                    yield delta
        except Exception as exc:
            meter.fail(exc)
        finally:
            meter.end()

    async def __aiter__(self) -> AsyncIterator[str]:
        meter = _Meter(self)
        try:
            meter.begin()
            async for item in _open_astream(self.model, self.result):
                delta = meter.take(item)
                if delta:
                    yield delta
        except Exception as exc:
            meter.fail(exc)
        finally:  # also when cancelled (a client went away): the partial answer is measured
            meter.end()

    def drain(self) -> Result:
        """Consume the whole stream and return the filled result."""
        for _ in self:
            pass
        return self.result

    async def adrain(self) -> Result:
        """Consume the whole stream on the event loop and return the filled result."""
        async for _ in self:
            pass
        return self.result


class _Meter:
    """What one iteration of a MeasuredStream counts, sync or async: the one measurement."""

    def __init__(self, stream: MeasuredStream) -> None:
        self.stream = stream
        self.parts: list[str] = []
        self.usage: Usage | None = None
        self.chunks = 0
        self.first: float | None = None
        self.start = time.perf_counter()

    def begin(self) -> None:
        """The call starts now (after any one-off loading)."""
        start_call()
        self.start = time.perf_counter()

    def take(self, item: str | Usage) -> str | None:
        """Count one item of the model's stream; the text delta to pass on, if any."""
        if isinstance(item, Usage):
            self.usage = item
            return None
        if not item:
            return None
        if self.first is None:
            self.first = time.perf_counter()
            # read where the request was sent: it went out in this same step
            self.start = _sent_since(self.start)
            request_sent.set()
        self.chunks += 1
        self.parts.append(item)
        return item

    def fail(self, exc: Exception) -> None:
        """The model failed: its sentence becomes the result's error."""
        result = self.stream.result
        if isinstance(exc, PlaygroundError):
            result.error = str(exc)
            return
        if os.environ.get("PLAYGROUND_RAISE_ERRORS"):
            raise exc
        result.error = clean_message(
            f"{result.model_id} failed unexpectedly: {type(exc).__name__}: {exc}"
        )

    def end(self) -> None:
        """Fill the result: text, usage (estimated if the server sent none), timings, cost."""
        stream, result = self.stream, self.stream.result
        end = time.perf_counter()
        first, start, chunks = self.first, self.start, self.chunks
        if first is None:  # no answer: the send and the failure happened in this step
            start = _sent_since(start)
        result.text = "".join(self.parts)
        usage = self.usage
        if usage is None or (usage.completion_tokens == 0 and chunks):
            prompt = "\n".join(m.content for m in result.messages)
            counter = getattr(stream.model, "count_tokens", None)
            usage = Usage(
                prompt_tokens=counter(prompt) if counter else estimate_tokens(prompt),
                completion_tokens=chunks,  # one streamed delta per token on common servers
                estimated=True,
            )
        result.usage = usage
        result.latency_ms = (end - start) * 1000
        result.ttft_ms = (first - start) * 1000 if first is not None else None
        gen_seconds = end - first if first is not None else 0.0
        result.tokens_per_s = (
            usage.completion_tokens / gen_seconds
            if gen_seconds > 0 and usage.completion_tokens > 0
            else None
        )
        result.cost_usd = cost_usd(usage, stream.price)


def _sent_since(opened: float) -> float:
    """When the call's request left (if its provider said so), else when the stream opened."""
    sent = request_sent_at()
    return sent if sent is not None and sent >= opened else opened


def can_honour(model: ChatModel) -> bool:
    """True when the model constrains its answers to a response format."""
    return bool(getattr(model, "supports_response_format", False))


def cannot_honour_message(model_id: str, fmt: ResponseFormat) -> str:
    """The sentence for a model that cannot be asked for a JSON answer."""
    return (
        f"{model_id} cannot honour a {fmt.label} response format; pick Text for it, "
        "or a local or OpenAI-compatible model."
    )


def _open_stream(model: ChatModel, result: Result) -> Iterator[str | Usage]:
    fmt = result.response_format
    if fmt is None or not fmt.structured:
        return model.stream(result.messages, result.params)
    if not can_honour(model):
        raise EndpointError(cannot_honour_message(result.model_id, fmt))
    return model.stream(  # type: ignore[call-arg]  # see ChatModel: optional keyword
        result.messages, result.params, response_format=fmt
    )


def _open_astream(model: ChatModel, result: Result) -> AsyncIterator[str | Usage]:
    astream = model.astream  # type: ignore[attr-defined]  # see MeasuredStream.is_async
    fmt = result.response_format
    if fmt is None or not fmt.structured:
        return astream(result.messages, result.params)  # type: ignore[no-any-return]
    if not can_honour(model):
        raise EndpointError(cannot_honour_message(result.model_id, fmt))
    return astream(result.messages, result.params, response_format=fmt)  # type: ignore[no-any-return]


def apply_response_format(
    cells: Sequence[Result], fmt: ResponseFormat | None, settings: Settings
) -> None:
    """Ask every cell for this response format; PlaygroundError before anything is sent if a
    model cannot honour it (text, or None, asks for nothing)."""
    if fmt is not None and not fmt.structured:
        fmt = None
    if fmt is not None:
        for model_id in dict.fromkeys(c.model_id for c in cells):
            if not can_honour(get_model(model_id, settings)):
                raise PlaygroundError(cannot_honour_message(model_id, fmt))
    for cell in cells:
        cell.response_format = fmt


def plan_cells(
    variants: Sequence[PromptVariant],
    model_ids: Sequence[str],
    params_by_model: Mapping[str, ModelParams],
    variables: Mapping[str, object],
    settings: Settings,
    retrieval: RetrievalSettings | None = None,
    response_format: ResponseFormat | None = None,
) -> list[Result]:
    """Validate ids and render every variant before anything is sent; one Result per cell.

    Raises the first PlaygroundError found (unknown model, missing key, bad template,
    empty variable), so a bad click sends nothing.
    """
    if not model_ids:
        raise PlaygroundError("No model selected; pick at least one model and run again.")
    if not variants:
        raise PlaygroundError("No prompt to run; write a prompt and run again.")
    for model_id in model_ids:
        get_model(model_id, settings)
    rendered = [
        (
            variant,
            render_messages(
                variant.system, variant.user, variables, variant.name, variant.examples
            ),
        )
        for variant in variants
    ]
    cells: list[Result] = []
    for variant, messages in rendered:
        for model_id in model_ids:
            cells.append(
                Result(
                    model_id=model_id,
                    messages=list(messages),
                    params=params_by_model.get(model_id, ModelParams()),
                    variant_name=variant.name,
                    variant_note=variant.note,
                    system_template=variant.system,
                    user_template=variant.user,
                    examples=list(variant.examples),
                    retrieval=retrieval,
                )
            )
    apply_response_format(cells, response_format, settings)
    return cells


def prepare_run(
    settings: Settings,
    variants: Sequence[PromptVariant],
    model_ids: Sequence[str],
    params_by_model: Mapping[str, ModelParams],
    variables: Mapping[str, str],
    retrieval: RetrievalSettings | None = None,
    source: str = "app",
    session_id: str | None = None,
    response_format: ResponseFormat | None = None,
) -> Run:
    """A Run ready to stream: context retrieved once (if asked), every cell planned and checked.

    Raises the first PlaygroundError (missing store, unknown model, bad template), so a bad
    click or command sends nothing to any model.
    """
    run = Run(source=source, variables=dict(variables), retrieval=retrieval, session_id=session_id)
    filled: dict[str, object] = dict(variables)
    if retrieval is not None:
        from playground.rag.retrieval import retrieve_for_run  # torch only for RAG runs

        outcome = retrieve_for_run(settings, retrieval, filled)
        filled[retrieval.context_variable] = outcome.context
        run.retrieved = outcome.retrieved
    run.results = plan_cells(
        variants, model_ids, params_by_model, filled, settings, retrieval, response_format
    )
    return run


def measured_stream(result: Result, settings: Settings) -> MeasuredStream:
    """A MeasuredStream for a planned cell; resolving the model cannot fail the others."""
    try:
        model: ChatModel = get_model(result.model_id, settings)
    except PlaygroundError as exc:
        model = _FailingModel(result.model_id, exc)
    return MeasuredStream(model, result, settings.price_for(result.model_id))


class _FailingModel:
    """Stands in for a model that could not be resolved, so its cell shows the error."""

    def __init__(self, model_id: str, error: PlaygroundError) -> None:
        self.model_id = model_id
        self.error = error

    def stream(self, messages: Sequence[Message], params: ModelParams) -> Iterator[str | Usage]:
        raise self.error
        yield ""  # pragma: no cover - makes this a generator


def endpoint_limit(settings: Settings, model_id: str) -> int | None:
    """The `max_concurrency` configured for the model's endpoint, or None (no limit of ours).

    An in-process model needs none here: it runs one call at a time behind its own lock.
    """
    try:
        return provider_of(model_id, settings).max_concurrency
    except PlaygroundError:
        return None


class EndpointSlots:
    """Per-provider limits on calls in flight; a provider without a limit is never waited on."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots: dict[str, threading.Semaphore | None] = {}
        self._lock = threading.Lock()

    def hold(self, model_id: str) -> contextlib.AbstractContextManager[object]:
        """A context that holds one of the model's provider's slots while a call runs."""
        provider = model_id.partition("/")[0]
        with self._lock:
            if provider not in self._slots:
                limit = endpoint_limit(self.settings, model_id)
                self._slots[provider] = threading.Semaphore(limit) if limit else None
            slot = self._slots[provider]
        return slot if slot is not None else contextlib.nullcontext()


def run_cells(
    cells: Sequence[Result],
    settings: Settings,
    on_done: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Run every cell at once (one worker per cell, within each endpoint's `max_concurrency`);
    returns results in cell order, errors recorded in each."""
    slots = EndpointSlots(settings)

    def work(result: Result) -> Result:
        with slots.hold(result.model_id):
            done = measured_stream(result, settings).drain()
        if on_done is not None:
            on_done(done)
        return done

    if len(cells) <= 1:  # one call needs no pool (nor its import) on its way out
        return [work(cell) for cell in cells]
    from concurrent.futures import ThreadPoolExecutor

    # A fixed pool ran 24 models in two waves; waiting models cost a thread each, no more.
    with ThreadPoolExecutor(max_workers=len(cells)) as pool:
        return list(pool.map(work, cells))


SaveCell = Callable[[Run, Result, int], None]


class CellFinisher:
    """The step every finished cell takes, for the page, the CLI, flows, batches and serving.

    `check` scores answers (groundedness when the run retrieved, moderation when set up) and
    `finish` checks one cell, then saves it, so every saved answer is scored the same way.
    The groundedness scorer (the retrieved chunks, embedded) is built for a run's first
    answered cell and shared by the others, whichever thread they end on (`run_grounding`).
    """

    def __init__(self, settings: Settings, run: Run, save: SaveCell | None = None) -> None:
        self.settings = settings
        self.run = run
        self._save = save

    def check(self, results: Sequence[Result]) -> list[str]:
        """Score the answered results in place; one sentence per check that could not be done.

        A check that fails never loses an answer: it becomes a sentence, not an exception.
        """
        answered = [r for r in results if r.error is None]
        if not answered:
            return []
        problems: list[str] = []
        try:
            if self.run.retrieval is not None:
                problems += self._score_groundedness(answered)
            from playground.moderation import moderate_results

            problems += moderate_results(self.settings, answered)
        except Exception as exc:
            if os.environ.get("PLAYGROUND_RAISE_ERRORS"):
                raise
            problems.append(f"The answer was not checked ({type(exc).__name__}: {exc}).")
        return problems

    def finish(self, result: Result, position: int) -> list[str]:
        """Check one finished cell, then save it (with its run the first time); returns notes.

        Saving is not caught: a caller that cannot store the answer must say so.
        """
        problems = self.check([result])
        save = self._save
        if save is None:
            from playground.store import open_store

            save = open_store(self.settings).runs.save_result
        save(self.run, result, position)
        return problems

    def _score_groundedness(self, results: list[Result]) -> list[str]:
        from playground.rag.retrieval import score_results  # torch only for RAG runs

        try:
            score_results(self.settings, self.run, results)
        except PlaygroundError as exc:
            return [f"Groundedness was not scored: {exc}"]
        return []


def complete(
    model_id: str, messages: Sequence[Message], params: ModelParams, settings: Settings
) -> Result:
    """Run one already-rendered conversation on one model and measure it."""
    result = Result(model_id=model_id, messages=list(messages), params=params)
    return measured_stream(result, settings).drain()
