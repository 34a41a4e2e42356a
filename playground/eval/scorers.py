"""Scorers: each turns one answer into a Verdict (pass | fail | unmeasured, score, reason).

A scorer never raises for a bad answer: what cannot be judged (no number in the answer, a judge
that answers garbage, a RAG score on a run without retrieval) is *unmeasured*, never a pass.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from playground.config import Settings
from playground.errors import PlaygroundError
from playground.eval import spec as s
from playground.models.base import Message, ModelParams
from playground.prompts import find_variables, render
from playground.records import Result, Run

Status = Literal["pass", "fail", "unmeasured"]
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
_ANSWER_NAMES = {"answer", "output"}
# Cells per window whose similarity references are encoded in one call ahead of them: enough
# texts for the model to sort by length and run full batches, few enough that a window's
# vectors stay in the encoder's cache (8,192) until its cells are scored.
REFERENCE_WINDOW = 512


@dataclass
class Verdict:
    """One scorer's judgement of one answer."""

    scorer: str
    status: Status
    score: float | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        """Plain data for storage and --json."""
        return {
            "scorer": self.scorer,
            "status": self.status,
            "score": self.score,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        """Rebuild from to_json()."""
        return cls(data["scorer"], data["status"], data.get("score"), data.get("reason", ""))


@dataclass
class ScoreContext:
    """What a scorer may look at: the row, the answer and its run."""

    row: Mapping[str, Any]
    result: Result
    run: Run
    settings: Settings
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def answer(self) -> str:
        """The model's answer text."""
        return self.result.text

    def template_values(self) -> dict[str, Any]:
        """Row columns, flow variables and the answer, for scorer templates."""
        values = values_before_answer(self.row, self.variables)
        values.update(dict.fromkeys(_ANSWER_NAMES, self.answer))
        return values

    def fill(self, template: str, what: str) -> str:
        """Render a scorer template; TemplateError names the scorer field."""
        return render(template, self.template_values(), what)


def values_before_answer(row: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, Any]:
    """What scorer templates see before the answer is in: row columns, then flow variables."""
    return {**row, **variables}


def _verdict(label: str, ok: bool, score: float, reason: str) -> Verdict:
    return Verdict(label, "pass" if ok else "fail", round(max(0.0, min(1.0, score)), 4), reason)


def _unmeasured(label: str, reason: str) -> Verdict:
    return Verdict(label, "unmeasured", None, reason)


def _fold(text: str, case_sensitive: bool) -> str:
    return text if case_sensitive else text.casefold()


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def score_equals(scorer: s.EqualsScorer, ctx: ScoreContext) -> Verdict:
    """Answer equals the value (stripped, case-folded unless case_sensitive)."""
    want = ctx.fill(scorer.value, f"scorer {scorer.label} value").strip()
    got = ctx.answer.strip()
    ok = _fold(got, scorer.case_sensitive) == _fold(want, scorer.case_sensitive)
    return _verdict(
        scorer.label,
        ok,
        1.0 if ok else 0.0,
        f"equals '{_short(want)}'" if ok else f"is not '{_short(want)}'",
    )


def score_contains(scorer: s.ContainsScorer, ctx: ScoreContext) -> Verdict:
    """Answer contains any/all values."""
    values = [scorer.value] if isinstance(scorer.value, str) else scorer.value
    wanted = [ctx.fill(v, f"scorer {scorer.label} value") for v in values]
    haystack = _fold(ctx.answer, scorer.case_sensitive)
    found = [w for w in wanted if _fold(w, scorer.case_sensitive) in haystack]
    missing = [w for w in wanted if w not in found]
    share = len(found) / len(wanted)
    ok = bool(found) if scorer.mode == "any" else not missing
    if ok:
        return _verdict(scorer.label, True, share, f"contains '{_short(found[0])}'")
    return _verdict(
        scorer.label,
        False,
        share,
        f"does not contain '{_short(missing[0])}'"
        + (f" ({len(missing)} of {len(wanted)} missing)" if len(wanted) > 1 else ""),
    )


def score_starts_with(scorer: s.StartsWithScorer, ctx: ScoreContext) -> Verdict:
    """Answer starts with the value."""
    want = ctx.fill(scorer.value, f"scorer {scorer.label} value").strip()
    ok = _fold(ctx.answer.strip(), scorer.case_sensitive).startswith(
        _fold(want, scorer.case_sensitive)
    )
    return _verdict(
        scorer.label, ok, float(ok), f"{'starts' if ok else 'does not start'} with '{_short(want)}'"
    )


def score_regex(scorer: s.RegexScorer, ctx: ScoreContext) -> Verdict:
    """Answer matches the pattern somewhere."""
    match = re.search(scorer.pattern, ctx.answer, re.IGNORECASE if scorer.ignore_case else 0)
    if match:
        return _verdict(
            scorer.label, True, 1.0, f"matches /{scorer.pattern}/ at '{_short(match.group(0))}'"
        )
    return _verdict(scorer.label, False, 0.0, f"does not match /{scorer.pattern}/")


def _strip_fence(text: str) -> str:
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    return fenced.group(1) if fenced else text


def score_is_json(scorer: s.IsJsonScorer, ctx: ScoreContext) -> Verdict:
    """Answer parses as JSON (a ``` fence is allowed) and fits the schema if one is given."""
    try:
        data = json.loads(_strip_fence(ctx.answer).strip())
    except json.JSONDecodeError as exc:
        return _verdict(scorer.label, False, 0.0, f"is not JSON ({exc.msg} at char {exc.pos})")
    if scorer.json_schema is None:
        return _verdict(scorer.label, True, 1.0, "is valid JSON")
    import jsonschema

    validator = jsonschema.validators.validator_for(scorer.json_schema)(scorer.json_schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return _verdict(scorer.label, True, 1.0, "is JSON valid against the schema")
    where = "/".join(str(p) for p in error.absolute_path) or "the top level"
    return _verdict(
        scorer.label, False, 0.5, f"JSON fails the schema at {where}: {_short(error.message)}"
    )


def _first_number(text: str) -> float | None:
    match = _NUMBER.search(text)
    return float(match.group(0).replace(",", "")) if match else None


def score_number(scorer: s.NumberScorer, ctx: ScoreContext) -> Verdict:
    """The first number in the answer is within tolerance of the expected number."""
    if isinstance(scorer.value, str):
        rendered = ctx.fill(scorer.value, f"scorer {scorer.label} value")
        expected = _first_number(rendered)
        if expected is None:
            return _unmeasured(scorer.label, f"expected value '{_short(rendered)}' is not a number")
    else:
        expected = float(scorer.value)
    got = _first_number(ctx.answer)
    if got is None:
        return _verdict(scorer.label, False, 0.0, "the answer states no number")
    diff = abs(got - expected)
    ok = diff <= scorer.tolerance
    scale = max(abs(expected), scorer.tolerance, 1e-9)
    return _verdict(
        scorer.label,
        ok,
        1.0 - min(diff / scale, 1.0),
        f"{got:g} is {'within' if ok else 'not within'} ±{scorer.tolerance:g} of {expected:g}",
    )


def score_similarity(scorer: s.SimilarityScorer, ctx: ScoreContext) -> Verdict:
    """Cosine similarity (bundled MiniLM) of answer and reference."""
    reference = ctx.fill(scorer.reference, f"scorer {scorer.label} reference")
    if not ctx.answer.strip():
        return _verdict(scorer.label, False, 0.0, "the answer is empty")
    from playground.eval.scorers_similarity import shared_encoder

    vectors = shared_encoder().encode([ctx.answer, reference])
    cosine = float(vectors[0] @ vectors[1])
    ok = cosine >= scorer.threshold
    return _verdict(
        scorer.label,
        ok,
        cosine,
        f"similarity {cosine:.2f} {'≥' if ok else '<'} {scorer.threshold:g}",
    )


def similarity_references(scorers: Sequence[Any], values: Mapping[str, Any]) -> list[str]:
    """The similarity references these template values render (none that need the answer)."""
    texts = []
    for scorer in scorers:
        if not isinstance(scorer, s.SimilarityScorer):
            continue
        if _ANSWER_NAMES & set(find_variables(scorer.reference)):
            continue  # only known once the answer is in: the cell encodes it
        try:
            texts.append(render(scorer.reference, values, f"scorer {scorer.label} reference"))
        except PlaygroundError:
            continue  # the cell reports it, as unmeasured
    return texts


def encode_references_ahead(
    cells: Iterable[Any],
    values_of: Callable[[Any], Mapping[str, Any]],
    scorers: Sequence[Any],
    window: int = REFERENCE_WINDOW,
) -> Iterator[Any]:
    """The cells, in order, with each window's similarity references encoded ahead of them.

    References come from the dataset rows, so they are known before any answer: a window's
    are encoded in one call on a thread while the window before is being answered, and a
    cell is left to encode only its answer (shared with the other cells through the
    encoder's Coalescer). values_of(cell) gives the template values without the answer.
    Scores do not depend on this: a cell whose reference is not ready encodes it itself.
    """
    cells = iter(cells)
    if not any(isinstance(scorer, s.SimilarityScorer) for scorer in scorers):
        yield from cells
        return
    ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="references-ahead")

    def take() -> tuple[list[Any], Future[None] | None]:
        chunk = [cell for _, cell in zip(range(window), cells, strict=False)]
        texts = [t for cell in chunk for t in similarity_references(scorers, values_of(cell))]
        return chunk, ahead.submit(_prime, texts) if texts else None

    try:
        current, _ = take()  # the first window's cells do not wait: their requests go at once
        while current:
            following, priming = take()  # encoded while this window's cells are answered
            yield from current
            if priming is not None:
                # Normally done long ago; if not, its cells would only queue behind it. A
                # failure is the cells' to report: each encodes what it lacks and meets it.
                with contextlib.suppress(Exception):
                    priming.result()
            current = following
    finally:
        ahead.shutdown(wait=False, cancel_futures=True)


def _prime(texts: list[str]) -> None:
    # Loaded here, on the thread: torch's import must not hold up the batch's first request.
    from playground.eval.scorers_similarity import shared_encoder

    shared_encoder().prime(texts)


def score_latency(scorer: s.LatencyScorer, ctx: ScoreContext) -> Verdict:
    """Total latency within max_ms."""
    latency = ctx.result.latency_ms
    if latency is None:
        return _unmeasured(scorer.label, "no latency was measured")
    ok = latency <= scorer.max_ms
    return _verdict(
        scorer.label,
        ok,
        min(1.0, scorer.max_ms / latency) if latency else 1.0,
        f"{latency:.0f} ms {'≤' if ok else '>'} {scorer.max_ms:g} ms",
    )


def score_cost(scorer: s.CostScorer, ctx: ScoreContext) -> Verdict:
    """Call cost within max_usd."""
    cost = ctx.result.cost_usd
    ok = cost <= scorer.max_usd
    score = 1.0 if cost == 0 else min(1.0, scorer.max_usd / cost)
    return _verdict(
        scorer.label, ok, score, f"${cost:.6f} {'≤' if ok else '>'} ${scorer.max_usd:g}"
    )


def score_groundedness(scorer: s.GroundednessScorer, ctx: ScoreContext) -> Verdict:
    """The run's groundedness (computed once by runner.assess) reaches the threshold."""
    value = ctx.result.groundedness
    if ctx.run.retrieval is None:
        return _unmeasured(scorer.label, "the configuration retrieves no context")
    if value is None:
        return _unmeasured(scorer.label, "groundedness could not be computed for this answer")
    ok = value >= scorer.threshold
    return _verdict(
        scorer.label,
        ok,
        value,
        f"groundedness {value:.2f} {'≥' if ok else '<'} {scorer.threshold:g}",
    )


JUDGE_SYSTEM = (
    "You grade answers. Reply with only a JSON object: "
    '{"score": <integer 1 to 5>, "reason": "<one short sentence>"}. '
    "5 means the answer fully meets the rubric, 1 means it does not at all."
)


def judge_messages(rubric: str, question: str, answer: str, context: str) -> list[Message]:
    """The judge's conversation: rubric, question, optional context, answer."""
    parts = [f"Rubric: {rubric}"]
    if question:
        parts.append(f"Question: {question}")
    if context:
        parts.append(f"Context:\n{context}")
    parts.append(f"Answer: {answer}")
    parts.append('Reply with JSON only, like {"score": 4, "reason": "..."}.')
    return [
        Message(role="system", content=JUDGE_SYSTEM),
        Message(role="user", content="\n\n".join(parts)),
    ]


def parse_judge_reply(text: str) -> tuple[float, str] | None:
    """(score in [0, 1], reason) from a judge's reply, or None when it cannot be read."""
    body = _strip_fence(text)
    for match in re.finditer(r"\{[^{}]*\}", body, re.DOTALL):
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if not isinstance(data, dict):
            continue
        raw = data.get("score")
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            try:
                raw = float(str(raw).strip())
            except ValueError:
                continue
        if not 1 <= raw <= 5:
            continue
        reason = str(data.get("reason") or "").strip()
        return (float(raw) - 1) / 4, reason
    return None


def score_judge(scorer: s.JudgeScorer, ctx: ScoreContext) -> Verdict:
    """Ask the judge model; its reply must be a JSON verdict or the row is unmeasured."""
    from playground.runner import complete

    rubric = ctx.fill(scorer.rubric, f"scorer {scorer.label} rubric")
    values = ctx.template_values()
    question = str(values.get("question") or "")
    context = "\n\n".join(c.text for c in ctx.run.retrieved)
    messages = judge_messages(rubric, question, ctx.answer, context)
    params = ModelParams(temperature=0.0, max_tokens=scorer.max_tokens, seed=0)
    reply = complete(scorer.model, messages, params, ctx.settings)
    if reply.error:
        return _unmeasured(scorer.label, f"judge {scorer.model} failed: {_short(reply.error, 120)}")
    parsed = parse_judge_reply(reply.text)
    if parsed is None:
        return _unmeasured(
            scorer.label, f"judge reply is not a JSON verdict: '{_short(reply.text)}'"
        )
    score, reason = parsed
    ok = score >= scorer.threshold
    return _verdict(
        scorer.label,
        ok,
        score,
        f"judge {score:.2f} {'≥' if ok else '<'} {scorer.threshold:g}"
        + (f": {_short(reason, 100)}" if reason else ""),
    )


def score_faithfulness(scorer: s.FaithfulnessScorer, ctx: ScoreContext) -> Verdict:
    """Share of the answer's statements the judge finds in the retrieved chunks."""
    from playground.eval.judge import check_statements
    from playground.rag.groundedness import answer_sentences

    if ctx.run.retrieval is None or not ctx.run.retrieved:
        return _unmeasured(scorer.label, "the configuration retrieves no context")
    statements = answer_sentences(ctx.answer)[: scorer.max_statements]
    if not statements:
        return _verdict(scorer.label, False, 0.0, "the answer is empty")
    context = "\n\n".join(c.text for c in ctx.run.retrieved)
    question = str(ctx.template_values().get("question") or "")
    verdicts = check_statements(
        ctx.settings, scorer.model, statements, context, question, scorer.max_tokens
    )
    unread = [v for v in verdicts if v.supported is None]
    if unread:
        # one unreadable reply makes the share unknowable: never guess it either way
        return _unmeasured(
            scorer.label,
            f"judge {scorer.model} gave no JSON verdict for {len(unread)} of {len(verdicts)} "
            f"statements ({_short(unread[0].reason, 80)})",
        )
    supported = sum(bool(v.supported) for v in verdicts)
    share = supported / len(verdicts)
    ok = share >= scorer.threshold
    reason = f"{supported} of {len(verdicts)} statements supported by the chunks"
    missing = next((v for v in verdicts if not v.supported), None)
    if missing is not None:
        reason += f"; not: '{_short(missing.statement)}'"
    return _verdict(scorer.label, ok, share, reason)


def score_moderation(scorer: s.ModerationScorer, ctx: ScoreContext) -> Verdict:
    """Not flagged by the [moderation] endpoint; unmeasured where none is configured."""
    from playground.errors import EndpointError
    from playground.moderation import moderate

    if ctx.settings.moderation is None:
        return _unmeasured(
            scorer.label,
            "no moderation endpoint is configured; add [moderation] to playground.toml",
        )
    if ctx.result.moderation is not None:  # runner.assess already checked this answer
        flagged, categories = ctx.result.moderation.flagged, ctx.result.moderation.categories
    else:
        try:
            verdict = moderate(ctx.settings, ctx.answer)
        except EndpointError as exc:
            return _unmeasured(scorer.label, _short(str(exc), 160))
        if verdict is None:
            return _unmeasured(scorer.label, "the answer is empty; nothing to moderate")
        flagged, categories = verdict.flagged, verdict.categories
    if flagged:
        return _verdict(
            scorer.label, False, 0.0, "flagged: " + (", ".join(categories) or "unspecified")
        )
    return _verdict(scorer.label, True, 1.0, "not flagged by moderation")


def score_custom(scorer: s.CustomScorer, ctx: ScoreContext) -> Verdict:
    """Call `module:function(answer, row, result)`: bool, number in [0, 1], dict or Verdict."""
    function = s.load_callable(scorer.function)
    try:
        value = function(ctx.answer, dict(ctx.row), ctx.result)
    except Exception as exc:  # a user's scorer failing must not stop the batch
        return _unmeasured(
            scorer.label, f"{scorer.function} raised {type(exc).__name__}: {_short(str(exc))}"
        )
    if isinstance(value, Verdict):
        return value
    if isinstance(value, bool):
        return _verdict(scorer.label, value, float(value), f"{scorer.function} returned {value}")
    if isinstance(value, int | float):
        ok = value >= scorer.threshold
        return _verdict(
            scorer.label,
            ok,
            float(value),
            f"{scorer.function} scored {value:.2f} {'≥' if ok else '<'} {scorer.threshold:g}",
        )
    if isinstance(value, dict) and "status" in value:
        status = value["status"]
        if status in {"pass", "fail", "unmeasured"}:
            return Verdict(scorer.label, status, value.get("score"), str(value.get("reason", "")))
    return _unmeasured(
        scorer.label,
        f"{scorer.function} returned {type(value).__name__}, "
        "not bool, number or {status, score, reason}",
    )


_SCORERS: dict[type, Any] = {
    s.EqualsScorer: score_equals,
    s.ContainsScorer: score_contains,
    s.StartsWithScorer: score_starts_with,
    s.RegexScorer: score_regex,
    s.IsJsonScorer: score_is_json,
    s.NumberScorer: score_number,
    s.SimilarityScorer: score_similarity,
    s.LatencyScorer: score_latency,
    s.CostScorer: score_cost,
    s.GroundednessScorer: score_groundedness,
    s.JudgeScorer: score_judge,
    s.FaithfulnessScorer: score_faithfulness,
    s.ModerationScorer: score_moderation,
    s.CustomScorer: score_custom,
}


def score_one(scorer: Any, ctx: ScoreContext) -> Verdict:
    """One scorer's verdict; a template that fails to render makes it unmeasured."""
    try:
        return _SCORERS[type(scorer)](scorer, ctx)
    except PlaygroundError as exc:
        return _unmeasured(scorer.label, str(exc))


def score_answer(scorers: list[Any], ctx: ScoreContext) -> list[Verdict]:
    """Every scorer's verdict for one answer."""
    return [score_one(scorer, ctx) for scorer in scorers]


def row_status(verdicts: list[Verdict], error: str | None) -> str:
    """A row passes when every scorer passes; error > fail > unmeasured > pass."""
    if error is not None:
        return "error"
    statuses = {v.status for v in verdicts}
    if "fail" in statuses:
        return "fail"
    if "unmeasured" in statuses:
        return "unmeasured"
    return "pass"
