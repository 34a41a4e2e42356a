"""Batch results: a pandas table of cells, per-configuration figures, baseline comparison.

Statistics come from scipy: the pass rate's 95% interval is Wilson's (`binomtest().proportion_ci`)
and the baseline comparison is McNemar's exact test (a binomial test on the discordant pairs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from playground.config import Settings
from playground.errors import NotFoundError
from playground.eval.batch import BatchPlan
from playground.eval.spec import Gate

if TYPE_CHECKING:
    import pandas as pd

    from playground.store.batches import BatchRecord, CellRecord


def cells_frame(cells: list[CellRecord], plan: BatchPlan) -> pd.DataFrame:
    """One row per finished cell: configuration, row, status, answer, measurements, verdicts."""
    import pandas as pd

    records = []
    for cell in cells:
        result = cell.result
        config = plan.configs[cell.config_index]
        record: dict[str, Any] = {
            "config_index": cell.config_index,
            "config": config.label,
            "model": config.model_id,
            "variant": config.variant_name,
            "row": cell.row_index,
            "repeat": cell.repeat_index,
            "status": cell.status,
            "cached": cell.cached,
            "run_id": cell.run_id,
            "answer": result.text if result else "",
            "error": result.error if result else None,
            "latency_ms": result.latency_ms if result else None,
            "cost_usd": result.cost_usd if result else 0.0,
            "prompt_tokens": result.usage.prompt_tokens if result else 0,
            "completion_tokens": result.usage.completion_tokens if result else 0,
            "groundedness": result.groundedness if result else None,
            "variables": cell.variables,
            "verdicts": cell.verdicts,
        }
        for verdict in cell.verdicts:
            record[f"{verdict['scorer']}:status"] = verdict["status"]
            record[f"{verdict['scorer']}:score"] = verdict["score"]
        records.append(record)
    return pd.DataFrame.from_records(records)


def wilson_interval(passed: int, n: int) -> tuple[float | None, float | None]:
    """95% Wilson interval of a pass rate (scipy), None for no trials."""
    if n == 0:
        return None, None
    from scipy.stats import binomtest

    ci = binomtest(passed, n).proportion_ci(confidence_level=0.95, method="wilson")
    return round(float(ci.low), 4), round(float(ci.high), 4)


def gate_figures(counts: dict[str, int], gate: Gate) -> tuple[int, float | None, bool]:
    """(denominator, pass rate, gate met) under the gate's rules for unmeasured and errors."""
    denominator = counts["pass"] + counts["fail"]
    if gate.unmeasured == "fail":
        denominator += counts["unmeasured"]
    if gate.errors == "fail":
        denominator += counts["error"]
    rate = counts["pass"] / denominator if denominator else None
    return denominator, rate, rate is not None and rate >= gate.pass_rate - 1e-12


@dataclass
class ConfigSummary:
    """Figures of one configuration in a batch."""

    label: str
    model: str
    variant: str
    passed: int
    failed: int
    unmeasured: int
    errors: int
    cells: int
    pass_rate: float | None
    ci_low: float | None
    ci_high: float | None
    gate_pass_rate: float
    gate_passed: bool
    scorers: dict[str, dict[str, float | None]]
    cost_usd: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cached: int
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, with_rows: bool = True) -> dict[str, Any]:
        """The --json shape of one configuration (DESIGN.md)."""
        data = {k: v for k, v in self.__dict__.items() if k != "rows"}
        if with_rows:
            data["rows"] = self.rows
        return data


def _nan_none(value: Any) -> Any:
    if value is None:
        return None
    try:
        return None if math.isnan(float(value)) else round(float(value), 4)
    except (TypeError, ValueError):
        return value


