"""What served flows did over a window, per flow and version: the Monitor page and `monitor`.

Everything is computed from stored runs (`source = "serve"`), their ratings and online
scores, so several replicas writing to one PostgreSQL store show up as one service.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.config import Settings
from playground.errors import PlaygroundError
from playground.formatting import NONE_SHOWN, duration, usd, version_name, when
from playground.records import Run, utc_now
from playground.serve.settings import window_seconds
from playground.store.traces import AlertEvent, FeedbackRow, OnlineScore, ServedCall, TracesPart

if TYPE_CHECKING:
    from playground.eval.datasets import DatasetInfo
    from playground.store import Store

WORST = 10


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class VersionStats:
    """One flow version over the window."""

    flow: str
    version: int | None
    requests: int
    errors: int
    cut_off: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    tokens: int
    cost_usd: float
    feedback: int
    mean_stars: float | None
    online_scored: int
    online_score: float | None  # mean score of the scorers that gave one
    online_pass_rate: float | None


@dataclass
class DailyRow:
    """One flow version on one UTC day."""

    day: str
    flow: str
    version: int | None
    requests: int
    errors: int
    tokens: int
    cost_usd: float
    latency_p50_ms: float | None
    online_score: float | None
    mean_stars: float | None


@dataclass
class WorstCall:
    """A recent call worth a look: failed, cut off, slow, poorly rated or scored."""

    run_id: str
    created_at: str
    flow: str
    version: int | None
    why: str
    latency_ms: float | None
    inputs: str
    answer: str


@dataclass
class MonitorReport:
    """Everything the Monitor shows for one window."""

    window: str
    since: str
    versions: list[VersionStats] = field(default_factory=list)
    daily: list[DailyRow] = field(default_factory=list)
    worst: list[WorstCall] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data for `playground monitor --json`."""
        return asdict(self)


def served_flow_names(report: MonitorReport) -> list[str]:
    """The flows seen in a report, alphabetically."""
    return sorted({v.flow for v in report.versions})


def _key(flow: str | None, version: int | None) -> tuple[str, int | None]:
    return (flow or "?", version)


def _mean(values: Iterable[float]) -> float | None:
    found = list(values)
    return sum(found) / len(found) if found else None


def version_stats(
    calls: Sequence[ServedCall], feedback: Sequence[FeedbackRow], scores: Sequence[OnlineScore]
) -> list[VersionStats]:
    """Per flow version: requests, error rate, latency p50/p95, tokens, cost, stars, scores."""
    by_key: dict[tuple[str, int | None], list[ServedCall]] = defaultdict(list)
    for call in calls:
        by_key[_key(call.flow_name, call.flow_version)].append(call)
    stars: dict[tuple[str, int | None], list[int]] = defaultdict(list)
    for row in feedback:
        if row.stars is not None:
            stars[_key(row.flow_name, row.flow_version)].append(row.stars)
    by_score: dict[tuple[str, int | None], list[OnlineScore]] = defaultdict(list)
    for score in scores:
        by_score[_key(score.flow_name, score.flow_version)].append(score)
    keys = sorted(set(by_key) | set(stars) | set(by_score), key=lambda k: (k[0], k[1] or 0))
    rows = []
    for key in keys:
        group = by_key.get(key, [])
        errors = [c for c in group if c.error is not None]
        cut = [c for c in errors if c.error and c.error.startswith("Cut off")]
        latencies = [c.latency_ms for c in group if c.error is None and c.latency_ms is not None]
        measured = [s for s in by_score.get(key, []) if s.status != "unmeasured"]
        rows.append(
            VersionStats(
                flow=key[0],
                version=key[1],
                requests=len(group),
                errors=len(errors),
                cut_off=len(cut),
                error_rate=len(errors) / len(group) if group else 0.0,
                latency_p50_ms=percentile(latencies, 50),
                latency_p95_ms=percentile(latencies, 95),
                tokens=sum(c.prompt_tokens + c.completion_tokens for c in group),
                cost_usd=sum(c.cost_usd for c in group),
                feedback=len(stars.get(key, [])),
                mean_stars=_mean(stars.get(key, [])),
                online_scored=len({s.result_id for s in by_score.get(key, [])}),
                online_score=_mean(s.score for s in measured if s.score is not None),
                online_pass_rate=(
                    sum(s.status == "pass" for s in measured) / len(measured) if measured else None
                ),
            )
        )
    return rows


