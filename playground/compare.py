"""Leaderboard math: star means with intervals, pairwise win rates, Bradley-Terry scores.

Pure functions over plain records; the store gathers the numbers and the Compare page shows
them. Nothing here touches SQL or Streamlit, so every figure on the page is unit-tested here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Literal

from playground.formatting import NONE_SHOWN, duration, usd, when

Outcome = Literal["win", "tie_good", "tie_bad"]

HARM_NOT_CHECKED = "not checked"
INTERVAL_METHOD = "95% Student-t interval of the mean star rating"

# Two-sided 95% critical values of Student's t for 1-30 degrees of freedom (no scipy needed);
# beyond 30 the Cornish-Fisher expansion below agrees with the exact value to 0.001.
_T95 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
    9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
    17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
    25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042,
}  # fmt: skip
_Z95 = 1.959964


def t_critical_95(df: int) -> float:
    """Two-sided 95% critical value of Student's t with df degrees of freedom."""
    if df < 1:
        raise ValueError("degrees of freedom must be at least 1")
    if df in _T95:
        return _T95[df]
    z = _Z95
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% interval; low/high are None when n < 2 (no spread to measure)."""

    mean: float | None
    n: int
    low: float | None = None
    high: float | None = None

    def label(self, digits: int = 2) -> str:
        """'4.20 (3.70-4.70, n=5)', '5.00 (n=1)' or 'no ratings'."""
        if self.mean is None:
            return "no ratings"
        if self.low is None or self.high is None:
            return f"{self.mean:.{digits}f} (n={self.n})"
        return f"{self.mean:.{digits}f} ({self.low:.{digits}f}-{self.high:.{digits}f}, n={self.n})"


def mean_interval(
    n: int, total: float, total_sq: float, bounds: tuple[float, float] | None = (1.0, 5.0)
) -> Interval:
    """Mean and Student-t 95% interval from count, sum and sum of squares, clipped to bounds."""
    if n <= 0:
        return Interval(None, 0)
    mean = total / n
    if n < 2:
        return Interval(mean, n)
    # Sample variance from sums; max() guards against tiny negative rounding errors.
    variance = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    half = t_critical_95(n - 1) * math.sqrt(variance / n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(bounds[0], low), min(bounds[1], high)
    return Interval(mean, n, low, high)


def interval_of(
    values: Sequence[float], bounds: tuple[float, float] | None = (1.0, 5.0)
) -> Interval:
    """mean_interval() of a list of values."""
    return mean_interval(len(values), float(sum(values)), float(sum(v * v for v in values)), bounds)


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not None; None when there are none."""
    data = sorted(v for v in values if v is not None)
    if not data:
        return None
    mid = len(data) // 2
    return data[mid] if len(data) % 2 else (data[mid - 1] + data[mid]) / 2


@dataclass(frozen=True)
class Pair:
    """`n` pairwise comparisons: 'win' means a beat b; the tie outcomes are symmetric."""

    a: str
    b: str
    outcome: Outcome = "win"
    n: int = 1


@dataclass
class WinRecord:
    """Wins, losses and ties of one item over its pairwise comparisons."""

    wins: int = 0
    losses: int = 0
    ties: int = 0

    @property
    def games(self) -> int:
        """Number of comparisons."""
        return self.wins + self.losses + self.ties

    @property
    def rate(self) -> float | None:
        """Win rate counting a tie as half a win; None without comparisons."""
        return (self.wins + 0.5 * self.ties) / self.games if self.games else None


def win_records(pairs: Iterable[Pair]) -> dict[str, WinRecord]:
    """Wins, losses and ties per item; a pair of an item with itself is ignored."""
    records: dict[str, WinRecord] = {}
    for pair in pairs:
        if pair.a == pair.b:
            continue
        a = records.setdefault(pair.a, WinRecord())
        b = records.setdefault(pair.b, WinRecord())
        if pair.outcome == "win":
            a.wins += pair.n
            b.losses += pair.n
        else:
            a.ties += pair.n
            b.ties += pair.n
    return records