def summarize(plan: BatchPlan, cells: list[CellRecord]) -> list[ConfigSummary]:
    """Per configuration: counts, pass rate with 95% CI, per-scorer rates, cost, latency."""
    frame = cells_frame(cells, plan)
    gate = plan.evaluation.gate
    summaries = []
    for index, config in enumerate(plan.configs):
        part = frame[frame["config_index"] == index] if len(frame) else frame
        counts = {k: 0 for k in ("pass", "fail", "unmeasured", "error")}
        if len(part):
            counts.update(part["status"].value_counts().to_dict())
        denominator, rate, met = gate_figures(counts, gate)
        low, high = wilson_interval(counts["pass"], denominator)
        scorers: dict[str, dict[str, float | None]] = {}
        for scorer in plan.evaluation.scorers:
            column = f"{scorer.label}:status"
            if len(part) and column in part:
                statuses = part[column].dropna()
                measured = statuses[statuses != "unmeasured"]
                scores = part[f"{scorer.label}:score"].dropna().astype(float)
                scorers[scorer.label] = {
                    "pass_rate": _nan_none((measured == "pass").mean()) if len(measured) else None,
                    "mean": _nan_none(scores.mean()) if len(scores) else None,
                    "unmeasured": int((statuses == "unmeasured").sum()),
                }
            else:
                scorers[scorer.label] = {"pass_rate": None, "mean": None, "unmeasured": 0}
        latency = part["latency_ms"].dropna().astype(float) if len(part) else None
        rows = []
        if len(part):
            for record in part.to_dict(orient="records"):
                rows.append(
                    {
                        "row": record["row"],
                        "repeat": record["repeat"],
                        "status": record["status"],
                        "run_id": record["run_id"],
                        "answer": record["answer"],
                        "error": record["error"],
                        "latency_ms": _nan_none(record["latency_ms"]),
                        "cost_usd": _nan_none(record["cost_usd"]),
                        "cached": bool(record["cached"]),
                        "inputs": record["variables"],
                        "verdicts": record["verdicts"],
                    }
                )
        summaries.append(
            ConfigSummary(
                label=config.label,
                model=config.model_id,
                variant=config.variant_name,
                passed=counts["pass"],
                failed=counts["fail"],
                unmeasured=counts["unmeasured"],
                errors=counts["error"],
                cells=len(part),
                pass_rate=None if rate is None else round(rate, 4),
                ci_low=low,
                ci_high=high,
                gate_pass_rate=gate.pass_rate,
                gate_passed=met,
                scorers=scorers,
                cost_usd=round(float(part["cost_usd"].sum()), 8) if len(part) else 0.0,
                latency_p50_ms=_nan_none(latency.quantile(0.5))
                if latency is not None and len(latency)
                else None,
                latency_p95_ms=_nan_none(latency.quantile(0.95))
                if latency is not None and len(latency)
                else None,
                cached=int(part["cached"].sum()) if len(part) else 0,
                rows=rows,
            )
        )
    return summaries


@dataclass
class BatchReport:
    """A stored batch with its plan, cells and figures."""

    record: BatchRecord
    plan: BatchPlan
    cells: list[CellRecord]
    configs: list[ConfigSummary]

    @property
    def gate_passed(self) -> bool:
        """Every configuration met its gate and every cell finished."""
        complete = self.record.done_cells >= self.record.total_cells
        return complete and all(c.gate_passed for c in self.configs)

    def frame(self) -> pd.DataFrame:
        """The cells as a pandas table."""
        return cells_frame(self.cells, self.plan)

    def to_json(self, with_rows: bool = True) -> dict[str, Any]:
        """The `eval run --json` document."""
        return {
            "batch_id": self.record.id,
            "name": self.record.name,
            "dataset": self.record.dataset,
            "status": self.record.status,
            "cells": self.record.total_cells,
            "done": self.record.done_cells,
            "gate_passed": self.gate_passed,
            "configurations": [c.to_json(with_rows) for c in self.configs],
        }


def load_report(settings: Settings, batch_id: str) -> BatchReport:
    """A stored batch's report; NotFoundError when there is no such batch."""
    from playground.store import open_store

    store = open_store(settings)
    record = store.batches.get(batch_id)
    plan = BatchPlan.from_record(settings, record)
    cells = store.batches.cells(record.id)
    return BatchReport(record, plan, cells, summarize(plan, cells))


@dataclass
class ConfigComparison:
    """One configuration's rows in a batch against the same configuration in a baseline."""

    label: str
    paired: int
    pass_to_fail: list[int]
    fail_to_pass: list[int]
    p_value: float | None
    significant: bool
    pass_rate: float | None
    baseline_pass_rate: float | None

    def to_json(self) -> dict[str, Any]:
        """Plain data for --json."""
        return dict(self.__dict__)