def daily_rows(
    calls: Sequence[ServedCall], feedback: Sequence[FeedbackRow], scores: Sequence[OnlineScore]
) -> list[DailyRow]:
    """Per UTC day and flow version: requests, errors, tokens, cost, latency, scores, stars."""
    groups: dict[tuple[str, str, int | None], list[ServedCall]] = defaultdict(list)
    for call in calls:
        groups[
            (call.created_at.date().isoformat(), *_key(call.flow_name, call.flow_version))
        ].append(call)
    day_scores: dict[tuple[str, str, int | None], list[float]] = defaultdict(list)
    for s in scores:
        if s.score is not None and s.status != "unmeasured":
            day_scores[
                (s.created_at.date().isoformat(), *_key(s.flow_name, s.flow_version))
            ].append(s.score)
    day_stars: dict[tuple[str, str, int | None], list[int]] = defaultdict(list)
    for f in feedback:
        if f.stars is not None:
            day_stars[(f.created_at.date().isoformat(), *_key(f.flow_name, f.flow_version))].append(
                f.stars
            )
    keys = sorted(
        set(groups) | set(day_scores) | set(day_stars), key=lambda k: (k[0], k[1], k[2] or 0)
    )
    rows = []
    for key in keys:
        group = groups.get(key, [])
        latencies = [c.latency_ms for c in group if c.error is None and c.latency_ms is not None]
        rows.append(
            DailyRow(
                day=key[0],
                flow=key[1],
                version=key[2],
                requests=len(group),
                errors=sum(c.error is not None for c in group),
                tokens=sum(c.prompt_tokens + c.completion_tokens for c in group),
                cost_usd=sum(c.cost_usd for c in group),
                latency_p50_ms=percentile(latencies, 50),
                online_score=_mean(day_scores.get(key, [])),
                mean_stars=_mean(day_stars.get(key, [])),
            )
        )
    return rows


