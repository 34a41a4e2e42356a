"""History: filters, rating summaries, the config diff between two runs, and export formats.

Pure functions and records; the store answers the queries, the History and Shared run pages
and `playground runs` show the results.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from playground.config import Settings
from playground.errors import PlaygroundError, UnknownModelError
from playground.formatting import when
from playground.records import Run

PAGE_SIZE = 20


@dataclass
class HistoryFilters:
    """What the History page narrows runs by; empty fields do not filter."""

    text: str = ""
    model_id: str | None = None
    min_stars: int | None = None  # a run matches when one of its answers averages >= this
    date_from: date | None = None
    date_to: date | None = None  # inclusive


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of a day."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_after(day: date) -> datetime:
    """Midnight UTC at the end of a day (exclusive bound of an inclusive date range)."""
    return day_start(day) + timedelta(days=1)


@dataclass
class RatingSummary:
    """The current star ratings of one answer (the latest per session) and its comments."""

    count: int = 0
    mean: float | None = None
    comments: list[str] = field(default_factory=list)

    def label(self) -> str:
        """'★ 4.5 (2)' or 'not rated'."""
        return f"★ {self.mean:.1f} ({self.count})" if self.mean is not None else "not rated"


@dataclass
class HistoryPage:
    """One page of runs, newest first, with the total that matched the filters."""

    runs: list[Run]
    total: int
    page: int
    page_size: int
    ratings: dict[str, RatingSummary] = field(default_factory=dict)  # by result id
    more: bool = False  # more runs match than `total` (a filtered count stops at a cap)
    last_key: tuple[Any, str] | None = None  # (created_at, id) of the last run: the next page's

    def matches(self) -> str:
        """'1 run matches', '25 runs match' or '1,020+ runs match'."""
        if self.more:
            return f"{self.total:,}+ runs match"
        return "1 run matches" if self.total == 1 else f"{self.total:,} runs match"

    @property
    def pages(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, -(-self.total // self.page_size))


def run_models(run: Run) -> list[str]:
    """The distinct model ids of a run, in cell order."""
    return list(dict.fromkeys(r.model_id for r in run.results))


def excerpt(text: str, width: int = 80) -> str:
    """One line of at most width characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def run_prompt(run: Run) -> str:
    """The user prompt of a run's first answer, as the user saw it (rendered)."""
    for result in run.results:
        for message in reversed(result.messages):
            if message.role == "user":
                return message.content
        if result.user_template:
            return result.user_template
    return ""


def history_table(page: HistoryPage) -> list[dict[str, Any]]:
    """Rows of the History overview table: one per run."""
    rows = []
    for run in page.runs:
        rated = [page.ratings[r.id] for r in run.results if r.id in page.ratings]
        means = [s.mean for s in rated if s.mean is not None]
        rows.append(
            {
                "when": when(run.created_at),
                "source": run.source,
                "models": ", ".join(run_models(run)),
                # a follow-up turn shows what was asked in that turn
                "prompt": excerpt(("follow-up: " if run.parent_run_id else "") + run_prompt(run)),
                "answers": len(run.results),
                "errors": sum(1 for r in run.results if r.error),
                "best stars": f"★ {max(means):.1f}" if means else "not rated",
                "run": run.id,
            }
        )
    return rows


def unavailable_models(model_ids: Iterable[str], settings: Settings) -> dict[str, str]:
    """Models of a stored run that cannot be used now, with the reason (no final period)."""
    from playground.models.registry import get_model

    notes: dict[str, str] = {}
    for model_id in dict.fromkeys(model_ids):
        try:
            get_model(model_id, settings)
        except UnknownModelError:
            notes[model_id] = f"{model_id} is no longer available"
        except PlaygroundError as exc:
            notes[model_id] = str(exc).rstrip(".")
    return notes


def _fmt(value: Any) -> str:
    return "unset" if value is None or value == [] else str(value)