def compare_reports(current: BatchReport, baseline: BatchReport) -> list[ConfigComparison]:
    """Pass -> fail and fail -> pass rows per configuration, with McNemar's exact test."""
    from scipy.stats import binomtest

    comparisons = []
    base_by_label = {c.label: i for i, c in enumerate(baseline.plan.configs)}
    now = current.frame()
    before = baseline.frame()
    for index, config in enumerate(current.plan.configs):
        base_index = base_by_label.get(config.label)
        if base_index is None and len(baseline.plan.configs) == len(current.plan.configs):
            base_index = index  # same shape, renamed: pair by position
        if base_index is None or not len(now) or not len(before):
            continue
        a = now[now["config_index"] == index].set_index(["row", "repeat"])["status"]
        b = before[before["config_index"] == base_index].set_index(["row", "repeat"])["status"]
        joined = a.to_frame("now").join(b.to_frame("before"), how="inner")
        went_bad = joined[(joined["before"] == "pass") & (joined["now"] != "pass")]
        went_good = joined[(joined["before"] != "pass") & (joined["now"] == "pass")]
        discordant = len(went_bad) + len(went_good)
        p_value = None
        if discordant:
            p_value = float(binomtest(min(len(went_bad), len(went_good)), discordant, 0.5).pvalue)
        comparisons.append(
            ConfigComparison(
                label=config.label,
                paired=len(joined),
                pass_to_fail=sorted({int(r) for r, _ in went_bad.index}),
                fail_to_pass=sorted({int(r) for r, _ in went_good.index}),
                p_value=None if p_value is None else round(p_value, 4),
                significant=p_value is not None and p_value < 0.05,
                pass_rate=current.configs[index].pass_rate,
                baseline_pass_rate=baseline.configs[base_index].pass_rate,
            )
        )
    if not comparisons:
        raise NotFoundError(
            f"Batches {current.record.id[:8]} and {baseline.record.id[:8]} share no configuration "
            "to compare; compare batches of the same flows."
        )
    return comparisons


MIN_SHARED_LABELS = 10  # fewer than this and agreement figures mean little: "uncalibrated"
GOOD_STARS = 3.5  # a mean of 4-5 stars is a good answer to a person; 1-3 is not


@dataclass
class JudgeCalibration:
    """How often a judge agrees with the people who rated the same answers."""

    scorer: str
    count: int
    accuracy: float | None
    kappa: float | None
    calibrated: bool

    def sentence(self) -> str:
        """One line for the CLI and the page."""
        if not self.calibrated:
            return (
                f"{self.scorer}: uncalibrated ({self.count} answers rated by people, "
                f"{MIN_SHARED_LABELS} needed)"
            )
        return (
            f"{self.scorer}: agrees with people on {self.accuracy:.0%} of {self.count} answers "
            f"(Cohen's kappa {self.kappa:.2f})"
        )

    def to_json(self) -> dict[str, Any]:
        """Plain data for --json."""
        return dict(self.__dict__)


def judge_agreement(judge_passes: list[bool], human_passes: list[bool]) -> tuple[float, float]:
    """(accuracy, Cohen's kappa) of paired pass/fail labels (scikit-learn's kappa)."""
    from sklearn.metrics import cohen_kappa_score

    agree = sum(j == h for j, h in zip(judge_passes, human_passes, strict=True))
    if len(set(judge_passes) | set(human_passes)) == 1:
        return agree / len(judge_passes), 1.0  # one label everywhere: perfect, kappa undefined
    kappa = float(cohen_kappa_score(judge_passes, human_passes))
    return agree / len(judge_passes), kappa