def _excerpt(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def worst_calls(
    calls: Sequence[ServedCall],
    feedback: Sequence[FeedbackRow],
    scores: Sequence[OnlineScore],
    limit: int = WORST,
) -> list[WorstCall]:
    """Failed and cut-off calls (newest first), then low stars and scores, then the slowest."""
    low_stars = {f.result_id: f.stars for f in feedback if f.stars is not None and f.stars <= 2}
    failing = {s.result_id: s for s in scores if s.status == "fail"}

    def rank(call: ServedCall) -> tuple[int, float]:
        newest = -call.created_at.timestamp()
        if call.error is not None:
            return (0, newest)
        if call.result_id in low_stars:
            return (1, newest)
        if call.result_id in failing:
            return (2, newest)
        return (3, -(call.latency_ms or 0.0))

    chosen = sorted(calls, key=rank)[:limit]
    worst = []
    for call in chosen:
        if call.error is not None:
            why = call.error
        elif call.result_id in low_stars:
            why = f"rated {low_stars[call.result_id]} star(s)"
        elif call.result_id in failing:
            score = failing[call.result_id]
            why = f"online scorer {score.scorer} failed: {score.reason}"
        else:
            why = "slowest in the window"
        variables = json.loads(call.variables_json or "{}")
        worst.append(
            WorstCall(
                run_id=call.run_id,
                created_at=call.created_at.isoformat(timespec="seconds"),
                flow=call.flow_name or "?",
                version=call.flow_version,
                why=_excerpt(why, 200),
                latency_ms=call.latency_ms,
                inputs=_excerpt(", ".join(f"{k}={v}" for k, v in variables.items())),
                answer=_excerpt(call.text),
            )
        )
    return worst


def _share(value: float | None) -> str:
    return NONE_SHOWN if value is None else f"{value:.0%}"


def versions_table(report: MonitorReport) -> list[dict[str, Any]]:
    """The Monitor's per-version table as people read it ('—' where there is no value)."""
    return [
        {
            "flow": v.flow,
            "version": version_name(v.version),
            "requests": v.requests,
            "error rate": _share(v.error_rate),
            "cut off": v.cut_off,
            "p50": duration(v.latency_p50_ms),
            "p95": duration(v.latency_p95_ms),
            "tokens": v.tokens,
            "cost": usd(v.cost_usd),
            "feedback": v.feedback,
            "mean stars": NONE_SHOWN if v.mean_stars is None else f"★ {v.mean_stars:.1f}",
            "online score": NONE_SHOWN if v.online_score is None else f"{v.online_score:.2f}",
            "online pass rate": _share(v.online_pass_rate),
        }
        for v in report.versions
    ]


def worst_table(report: MonitorReport) -> list[dict[str, Any]]:
    """The worst recent calls as people read them, each with a link to open the run."""
    return [
        {
            "when": when(w.created_at),
            "flow": w.flow,
            "version": version_name(w.version),
            "why": w.why,
            "latency": duration(w.latency_ms),
            "inputs": w.inputs,
            "answer": w.answer,
            "open": f"/shared?run={w.run_id}",
            "run_id": w.run_id,
        }
        for w in report.worst
    ]


def call_label(call: WorstCall) -> str:
    """How a worst call is named in the 'Add to dataset' picker."""
    return f"{when(call.created_at)} · {call.flow} {version_name(call.version)} · {call.why}"


def _event_json(event: AlertEvent) -> dict[str, Any]:
    data = asdict(event)
    data["created_at"] = event.created_at.isoformat(timespec="seconds")
    return data


def monitor_report(
    settings: Settings,
    window: str = "24h",
    flow: str | None = None,
    now: datetime | None = None,
    traces: TracesPart | None = None,
) -> MonitorReport:
    """The Monitor's figures for served calls in the last `window` (e.g. 1h, 24h, 7d)."""
    from playground.serve.settings import alert_rules

    since = (now or utc_now()) - timedelta(seconds=window_seconds(window))
    if traces is None:
        from playground.store import open_store

        traces = open_store(settings).traces
    calls = traces.served_calls(since, flow)
    feedback = traces.served_feedback(since, flow)
    scores = traces.scores_since(since, flow)
    states = traces.alert_states()
    alerts = []
    for rule in alert_rules(settings):
        firing, value, firing_since = states.get(rule.name, (False, None, None))
        alerts.append(
            {
                "name": rule.name,
                "rule": f"{rule.metric} {rule.operator} {rule.value:g} over {rule.window}",
                "flow": rule.flow,
                "firing": firing,
                "value": value,
                "since": firing_since.isoformat(timespec="seconds") if firing_since else None,
            }
        )
    return MonitorReport(
        window=window,
        since=since.isoformat(timespec="seconds"),
        versions=version_stats(calls, feedback, scores),
        daily=daily_rows(calls, feedback, scores),
        worst=worst_calls(calls, feedback, scores),
        alerts=alerts,
        events=[_event_json(e) for e in traces.alert_events(20)],
    )


def metric_value(
    metric: str,
    calls: Sequence[ServedCall],
    feedback: Sequence[FeedbackRow],
    scores: Sequence[OnlineScore],
) -> float | None:
    """One alert metric over already-filtered rows; None when there is nothing to measure."""
    ok_latency = [c.latency_ms for c in calls if c.error is None and c.latency_ms is not None]
    if metric == "requests":
        return float(len(calls))
    if metric == "error_rate":
        return sum(c.error is not None for c in calls) / len(calls) if calls else None
    if metric == "latency_p50_ms":
        return percentile(ok_latency, 50)
    if metric == "latency_p95_ms":
        return percentile(ok_latency, 95)
    if metric == "tokens":
        return float(sum(c.prompt_tokens + c.completion_tokens for c in calls))
    if metric == "cost_usd":
        return sum(c.cost_usd for c in calls)
    if metric == "mean_stars":
        return _mean(f.stars for f in feedback if f.stars is not None)
    if metric == "online_score":
        return _mean(s.score for s in scores if s.score is not None and s.status != "unmeasured")
    raise ValueError(f"unknown metric {metric}")


def call_row(run: Run, feedback: Sequence[FeedbackRow]) -> dict[str, Any]:
    """One evaluation row from a served call: its inputs as columns, then what production saw.

    The inputs keep their names (so the flow's `evaluation` block maps them as is); the answer,
    the latest stars and every comment follow. A production field whose name an input already
    uses is written as `served_<field>`.
    """
    result = run.results[0]
    stars = [f.stars for f in feedback if f.stars is not None]
    comments = [f.comment.strip() for f in feedback if f.comment and f.comment.strip()]
    row: dict[str, Any] = dict(run.variables)
    served = {
        "answer": result.text,
        "stars": stars[-1] if stars else None,
        "comment": " | ".join(comments) or None,
        "error": result.error,
        "run_id": run.id,
        "flow": run.flow_name,
        "version": run.flow_version,
    }
    for key, value in served.items():
        row[f"served_{key}" if key in row else key] = value
    return row


def calls_to_dataset(
    settings: Settings, store: Store, run_ids: Sequence[str], name: str
) -> tuple[DatasetInfo, int]:
    """Add served calls (with their feedback) to dataset NAME as a new version; rows added.

    The new version holds the newest stored version's rows plus the calls not in it yet (by
    run id), so adding the same call twice changes nothing.
    """
    from playground.eval.datasets import NAME_PATTERN, DatasetError, Datasets, iter_rows

    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise DatasetError(
            f"Dataset name '{name}' is not allowed; use lower-case letters, digits, - and _."
        )
    if not run_ids:
        raise PlaygroundError("No call is selected; tick the calls to add in the table first.")
    datasets = Datasets(settings)
    # created_at has whole seconds: two additions within one second would tie, so the file's
    # own time picks the newest version to build on
    existing = sorted(
        datasets.versions(name),
        key=lambda v: (v.created_at, (v.path.parent / "meta.json").stat().st_mtime_ns),
        reverse=True,
    )
    rows = list(iter_rows(existing[0])) if existing else []
    have = {str(r.get("run_id")) for r in rows if r.get("run_id")}
    runs = [store.runs.get_run(run_id) for run_id in run_ids if run_id not in have]
    runs = [run for run in runs if run.source == "serve" and run.results]
    if not runs:
        if existing:
            return existing[0], 0
        raise PlaygroundError("None of the selected runs is a served call; pick served calls.")
    feedback = store.traces.feedback_for([run.results[0].id for run in runs])
    by_result: dict[str, list[FeedbackRow]] = defaultdict(list)
    for row in feedback:
        by_result[row.result_id].append(row)
    rows += [call_row(run, by_result[run.results[0].id]) for run in runs]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"monitor-{name}.jsonl"  # the source the dataset records
        with path.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        return datasets.import_file(path, name), len(runs)