BT_BASE = 1000.0
BT_SCALE = 400.0  # Elo convention: 400 points = 10:1 odds


def bradley_terry(
    pairs: Iterable[Pair], prior_games: float = 1.0, max_iter: int = 500, tol: float = 1e-7
) -> dict[str, float]:
    """Bradley-Terry strengths by Hunter's MM algorithm, reported on an Elo-like scale.

    A tie counts as half a win for each side. Every item also plays `prior_games` virtual
    games (half won, half lost) against a fixed average opponent, so that an item that never
    lost gets a large finite score instead of infinity. Scores are 1000 + 400*log10(strength),
    strengths normalised to a geometric mean of 1: 1000 is average.
    """
    wins: dict[str, float] = {}
    games: dict[tuple[str, str], float] = {}
    for pair in pairs:
        if pair.a == pair.b:
            continue
        wins.setdefault(pair.a, 0.0)
        wins.setdefault(pair.b, 0.0)
        key = (pair.a, pair.b) if pair.a < pair.b else (pair.b, pair.a)
        games[key] = games.get(key, 0.0) + pair.n
        if pair.outcome == "win":
            wins[pair.a] += pair.n
        else:
            wins[pair.a] += 0.5 * pair.n
            wins[pair.b] += 0.5 * pair.n
    if not wins:
        return {}
    # The same Jacobi-style MM updates, on arrays: one step is a few vectorised operations
    # on an items x items matrix of games instead of a Python loop per item and opponent.
    import numpy as np  # lazily: the CLI imports this module without needing numpy

    items = list(wins)
    index = {item: i for i, item in enumerate(items)}
    played = np.zeros((len(items), len(items)))
    for (a, b), n in games.items():
        played[index[a], index[b]] = played[index[b], index[a]] = n
    numerator = np.array([wins[item] for item in items]) + 0.5 * prior_games
    strength = np.ones(len(items))
    for _ in range(max_iter):
        p = strength
        denom = (played / (p[:, None] + p[None, :])).sum(axis=1)
        denom += prior_games / (p + 1.0)  # the virtual average opponent has strength 1
        updated = numerator / denom
        updated /= math.exp(float(np.log(updated).mean()))
        change = float(np.abs(np.log(updated / strength)).max())
        strength = updated
        if change < tol:
            break
    return {
        item: BT_BASE + BT_SCALE * math.log10(float(v))
        for item, v in zip(items, strength, strict=True)
    }


@lru_cache(maxsize=16)
def _bradley_terry_of(pairs: tuple[Pair, ...]) -> dict[str, float]:
    """bradley_terry() remembered per set of pairs: only a new vote changes the scores."""
    return bradley_terry(pairs)


def harm_summary(moderations: Sequence[str | None]) -> str:
    """'not checked' unless moderation results exist; then how many were flagged.

    A moderation result is the JSON the moderation endpoint returned (with a boolean
    'flagged'); we never invent a harm score for outputs nobody checked.
    """
    checked = [m for m in moderations if m]
    if not checked:
        return HARM_NOT_CHECKED
    flagged = 0
    for raw in checked:
        try:
            data: Any = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("flagged") is True:
            flagged += 1
    return f"{flagged} of {len(checked)} flagged"


@dataclass
class ConfigFilters:
    """What the Compare page narrows configurations by; empty fields do not filter."""

    template_text: str = ""
    model_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None  # inclusive


@dataclass
class ConfigIdentity:
    """What a configuration is and how often it ran: shared by aggregates and ranked rows."""

    config_hash: str
    model_id: str
    params: dict[str, Any]
    system_template: str
    user_template: str
    store_name: str | None
    n_results: int
    n_runs: int
    n_errors: int
    variant_name: str = field(default="", kw_only=True)  # the name its first answer ran under

    def identity(self) -> dict[str, Any]:
        """Just the identity fields, to build another record about the same configuration."""
        return {f.name: getattr(self, f.name) for f in fields(ConfigIdentity)}