def calibrate_judges(settings: Settings, report: BatchReport) -> list[JudgeCalibration]:
    """For each judge scorer: agreement with the star ratings people gave the same answers."""
    from playground.eval.spec import JudgeScorer
    from playground.store import open_store

    judges = [s.label for s in report.plan.evaluation.scorers if isinstance(s, JudgeScorer)]
    if not judges:
        return []
    ratings = open_store(settings).ratings.rating_summaries([c.result_id for c in report.cells])
    found = []
    for label in judges:
        judge_labels, human_labels = [], []
        for cell in report.cells:
            rating = ratings.get(cell.result_id)
            verdict = next((v for v in cell.verdicts if v["scorer"] == label), None)
            if rating is None or not rating.count or verdict is None:
                continue
            if verdict["status"] == "unmeasured" or rating.mean is None:
                continue
            judge_labels.append(verdict["status"] == "pass")
            human_labels.append(rating.mean >= GOOD_STARS)
        count = len(judge_labels)
        accuracy = kappa = None
        if count:
            accuracy, kappa = judge_agreement(judge_labels, human_labels)
        found.append(
            JudgeCalibration(
                scorer=label,
                count=count,
                accuracy=None if accuracy is None else round(accuracy, 4),
                kappa=None if kappa is None else round(kappa, 4),
                calibrated=count >= MIN_SHARED_LABELS,
            )
        )
    return found


@dataclass
class BatchScore:
    """Every batch cell one configuration (by hash) answered, as one pass rate."""

    config_hash: str
    cells: int
    passed: int
    pass_rate: float | None
    ci_low: float | None
    ci_high: float | None
    batches: int

    def label(self) -> str:
        """'67% (44-84%, n=18)' for the leaderboard."""
        if self.pass_rate is None or self.ci_low is None or self.ci_high is None:
            return "—"
        return f"{self.pass_rate:.0%} ({self.ci_low:.0%}-{self.ci_high:.0%}, n={self.cells})"


def batch_scores(store: Any) -> dict[str, BatchScore]:
    """Per configuration hash: pass rate over every batch cell it answered (95% Wilson CI).

    Unmeasured and errored cells count as not passed, as a gate counts them by default.
    """
    from sqlalchemy import func, select

    from playground.store.schema import batch_cells, results

    query = (
        select(
            results.c.config_hash,
            batch_cells.c.status,
            func.count(),
            func.count(func.distinct(batch_cells.c.batch_id)),
        )
        .select_from(batch_cells.join(results, results.c.id == batch_cells.c.result_id))
        .group_by(results.c.config_hash, batch_cells.c.status)
    )
    with store.batches.db.read() as conn:
        rows = conn.execute(query).all()
    counts: dict[str, dict[str, int]] = {}
    batches: dict[str, int] = {}
    for config_hash, status, n, n_batches in rows:
        counts.setdefault(config_hash, {})[status] = int(n)
        batches[config_hash] = max(batches.get(config_hash, 0), int(n_batches))
    scores = {}
    for config_hash, by_status in counts.items():
        cells = sum(by_status.values())
        passed = by_status.get("pass", 0)
        low, high = wilson_interval(passed, cells)
        scores[config_hash] = BatchScore(
            config_hash,
            cells,
            passed,
            round(passed / cells, 4) if cells else None,
            low,
            high,
            batches[config_hash],
        )
    return scores


def with_batch_scores(
    table: list[dict[str, Any]], scores: dict[str, BatchScore]
) -> list[dict[str, Any]]:
    """The Compare table with batch pass rate and its own rank next to the human ratings.

    `table` rows carry the configuration's `hash`; configurations no batch ran show '—'.
    """
    scored = sorted(
        (s for s in scores.values() if s.pass_rate is not None and s.config_hash in
         {row["hash"] for row in table}),
        key=lambda s: (-(s.ci_low or 0.0), -(s.pass_rate or 0.0), s.config_hash),
    )  # fmt: skip
    # ranked by the interval's lower bound: 18/18 beats 1/1, as stars rank by evidence too
    ranks = {s.config_hash: i + 1 for i, s in enumerate(scored)}
    merged = []
    for row in table:
        score = scores.get(row["hash"])
        extra = {
            "batch rank": f"#{ranks[row['hash']]}" if row["hash"] in ranks else "—",
            "batch pass rate": score.label() if score else "—",
            "batch cells": score.cells if score else 0,
        }
        items = list(row.items())
        at = next((i + 1 for i, (k, _) in enumerate(items) if k == "ratings"), len(items))
        merged.append(dict(items[:at] + list(extra.items()) + items[at:]))
    return merged