def _params_by_model(run: Run) -> dict[str, dict[str, Any]]:
    return {r.model_id: r.params.model_dump(mode="json") for r in reversed(run.results)}


def _templates(run: Run) -> dict[str, tuple[str, str]]:
    return {r.variant_name: (r.system_template, r.user_template) for r in reversed(run.results)}


def config_diff(old: Run, new: Run) -> list[str]:
    """What changed from the older run to the newer one, spelled out one change per line."""
    changes: list[str] = []
    old_models, new_models = run_models(old), run_models(new)
    if old_models != new_models:
        if len(old_models) == 1 and len(new_models) == 1:
            changes.append(f"model changed: {old_models[0]} -> {new_models[0]}")
        else:
            added = [m for m in new_models if m not in old_models]
            removed = [m for m in old_models if m not in new_models]
            if added:
                changes.append("models added: " + ", ".join(added))
            if removed:
                changes.append("models removed: " + ", ".join(removed))
            if not added and not removed:
                changes.append("model order changed")
    old_params, new_params = _params_by_model(old), _params_by_model(new)
    shared = [m for m in new_models if m in old_models]
    if len(old_models) == 1 and len(new_models) == 1 and old_models != new_models:
        shared = new_models  # one model swapped for another: still compare their parameters
        old_params = {new_models[0]: old_params[old_models[0]]}
    for model in shared:
        before, after = old_params.get(model, {}), new_params.get(model, {})
        prefix = f"{model}: " if len(shared) > 1 else ""
        for name in sorted(set(before) | set(after)):
            if before.get(name) != after.get(name):
                changes.append(
                    f"{prefix}{name} {_fmt(before.get(name))} -> {_fmt(after.get(name))}"
                )
    old_t, new_t = _templates(old), _templates(new)
    single = len(old_t) == 1 and len(new_t) == 1
    if single:
        old_t = {"": next(iter(old_t.values()))}
        new_t = {"": next(iter(new_t.values()))}
    for variant in [v for v in new_t if v in old_t]:
        where = f" (variant {variant})" if variant else ""
        if old_t[variant][0] != new_t[variant][0]:
            changes.append(f"system message changed{where}")
        if old_t[variant][1] != new_t[variant][1]:
            changes.append(f"prompt template changed{where}")
    if not single:
        for variant in [v for v in new_t if v not in old_t]:
            changes.append(f"variant added: {variant}")
        for variant in [v for v in old_t if v not in new_t]:
            changes.append(f"variant removed: {variant}")
    for name in sorted(set(old.variables) | set(new.variables)):
        before, after = old.variables.get(name), new.variables.get(name)
        if before != after:
            if before is None:
                changes.append(f"variable {name} added")
            elif after is None:
                changes.append(f"variable {name} removed")
            else:
                changes.append(f"variable {name} changed")
    old_r = old.retrieval.to_dict() if old.retrieval else None
    new_r = new.retrieval.to_dict() if new.retrieval else None
    if old_r != new_r:
        if old_r is None or new_r is None:
            before = old_r["store"] if old_r else "none"
            after = new_r["store"] if new_r else "none"
            changes.append(f"knowledge store {before} -> {after}")
        else:
            for name in ("store", "top_k", "query", "context_variable"):
                if old_r[name] != new_r[name]:
                    changes.append(f"retrieval {name} {old_r[name]} -> {new_r[name]}")
    return changes


def baseline_first(a: Run, b: Run) -> tuple[Run, Run]:
    """The two runs ordered (older = baseline, newer)."""
    return (a, b) if (a.created_at, a.id) <= (b.created_at, b.id) else (b, a)


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """CSV text with a header from the union of the rows' keys (first-seen order)."""
    if not rows:
        return ""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def to_json(rows: Any) -> str:
    """Indented JSON text; datetimes as ISO strings."""
    return json.dumps(rows, indent=2, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