@dataclass
class ConfigAggregate(ConfigIdentity):
    """Raw per-configuration numbers the store gathers for the leaderboard."""

    stars_n: int = 0
    stars_sum: float = 0.0
    stars_sumsq: float = 0.0
    groundedness_mean: float | None = None
    cost_mean: float | None = None
    ttft_median: float | None = None
    latency_median: float | None = None
    moderations: list[str] = field(default_factory=list)


@dataclass
class LeaderboardRow(ConfigIdentity):
    """One ranked configuration with the five lifecycle metrics."""

    rank: int
    quality: Interval
    win_rate: float | None
    votes: int
    bt_score: float | None
    honesty: float | None
    cost_usd: float | None
    ttft_ms: float | None
    latency_ms: float | None
    harm: str

    def as_dict(self) -> dict[str, Any]:
        """A flat dict for tables, CSV and JSON export."""
        return {
            "rank": self.rank,
            "config_hash": self.config_hash,
            "model": self.model_id,
            "variant": self.variant_name,
            "params": json.dumps(self.params, sort_keys=True),
            "system_template": self.system_template,
            "user_template": self.user_template,
            "store": self.store_name,
            "runs": self.n_runs,
            "answers": self.n_results,
            "errors": self.n_errors,
            "stars_mean": self.quality.mean,
            "stars_count": self.quality.n,
            "stars_ci_low": self.quality.low,
            "stars_ci_high": self.quality.high,
            "win_rate": self.win_rate,
            "votes": self.votes,
            "bt_score": self.bt_score,
            "groundedness_mean": self.honesty,
            "cost_usd_mean": self.cost_usd,
            "ttft_ms_median": self.ttft_ms,
            "latency_ms_median": self.latency_ms,
            "harm": self.harm,
        }


def _rank_key(row: LeaderboardRow) -> tuple[float, float, float, float]:
    # Rated configurations first, by mean stars; then the vote-based score; then win rate;
    # then how much evidence there is. Unrated and unvoted rows keep a stable, honest order.
    mean = row.quality.mean
    return (
        -(mean if mean is not None else -1.0),
        -(row.bt_score if row.bt_score is not None else -1e9),
        -(row.win_rate if row.win_rate is not None else -1.0),
        -float(row.quality.n + row.votes),
    )


def leaderboard(
    aggregates: Sequence[ConfigAggregate], pairs: Sequence[Pair]
) -> list[LeaderboardRow]:
    """Rank configurations: mean stars first, then Bradley-Terry score, then win rate."""
    known = {agg.config_hash for agg in aggregates}
    relevant = [p for p in pairs if p.a in known and p.b in known and p.a != p.b]
    records = win_records(relevant)
    ordered = tuple(sorted(relevant, key=lambda p: (p.a, p.b, p.outcome, p.n)))
    scores = dict(_bradley_terry_of(ordered))  # a copy: the cached dict stays untouched
    rows = []
    for agg in aggregates:
        record = records.get(agg.config_hash, WinRecord())
        rows.append(
            LeaderboardRow(
                **agg.identity(),
                rank=0,
                quality=mean_interval(agg.stars_n, agg.stars_sum, agg.stars_sumsq),
                win_rate=record.rate,
                votes=record.games,
                bt_score=scores.get(agg.config_hash),
                honesty=agg.groundedness_mean,
                # Failed calls cost nothing: a configuration that only failed has no cost to
                # show (not "$0"), just as it has no latency.
                cost_usd=agg.cost_mean if agg.n_errors < agg.n_results else None,
                ttft_ms=agg.ttft_median,
                latency_ms=agg.latency_median,
                harm=harm_summary(agg.moderations),
            )
        )
    rows.sort(key=lambda r: (*_rank_key(r), r.config_hash))
    for index, row in enumerate(rows, start=1):
        row.rank = index
    return rows


