"""Online scoring: reference-free scorers on a sampled share of served calls, off the request path.

The scorers come from the flow spec's `evaluation` block; those that need a reference
(`contains`, `similarity`, or any template over dataset columns) cannot judge live traffic and
are skipped. A bounded queue and one worker thread keep a slow judge from ever slowing an
answer: when the queue is full, calls are left unscored (and counted as dropped).
"""

from __future__ import annotations

import json
import logging
import queue
import random
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from playground.config import Settings
from playground.errors import PlaygroundError
from playground.models.base import Message, ModelParams
from playground.records import Result, Run, utc_now
from playground.store.traces import OnlineScore

if TYPE_CHECKING:
    from playground.serve.service import ServedFlow

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
REFERENCE_FREE = ("judge", "groundedness", "latency", "cost", "regex", "json")
JUDGE_PROMPT = (
    "Grade the answer against the rubric. Reply with one digit from 1 (fails the rubric) "
    "to 5 (fully meets it) and nothing else."
)


def _verdict(name: str, passed: bool | None, score: float | None, reason: str) -> dict[str, Any]:
    status = "unmeasured" if passed is None else ("pass" if passed else "fail")
    return {"scorer": name, "status": status, "score": score, "reason": reason}


def judge_score(
    settings: Settings, model_id: str, rubric: str, run: Run, answer: str
) -> float | None:
    """A 0-1 score from a judge model's 1-5 digit, or None when it gives no digit."""
    from playground.runner import complete

    question = "\n".join(f"{k}: {v}" for k, v in run.variables.items())
    messages = [
        Message(role="system", content=JUDGE_PROMPT),
        Message(
            role="user",
            content=f"Rubric: {rubric}\n\nInputs:\n{question}\n\nAnswer:\n{answer}\n\nGrade:",
        ),
    ]
    result = complete(model_id, messages, ModelParams(temperature=0.0, max_tokens=4), settings)
    if result.error is not None:
        raise PlaygroundError(result.error)
    match = re.search(r"[1-5]", result.text)
    return (int(match.group()) - 1) / 4 if match else None


def score_call(
    settings: Settings, scorers: list[Mapping[str, Any]], run: Run
) -> list[dict[str, Any]]:
    """Every reference-free scorer's verdict on a served run's answer."""
    result: Result = run.results[0]
    verdicts = []
    for spec in scorers:
        kind = str(spec.get("type", ""))
        if kind not in REFERENCE_FREE:
            continue
        name = str(spec.get("name") or kind)
        try:
            verdicts.append(_one(settings, kind, name, spec, run, result))
        except PlaygroundError as exc:
            verdicts.append(_verdict(name, None, None, str(exc)))
    return verdicts


def _one(
    settings: Settings, kind: str, name: str, spec: Mapping[str, Any], run: Run, result: Result
) -> dict[str, Any]:
    if result.error is not None:
        return _verdict(name, None, None, "The call failed; nothing to score.")
    if kind == "latency":
        limit = float(spec.get("max_ms", 5000))
        ms = result.latency_ms or 0.0
        return _verdict(
            name, ms <= limit, 1.0 if ms <= limit else 0.0, f"{ms:.0f} ms (max {limit:g})"
        )
    if kind == "cost":
        limit = float(spec.get("max_usd", 0.01))
        return _verdict(
            name, result.cost_usd <= limit, None, f"${result.cost_usd:.6f} (max {limit:g})"
        )
    if kind == "regex":
        pattern = str(spec.get("pattern", ""))
        found = re.search(pattern, result.text) is not None
        return _verdict(
            name, found, 1.0 if found else 0.0, f"/{pattern}/ {'found' if found else 'not found'}"
        )
    if kind == "json":
        try:
            json.loads(result.text)
        except ValueError:
            return _verdict(name, False, 0.0, "The answer is not valid JSON.")
        return _verdict(name, True, 1.0, "The answer is valid JSON.")
    if kind == "groundedness":
        threshold = float(spec.get("threshold", 0.5))
        if result.groundedness is None:
            return _verdict(name, None, None, "Not grounded: the call retrieved no context.")
        score = result.groundedness
        return _verdict(name, score >= threshold, score, f"groundedness {score:.2f}")
    # judge
    rubric = str(spec.get("rubric", ""))
    model_id = str(spec.get("model") or result.model_id)
    threshold = float(spec.get("threshold", 0.5))
    score = judge_score(settings, model_id, rubric, run, result.text)
    if score is None:
        return _verdict(name, None, None, f"{model_id} gave no 1-5 grade.")
    return _verdict(name, score >= threshold, score, f"{model_id} graded {score:.2f}")


def scorers_of(served: ServedFlow) -> list[Mapping[str, Any]]:
    """The scorers in the served spec's evaluation block (none without one).

    The block is the spec's `evaluation` key once the spec declares it, and `x-evaluation`
    (an extension key every spec v1 reader keeps) until then.
    """
    spec = served.flow.spec
    block: Any = getattr(spec, "evaluation", None)
    if isinstance(block, BaseModel):
        block = block.model_dump(mode="json", exclude_none=True)
    if block is None:
        block = spec.extensions().get("x-evaluation")
    if isinstance(block, Mapping) and isinstance(block.get("scorers"), list):
        return [s for s in block["scorers"] if isinstance(s, Mapping)]
    return []


class OnlineScorer:
    """One background thread scoring a sampled share of served calls into store.traces."""

    def __init__(self, settings: Settings, sample: float, seed: int | None = None) -> None:
        self.settings = settings
        self.sample = sample
        self.queue: queue.Queue[tuple[ServedFlow, Run] | None] = queue.Queue(QUEUE_SIZE)
        self.dropped = 0
        self.scored = 0
        self._random = random.Random(seed)
        self._thread = threading.Thread(target=self._work, name="online-scorer", daemon=True)

    def offer(self, served: ServedFlow, run: Run) -> None:
        """Queue a finished call for scoring when sampled; never blocks."""
        if self.sample <= 0 or self._random.random() >= self.sample or not scorers_of(served):
            return
        try:
            self.queue.put_nowait((served, run))
        except queue.Full:
            self.dropped += 1

    def start(self) -> None:
        """Start the worker."""
        self._thread.start()

    def stop(self) -> None:
        """Finish the queued calls and stop."""
        if self._thread.is_alive():
            self.queue.put(None)
            self._thread.join(timeout=30)

    def _work(self) -> None:
        from playground.store import open_store

        while True:
            item = self.queue.get()
            if item is None:
                return
            served, run = item
            try:
                verdicts = score_call(self.settings, list(scorers_of(served)), run)
                result = run.results[0]
                now = utc_now()
                open_store(self.settings).traces.add_scores(
                    [
                        OnlineScore(
                            result_id=result.id,
                            run_id=run.id,
                            flow_name=run.flow_name,
                            flow_version=run.flow_version,
                            scorer=v["scorer"],
                            status=v["status"],
                            score=v["score"],
                            reason=v["reason"],
                            created_at=now,
                        )
                        for v in verdicts
                    ]
                )
                self.scored += 1
            except Exception:  # scoring must never take the server down
                log.exception("Online scoring of run %s failed", run.id)
