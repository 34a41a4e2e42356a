"""The batch runner: configurations x dataset rows (x repeat), every cell an ordinary run.

Each cell goes through the same path as a Playground click or `playground run`:
`runner.prepare_run` (retrieval, rendering, checks), `runner.measured_stream` (the one place that
measures), `runner.CellFinisher` (groundedness, moderation); then the scorers, then one transaction
that saves the run, its result and the cell. Resuming a batch runs only the cells not saved.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.coalesce import Coalescer
from playground.config import Settings
from playground.errors import PlaygroundError, SpecError
from playground.eval.datasets import DatasetError, DatasetInfo, Datasets, iter_rows
from playground.eval.scorers import (
    ScoreContext,
    Verdict,
    encode_references_ahead,
    row_status,
    score_answer,
    values_before_answer,
)
from playground.eval.spec import EvaluationSpec, FaithfulnessScorer, JudgeScorer
from playground.models.base import Message, ModelParams
from playground.models.registry import get_model, in_process, split_model_id
from playground.models.response_format import ResponseFormat
from playground.prompts import find_variables
from playground.records import PromptVariant, Result, RetrievalSettings, Run, new_id
from playground.runner import CellFinisher, estimate_tokens, measured_stream, prepare_run
from playground.runner import endpoint_limit as runner_limit

if TYPE_CHECKING:
    from playground.store.batches import Batches, CachedAnswer, CellSave

DEFAULT_CONCURRENCY = 8
RATE_LIMIT_RETRIES = 6
# Cells answered from the cache finish faster than a commit: each commit rewrites the pages of
# a dozen indexes and the search index, so they are saved in groups (a cell that called a
# model is saved at once, with any cached ones waiting). A kill loses at most these cached
# cells, which a resume answers from the cache again.
CACHED_SAVE_GROUP = 500
CACHED_SAVE_EVERY_S = 0.5


@dataclass
class EvalConfig:
    """One configuration under test: templates, model, params and (optionally) retrieval."""

    label: str
    model_id: str
    params: ModelParams = field(default_factory=ModelParams)
    system: str = ""
    user: str = ""
    retrieval: RetrievalSettings | None = None
    defaults: dict[str, str] = field(default_factory=dict)  # flow input defaults
    inputs: list[str] | None = None  # a flow's declared inputs; None: the row's columns
    flow_name: str | None = None
    flow_version: int | None = None
    variant_name: str = "default"
    response_format: ResponseFormat | None = None  # a flow's structured format (JSON only)
    examples: list[dict[str, str]] = field(default_factory=list)  # few-shot {role, content}

    @property
    def few_shot(self) -> list[Message]:
        """The few-shot example templates as messages."""
        return [Message.model_validate(m) for m in self.examples]

    def to_json(self) -> dict[str, Any]:
        """Plain data kept in the batch record, so a resume runs exactly this."""
        data = dataclasses.asdict(self)
        data["params"] = self.params.model_dump(mode="json")
        fmt = self.response_format
        data["response_format"] = fmt.model_dump(mode="json", by_alias=True) if fmt else None
        data["retrieval"] = self.retrieval.to_dict() if self.retrieval else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalConfig:
        """Rebuild from to_json()."""
        data = dict(data)
        data["params"] = ModelParams.model_validate(data["params"])
        data["retrieval"] = RetrievalSettings(**data["retrieval"]) if data["retrieval"] else None
        fmt = data.get("response_format")  # batches recorded before formats have none
        data["response_format"] = ResponseFormat.model_validate(fmt) if fmt else None
        return cls(**data)

    def variables_for(self, row: dict[str, Any], columns: dict[str, str]) -> dict[str, str]:
        """Template variables of one row: mapped columns, same-name columns, then defaults."""
        renamed: dict[str, Any] = {}
        for key, value in row.items():
            renamed[columns.get(key, key)] = value
        names = self.inputs if self.inputs is not None else list(renamed)
        variables: dict[str, str] = {}
        for name in names:
            value = renamed.get(name)
            if value is None or value == "":
                if name in self.defaults:
                    variables[name] = self.defaults[name]
                continue
            variables[name] = value if isinstance(value, str) else json.dumps(value)
        return variables

    def needed(self) -> list[str]:
        """Variables the templates use that the row (or a default) must give."""
        context = self.retrieval.context_variable if self.retrieval else None
        query = [self.retrieval.query] if self.retrieval else []
        examples = [m["content"] for m in self.examples]
        names = find_variables(self.system, *examples, self.user, *query)
        return [n for n in names if n != context and n not in self.defaults]


def configs_from_flow(spec: Any, model_ids: Sequence[str] = ()) -> list[EvalConfig]:
    """One configuration per model (the spec's own when none are given) for a flow spec."""
    from playground.flows.run import template_fields
    from playground.flows.spec import few_shot_of

    roles = [m.role for m in spec.prompt.messages]
    examples = few_shot_of(spec)
    if examples is None:
        raise SpecError(
            f"Flow {spec.ref} has {len(roles)} messages ({', '.join(roles)}); batch evaluation "
            "runs flows with one system message, alternating user and assistant examples and "
            "one user message."
        )
    system, user = template_fields(spec)
    retrieval = None
    if spec.retrieval is not None:
        r = spec.retrieval
        retrieval = RetrievalSettings(r.store, r.top_k, r.query, r.context_variable)
    defaults = {k: str(v.default) for k, v in spec.inputs.items() if v.default is not None}
    configs = []
    for model_id in model_ids or [spec.model.id]:
        label = spec.ref if not model_ids or len(model_ids) == 1 else f"{spec.ref} · {model_id}"
        configs.append(
            EvalConfig(
                label=label,
                model_id=model_id,
                params=spec.model.params,
                system=system,
                user=user,
                retrieval=retrieval,
                defaults=defaults,
                inputs=list(spec.inputs),
                flow_name=spec.name,
                flow_version=spec.version,
                variant_name=spec.ref,
                examples=[m.model_dump() for m in examples],
                response_format=spec.model.structured_format,
            )
        )
    return configs


def configs_from_variants(
    variants: Sequence[PromptVariant],
    model_ids: Sequence[str],
    params: dict[str, ModelParams],
    retrieval: RetrievalSettings | None = None,
) -> list[EvalConfig]:
    """The Playground's variants x models as configurations."""
    return [
        EvalConfig(
            label=f"{v.name} · {m}" if len(variants) > 1 else m,
            model_id=m,
            params=params.get(m, ModelParams()),
            system=v.system,
            user=v.user,
            retrieval=retrieval,
            variant_name=v.name,
            examples=[m.model_dump() for m in v.examples],
        )
        for v in variants
        for m in model_ids
    ]


@dataclass
class BatchPlan:
    """Everything a batch needs to run (and to resume exactly): its record's spec_json."""

    name: str
    dataset: DatasetInfo
    configs: list[EvalConfig]
    evaluation: EvaluationSpec
    repeat: int = 1
    batch_id: str = field(default_factory=new_id)
    baseline: str | None = None

    @property
    def total_cells(self) -> int:
        """configurations x rows x repeat."""
        return len(self.configs) * self.dataset.rows * self.repeat

    def spec_json(self) -> dict[str, Any]:
        """What the batch record keeps."""
        return {
            "configs": [c.to_json() for c in self.configs],
            "evaluation": self.evaluation.model_dump(mode="json", by_alias=True),
            "repeat": self.repeat,
            "dataset": self.dataset.ref,
            "baseline": self.baseline,
        }

    @classmethod
    def from_record(cls, settings: Settings, record: Any) -> BatchPlan:
        """The plan of a stored batch, for resume and results."""
        data = record.spec
        name, _, version = data["dataset"].partition("@")
        return cls(
            name=record.name,
            dataset=Datasets(settings).get(name, version),
            configs=[EvalConfig.from_json(c) for c in data["configs"]],
            evaluation=EvaluationSpec.model_validate(data["evaluation"]),
            repeat=data.get("repeat", 1),
            batch_id=record.id,
            baseline=data.get("baseline"),
        )


def check_plan(settings: Settings, plan: BatchPlan) -> None:
    """Refuse a plan before anything is sent: empty dataset, missing column, unknown model."""
    if plan.dataset.rows == 0:
        raise DatasetError(f"Dataset {plan.dataset.ref} has no rows; add at least one row.")
    if not plan.configs:
        raise PlaygroundError("No configuration to evaluate; give a flow or a model.")
    mapping = plan.evaluation.columns
    missing_source = [c for c in mapping if c not in plan.dataset.columns]
    if missing_source:
        raise DatasetError(
            f"Dataset {plan.dataset.ref} has no column '{missing_source[0]}' (mapped in "
            f"evaluation.columns); its columns are {', '.join(plan.dataset.columns)}."
        )
    available = {mapping.get(c, c) for c in plan.dataset.columns}
    for config in plan.configs:
        get_model(config.model_id, settings)
        for name in config.needed():
            if name not in available:
                raise DatasetError(
                    f"Dataset {plan.dataset.ref} has no column for '{name}', which "
                    f"{config.label} needs; add the column or map one with "
                    f"columns: {{COLUMN: {name}}}."
                )
    for scorer in plan.evaluation.scorers:
        if isinstance(scorer, JudgeScorer | FaithfulnessScorer):
            get_model(scorer.model, settings)


def cache_key(result: Result, repeat_index: int) -> str:
    """Content address of a call: rendered messages + model + params (seed included) + repeat."""
    payload = {
        "model": result.model_id,
        "messages": [m.model_dump() for m in result.messages],
        "params": result.params.model_dump(mode="json"),
        "repeat": repeat_index,
    }
    if result.response_format is not None:  # a JSON answer is not the text one (text keys stay)
        payload["format"] = result.response_format.model_dump(mode="json", by_alias=True)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Estimate:
    """Pre-flight figures: calls, tokens, cost and time, before anything is sent."""

    cells: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    seconds: float

    def sentence(self) -> str:
        """One line for the CLI and the page."""
        return (
            f"{self.cells} cells, {self.calls} model calls, about "
            f"{self.prompt_tokens + self.completion_tokens:,} tokens, at most "
            f"${self.cost_usd:.4f}, roughly {self.seconds:.0f} s"
        )


def endpoint_limit(settings: Settings, model_id: str, concurrency: int) -> int:
    """Calls one endpoint takes at once: 1 in-process, `max_concurrency` if configured."""
    if in_process(model_id, settings):
        return 1
    limit = runner_limit(settings, model_id)  # the endpoint's max_concurrency, as the app's
    return min(limit, concurrency) if limit else concurrency


def estimate(
    settings: Settings, plan: BatchPlan, concurrency: int = DEFAULT_CONCURRENCY
) -> Estimate:
    """Tokens from the first rows' rendered prompts, cost at configured prices, time by limits."""
    sample = [row for _, row in zip(range(20), iter_rows(plan.dataset), strict=False)]
    judges = [s for s in plan.evaluation.scorers if isinstance(s, JudgeScorer)]
    per_row = plan.repeat * (1 + len(judges))
    prompt_tokens = completion_tokens = 0
    cost = seconds = 0.0
    for config in plan.configs:
        lengths = []
        for row in sample:
            variables = config.variables_for(row, plan.evaluation.columns)
            examples = "".join(m["content"] for m in config.examples)
            text = config.system + examples + config.user + " ".join(variables.values())
            lengths.append(estimate_tokens(text) + (300 if config.retrieval else 0))
        mean_prompt = sum(lengths) / max(len(lengths), 1)
        calls = plan.dataset.rows * plan.repeat
        p = int(mean_prompt * calls)
        c = config.params.max_tokens * calls
        price = settings.price_for(config.model_id)
        prompt_tokens += p
        completion_tokens += c
        cost += (p * price.input + c * price.output) / 1e6
        limit = endpoint_limit(settings, config.model_id, concurrency)
        per_call = 1.0 + config.params.max_tokens / 60  # a guess until History has figures
        seconds += calls * per_call / limit
    calls = len(plan.configs) * plan.dataset.rows * per_row
    return Estimate(plan.total_cells, calls, prompt_tokens, completion_tokens, cost, seconds)


@dataclass
class CellOutcome:
    """What one finished cell produced."""

    config_index: int
    row_index: int
    repeat_index: int
    result: Result
    status: str
    verdicts: list[Verdict]
    cached: bool
    save: CellSave | None = None


ProgressFn = Callable[[int, int, CellOutcome], None]


class BatchRunner:
    """Runs (or resumes) one batch with bounded concurrency per endpoint.

    `fresh` says the plan was just made (its id is new, so nothing is done yet): without the
    cache, the store is then opened and the batch recorded once the first request has left,
    so that importing SQLAlchemy does not delay it (`playground eval run`).
    """

    def __init__(
        self,
        settings: Settings,
        plan: BatchPlan,
        concurrency: int = DEFAULT_CONCURRENCY,
        use_cache: bool = True,
        max_cost: float | None = None,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        fresh: bool = False,
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.concurrency = max(1, concurrency)
        self.use_cache = use_cache
        self.max_cost = max_cost
        self.on_progress = on_progress
        self.cancel = cancel or threading.Event()
        self.fresh = fresh
        self._batches: Batches | None = None
        # cells look up the cache at once from many threads: one query serves all that queued
        self._cached_answers: Coalescer[str, CachedAnswer | None] = Coalescer(
            self._look_up_many, max_batch=256
        )
        self._limits: dict[str, threading.Semaphore] = {}
        self._limits_lock = threading.Lock()
        self.spent = 0.0

    @property
    def batches(self) -> Batches:
        """The store's batches (opened on first use: it imports SQLAlchemy)."""
        if self._batches is None:
            from playground.store import open_store

            self._batches = open_store(self.settings).batches
        return self._batches

    def _limit(self, model_id: str) -> threading.Semaphore:
        provider, _ = split_model_id(model_id)
        with self._limits_lock:
            if provider not in self._limits:
                n = endpoint_limit(self.settings, model_id, self.concurrency)
                self._limits[provider] = threading.Semaphore(n)
            return self._limits[provider]

    def _pending(self, done: set[tuple[int, int, int]]) -> Iterator[tuple[int, int, int, dict]]:
        return encode_references_ahead(
            self._cells(done), self._reference_values, self.plan.evaluation.scorers
        )

    def _cells(self, done: set[tuple[int, int, int]]) -> Iterator[tuple[int, int, int, dict]]:
        for row_index, row in enumerate(iter_rows(self.plan.dataset)):
            for config_index in range(len(self.plan.configs)):
                for repeat_index in range(self.plan.repeat):
                    if (config_index, row_index, repeat_index) not in done:
                        yield config_index, row_index, repeat_index, row

    def _reference_values(self, cell: tuple[int, int, int, dict]) -> dict[str, Any]:
        """What a cell's scorer templates see before its answer."""
        config_index, _, _, row = cell
        variables = self.plan.configs[config_index].variables_for(row, self.plan.evaluation.columns)
        return values_before_answer(row, variables)

    def _call(self, result: Result) -> Result:
        """Measure one call, retrying while the endpoint says 429 (the SDK honours Retry-After)."""
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            attempt_result = dataclasses.replace(result, text="", error=None)
            with self._limit(result.model_id):
                measured_stream(attempt_result, self.settings).drain()
            error = attempt_result.error or ""
            if "(429)" not in error or attempt == RATE_LIMIT_RETRIES or self.cancel.is_set():
                return attempt_result
            time.sleep(min(0.5 * 2**attempt, 10.0))
        return attempt_result  # pragma: no cover - the loop always returns

    def run_cell(
        self, config_index: int, row_index: int, repeat_index: int, row: dict
    ) -> CellOutcome:
        """Plan, answer (or take from the cache), assess, score and save one cell."""
        config = self.plan.configs[config_index]
        variables = config.variables_for(row, self.plan.evaluation.columns)
        variant = PromptVariant(
            config.variant_name, config.system, config.user, examples=config.few_shot
        )
        try:
            run = prepare_run(
                self.settings,
                [variant],
                [config.model_id],
                {config.model_id: config.params},
                variables,
                config.retrieval,
                source="batch",
                response_format=config.response_format,
            )
            planned = run.results[0]
        except PlaygroundError as exc:
            run = Run(source="batch", variables=variables, retrieval=config.retrieval)
            planned = Result(
                model_id=config.model_id,
                messages=[],
                params=config.params,
                variant_name=config.variant_name,
                system_template=config.system,
                user_template=config.user,
                examples=config.few_shot,
                retrieval=config.retrieval,
                error=f"Row {row_index + 1}: {exc}",
            )
        run.batch_id, run.batch_row = self.plan.batch_id, row_index
        run.flow_name, run.flow_version = config.flow_name, config.flow_version
        cached = False
        if planned.error is None:
            key = cache_key(planned, repeat_index)
            hit = self._cached_answers([key])[0] if self.use_cache else None
            if hit is not None:
                result = _from_cache(planned, hit)
                cached = True
            else:
                result = self._call(planned)
        else:
            result = planned
        run.results = [result]
        if result.error is None:
            CellFinisher(self.settings, run).check([result])
            ctx = ScoreContext(
                row=row, result=result, run=run, settings=self.settings, variables=dict(variables)
            )
            verdicts = score_answer(list(self.plan.evaluation.scorers), ctx)
        else:
            verdicts = []
        status = row_status(verdicts, result.error)
        from playground.store.batches import CellSave

        keep = result.error is None and not cached and self.use_cache
        save = CellSave(
            run=run,
            result=result,
            config_index=config_index,
            repeat_index=repeat_index,
            status=status,
            verdicts=[v.to_json() for v in verdicts],
            cached=cached,
            cache_key=cache_key(planned, repeat_index) if keep else None,
        )
        return CellOutcome(
            config_index, row_index, repeat_index, result, status, verdicts, cached, save
        )

    def _look_up_many(self, keys: list[str]) -> list[CachedAnswer | None]:
        found = self.batches.cached_answers(keys)
        return [found.get(key) for key in keys]

    def ensure_record(self) -> None:
        """Create the batch's record, or mark an existing one running again (resume)."""
        try:
            self.batches.get(self.plan.batch_id)
        except PlaygroundError:
            self.batches.create(
                self.plan.batch_id,
                self.plan.name,
                self.plan.dataset.ref,
                self.plan.spec_json(),
                self.plan.total_cells,
            )
        else:
            self.batches.set_status(self.plan.batch_id, "running")

    def _cell_unless_cancelled(
        self, config_index: int, row_index: int, repeat_index: int, row: dict
    ) -> CellOutcome | None:
        # Cells queued behind a slow endpoint must not start after Cancel: skipped, not saved,
        # so that a resume runs them.
        if self.cancel.is_set():
            return None
        return self.run_cell(config_index, row_index, repeat_index, row)

    def _record_once_sent(self, in_flight: set[Future[CellOutcome | None]]) -> None:
        """Record a fresh batch once its first request has left (or a cell ended without one)."""
        from playground.models.base import request_sent

        while in_flight and not request_sent.wait(0.01):
            if any(future.done() for future in in_flight):
                break
        try:
            self.ensure_record()
        except BaseException:
            self.cancel.set()  # a store that cannot be used: no queued cell starts
            raise

    def run(self) -> str:
        """Run every missing cell; returns the batch's final status (done|cancelled|stopped)."""
        # a fresh batch has nothing done, and without the cache no cell reads the store first
        deferred = self.fresh and not self.use_cache
        if not deferred:
            self.ensure_record()
        done_keys = set() if deferred else self.batches.done_keys(self.plan.batch_id)
        finished = len(done_keys)
        total = self.plan.total_cells
        status = "done"
        pending = self._pending(done_keys)
        in_flight: set[Future[CellOutcome | None]] = set()
        saver = _CellSaver(self, finished, total)
        with saver, ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            while True:
                while len(in_flight) < self.concurrency * 2 and status == "done":
                    if self.cancel.is_set():
                        status = "cancelled"
                        break
                    if self.max_cost is not None and self.spent >= self.max_cost:
                        status = "stopped"
                        break
                    item = next(pending, None)
                    if item is None:
                        break
                    in_flight.add(pool.submit(self._cell_unless_cancelled, *item))
                if deferred:
                    self._record_once_sent(in_flight)
                    deferred = False
                if not in_flight:
                    break
                # with cells waiting to be saved, wake up soon to hand them to the writer
                completed, in_flight = wait(
                    in_flight, timeout=saver.wake_after, return_when=FIRST_COMPLETED
                )
                outcomes = [o for o in (f.result() for f in completed) if o is not None]
                for outcome in outcomes:
                    self.spent += outcome.result.cost_usd if not outcome.cached else 0.0
                saver.add(outcomes)
        finished = saver.finished
        if status == "done" and self.cancel.is_set() and finished < total:
            status = "cancelled"  # Cancel came while the last queued cells were skipped
        self.batches.set_status(self.plan.batch_id, status)
        return status


class _CellSaver:
    """Saves a batch's finished cells on one writer thread, in groups, then reports them.

    The writer runs while the runner keeps its workers busy (sqlite3 and psycopg release the
    GIL while they work), and a group grows while the writer is busy, so a cached rerun of
    thousands of cells takes a few commits instead of one per handful of cells.
    """

    def __init__(self, runner: BatchRunner, finished: int, total: int) -> None:
        self.runner = runner
        self.finished = finished
        self.total = total
        self.unsaved: list[CellOutcome] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-saver")
        self._saving: Future[None] | None = None
        self._last_save = time.monotonic()

    @property
    def wake_after(self) -> float | None:
        """How long the runner may wait for a cell before coming back to save (None: forever)."""
        return 0.05 if self.unsaved else None

    def add(self, outcomes: list[CellOutcome]) -> None:
        """Take finished cells; hand a group to the writer when it is free and one is due."""
        self.unsaved += outcomes
        if self._saving is not None:
            if not self._saving.done():
                return
            self._saving.result()  # a store that failed stops the batch here
            self._saving = None
        if self.unsaved and (
            not all(o.cached for o in self.unsaved)
            or len(self.unsaved) >= CACHED_SAVE_GROUP
            or time.monotonic() - self._last_save >= CACHED_SAVE_EVERY_S
        ):
            group, self.unsaved = self.unsaved, []
            self._saving = self._writer.submit(self._save, group)
            self._last_save = time.monotonic()

    def _save(self, outcomes: list[CellOutcome]) -> None:
        # a cell is saved whole or not at all, and reported only once it is saved
        self.runner.batches.save_cells([o.save for o in outcomes if o.save is not None])
        for outcome in outcomes:
            self.finished += 1
            if self.runner.on_progress is not None:
                self.runner.on_progress(self.finished, self.total, outcome)

    def __enter__(self) -> _CellSaver:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        saving, self._saving = self._saving, None
        self._writer.shutdown(wait=True)
        if exc_type is not None:
            return  # the batch already failed; what is unsaved runs again on resume
        if saving is not None:
            saving.result()
        if self.unsaved:
            group, self.unsaved = self.unsaved, []
            self._save(group)


def _from_cache(planned: Result, hit: Any) -> Result:
    from playground.models.base import Usage

    return dataclasses.replace(
        planned,
        text=hit.text,
        usage=Usage(hit.prompt_tokens, hit.completion_tokens, hit.usage_estimated),
        ttft_ms=hit.ttft_ms,
        latency_ms=hit.latency_ms,
        tokens_per_s=hit.tokens_per_s,
        cost_usd=hit.cost_usd,
    )


def plan_from_paths(
    settings: Settings,
    paths: Sequence[str],
    dataset: str | None = None,
    model_ids: Sequence[str] = (),
    repeat: int | None = None,
) -> BatchPlan:
    """A plan from flow specs, `name@label` refs or eval files (the CLI's PATH...)."""
    from playground.eval.spec import is_eval_file, parse_evaluation, read_eval_file
    from playground.flows.registry import FlowRegistry

    registry = FlowRegistry(settings)
    configs: list[EvalConfig] = []
    evaluation: EvaluationSpec | None = None
    name = "eval"
    base = Path.cwd()
    for item in paths:
        path = Path(item)
        if path.is_file() and is_eval_file(path):
            eval_file = read_eval_file(path)
            evaluation = evaluation or eval_file.evaluation
            name = eval_file.name
            base = path.parent
            for ref in eval_file.flows:
                flow_path = path.parent / ref
                spec, _ = registry.resolve(str(flow_path) if flow_path.is_file() else ref)
                configs += configs_from_flow(spec, model_ids or eval_file.models)
            continue
        spec, source = registry.resolve(item)
        block = getattr(spec, "evaluation", None)
        if block is not None and evaluation is None:
            evaluation = (
                block if isinstance(block, EvaluationSpec) else parse_evaluation(block, source)
            )
            if path.is_file():
                base = path.parent
        name = spec.name if name == "eval" else name
        configs += configs_from_flow(spec, model_ids)
    if evaluation is None:
        raise SpecError(
            "None of the given files has an evaluation block; add `evaluation:` to the flow "
            "spec or pass an eval file (schema: playground.eval/v1)."
        )
    ref = dataset or evaluation.dataset
    candidate = Path(ref)
    if dataset is None and not candidate.is_absolute() and not candidate.exists():
        relative = base / candidate
        if relative.exists():
            ref = str(relative)
    info = Datasets(settings).resolve(ref)
    return BatchPlan(
        name=name,
        dataset=info,
        configs=configs,
        evaluation=evaluation,
        repeat=repeat or evaluation.repeat,
    )