def _excerpt(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _param_text(name: str, value: Any) -> str:
    short = {"temperature": "t", "max_tokens": "max"}.get(name, name)
    return f"{short}={value}"


def config_label(
    row: LeaderboardRow, width: int = 40, vary: Sequence[str] = ("temperature",)
) -> str:
    """A short human label: rank, model, parameters, variant, system and user prompt starts.

    `vary` names the parameters to show (the ones that differ between the rows on screen).
    """
    parts = [f"#{row.rank} {row.model_id}"]
    params = [_param_text(k, row.params[k]) for k in vary if row.params.get(k) not in (None, [])]
    if params:
        parts[0] += " " + " ".join(params)
    if row.variant_name:
        parts.append(row.variant_name)
    if row.system_template.strip():
        parts.append("system: " + _excerpt(row.system_template, width // 2))
    parts.append(
        _excerpt(row.user_template, width) if row.user_template.strip() else "(empty prompt)"
    )
    if row.store_name:
        parts.append(f"knowledge {row.store_name}")
    return " · ".join(parts)


def varying_params(rows: Sequence[ConfigIdentity]) -> list[str]:
    """Temperature, then every other parameter whose value differs between the rows."""
    names: list[str] = ["temperature"]
    for row in rows:
        names.extend(k for k in row.params if k not in names)
    return [
        name
        for name in names
        if name == "temperature"
        or len({json.dumps(r.params.get(name), sort_keys=True) for r in rows}) > 1
    ]


def config_labels(rows: Sequence[LeaderboardRow], width: int = 40) -> dict[str, str]:
    """One label per configuration hash; labels that would still read the same get the hash."""
    vary = varying_params(rows)
    labels = {row.config_hash: config_label(row, width, vary) for row in rows}
    unranked = [label.split(" ", 1)[1] for label in labels.values()]
    for row in rows:
        if unranked.count(labels[row.config_hash].split(" ", 1)[1]) > 1:
            labels[row.config_hash] += f" · {row.config_hash[:6]}"
    return labels


def _percent(value: float | None) -> str:
    return NONE_SHOWN if value is None else f"{value:.0%}"


def leaderboard_table(rows: Sequence[LeaderboardRow]) -> list[dict[str, Any]]:
    """Rows of the Compare page's ranked table, as people read them ('—' for no value)."""
    labels = config_labels(rows)
    return [
        {
            "rank": row.rank,
            "configuration": labels[row.config_hash],
            "quality": row.quality.label(),
            "ratings": row.quality.n,
            "win rate": _percent(row.win_rate),
            "votes": row.votes,
            "BT score": NONE_SHOWN if row.bt_score is None else f"{row.bt_score:.0f}",
            "honesty": _percent(row.honesty),
            "cost / call": NONE_SHOWN if row.cost_usd is None else usd(row.cost_usd),
            "TTFT": duration(row.ttft_ms),
            "latency": duration(row.latency_ms),
            "harm": row.harm,
            "runs": row.n_runs,
            "errors": row.n_errors,
            "hash": row.config_hash,
        }
        for row in rows
    ]


@dataclass(frozen=True)
class ConfigAnswer:
    """One stored answer of a configuration, as the Compare page lists them."""

    run_id: str
    created_at: datetime
    variant_name: str
    text: str
    error: str | None
    stars: float | None  # mean of the current star ratings; None while unrated
    latency_ms: float | None
    cost_usd: float | None


def config_runs_table(answers: Sequence[ConfigAnswer]) -> list[dict[str, Any]]:
    """A configuration's stored answers for people: stars, latency and cost in words."""
    shown = []
    for answer in answers:
        failed = bool(answer.error)
        text = f"Error: {answer.error}" if failed else answer.text
        shown.append(
            {
                "when": when(answer.created_at),
                "variant": answer.variant_name or NONE_SHOWN,
                "stars": "not rated" if answer.stars is None else f"★ {answer.stars:.1f}",
                "answer": text or "(empty answer)",
                "latency": duration(answer.latency_ms),
                # a failed call's cost is not the configuration's price
                "cost": NONE_SHOWN if answer.cost_usd is None or failed else usd(answer.cost_usd),
                "run": answer.run_id,
            }
        )
    return shown
