"""Leaderboard math: intervals, medians, win rates, Bradley-Terry, ranking, harm."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from playground import compare
from playground.compare import (
    HARM_NOT_CHECKED,
    ConfigAggregate,
    ConfigAnswer,
    Interval,
    Pair,
    bradley_terry,
    config_runs_table,
    harm_summary,
    interval_of,
    leaderboard,
    median,
    t_critical_95,
    win_records,
)


@pytest.mark.parametrize(
    ("df", "expected"), [(1, 12.706), (4, 2.776), (30, 2.042), (40, 2.021), (120, 1.980)]
)
def test_t_critical_values_match_the_published_table(df, expected):
    assert t_critical_95(df) == pytest.approx(expected, abs=0.001)


def test_interval_of_known_sample():
    interval = interval_of([4, 5, 3, 4, 4])
    # mean 4, sd sqrt(0.5), t(4) = 2.776 -> half width 0.878
    assert interval.mean == pytest.approx(4.0)
    assert interval.low == pytest.approx(4 - 2.776 * math.sqrt(0.5 / 5), abs=1e-3)
    assert interval.label() == "4.00 (3.12-4.88, n=5)"


@pytest.mark.parametrize(
    ("values", "label"),
    [([], "no ratings"), ([5], "5.00 (n=1)"), ([5, 5, 5], "5.00 (5.00-5.00, n=3)")],
)
def test_interval_labels_say_what_is_known(values, label):
    assert interval_of(values).label() == label


@given(st.lists(st.integers(min_value=1, max_value=5), min_size=2, max_size=200))
def test_interval_contains_the_mean_and_stays_within_one_to_five(values):
    interval = interval_of(values)
    assert interval.low is not None and interval.high is not None
    assert 1.0 <= interval.low <= interval.mean + 1e-9 <= interval.high + 2e-9 <= 5.0 + 2e-9
    assert interval.mean == pytest.approx(statistics.fmean(values))


def test_median_ignores_missing_values():
    assert median([3.0, None, 1.0, 2.0]) == 2.0
    assert median([1.0, 4.0]) == 2.5
    assert median([None]) is None


def test_win_records_count_ties_as_half():
    records = win_records(
        [Pair("a", "b"), Pair("a", "c"), Pair("b", "c", "tie_good"), Pair("a", "a")]
    )
    assert (records["a"].wins, records["a"].rate) == (2, 1.0)
    assert records["b"].rate == pytest.approx(0.25)
    assert records["c"].games == 2


def test_bradley_terry_orders_a_clear_ranking_and_centres_on_1000():
    pairs = [Pair("a", "b")] * 6 + [Pair("b", "c")] * 6 + [Pair("a", "c")] * 6 + [Pair("b", "a")]
    scores = bradley_terry(pairs)
    assert scores["a"] > scores["b"] > scores["c"]
    assert statistics.fmean(scores.values()) == pytest.approx(1000.0, abs=1e-6)


def test_bradley_terry_stays_finite_for_an_unbeaten_item():
    scores = bradley_terry([Pair("a", "b")] * 10)
    assert all(math.isfinite(v) for v in scores.values())
    assert scores["a"] > 1000 > scores["b"]


def test_bradley_terry_of_ties_only_is_all_equal():
    scores = bradley_terry([Pair("a", "b", "tie_bad"), Pair("b", "c", "tie_good")])
    assert scores == pytest.approx({"a": 1000.0, "b": 1000.0, "c": 1000.0})


@pytest.mark.parametrize(
    ("moderations", "expected"),
    [
        ([], HARM_NOT_CHECKED),
        ([None, ""], HARM_NOT_CHECKED),
        (['{"flagged": true}', '{"flagged": false}'], "1 of 2 flagged"),
        (["not json"], "0 of 1 flagged"),
    ],
)
def test_harm_is_never_made_up(moderations, expected):
    assert harm_summary(moderations) == expected


def _agg(config_hash: str, stars: list[int]) -> ConfigAggregate:
    return ConfigAggregate(
        config_hash, "local/a", {"temperature": 0.2}, "", f"prompt {config_hash}", None,
        n_results=3, n_runs=3, n_errors=0, stars_n=len(stars), stars_sum=sum(stars),
        stars_sumsq=sum(s * s for s in stars), latency_median=200.0,
    )  # fmt: skip


def test_leaderboard_ranks_by_stars_then_votes_and_reports_every_metric():
    rows = leaderboard(
        [_agg("low", [2, 3]), _agg("high", [5, 4]), _agg("unrated", []), _agg("voted", [])],
        [Pair("voted", "unrated"), Pair("voted", "gone")],  # 'gone' is filtered out
    )
    assert [r.config_hash for r in rows] == ["high", "low", "voted", "unrated"]
    assert [r.rank for r in rows] == [1, 2, 3, 4]
    top = rows[0]
    assert top.quality.mean == 4.5 and top.latency_ms == 200.0 and top.harm == HARM_NOT_CHECKED
    assert rows[2].win_rate == 1.0 and rows[2].votes == 1
    assert rows[3].quality == Interval(None, 0)
    assert rows[0].as_dict()["stars_count"] == 2


def test_counted_pairs_weigh_like_repeated_pairs():
    repeated = [Pair("a", "b")] * 3 + [Pair("b", "a")]
    counted = [Pair("a", "b", n=3), Pair("b", "a")]
    assert bradley_terry(counted) == pytest.approx(bradley_terry(repeated))
    assert win_records(counted)["a"].rate == win_records(repeated)["a"].rate == 0.75


def test_bradley_terry_runs_once_per_set_of_votes_whatever_their_order(monkeypatch):
    calls = []
    monkeypatch.setattr(compare, "bradley_terry", lambda p: calls.append(p) or {"x": 1.0})
    compare._bradley_terry_of.cache_clear()
    aggs = [_agg("x", [3]), _agg("y", [4])]
    pairs = [Pair("x", "y"), Pair("y", "x", "tie_good")]
    first = leaderboard(aggs, pairs)
    again = leaderboard(aggs, list(reversed(pairs)))
    assert len(calls) == 1
    assert [r.bt_score for r in first] == [r.bt_score for r in again]
    leaderboard(aggs, [*pairs, Pair("x", "y")])  # a new vote: scores are computed again
    assert len(calls) == 2
    compare._bradley_terry_of.cache_clear()


def test_a_configurations_answers_read_in_words_and_failed_calls_show_no_cost():
    at = datetime(2026, 12, 2, 7, 51, 30, tzinfo=UTC)
    answers = [
        ConfigAnswer("r1", at, "short", "Yes.", None, 4.5, 812.0, 0.0004),
        ConfigAnswer("r2", at, "", "", "Cannot reach the server.", None, None, 0.0),
        # an answer that merely starts like an error message is still an answer with a cost
        ConfigAnswer("r3", at, "short", "Error: none found.", None, None, 90.0, 0.0002),
        ConfigAnswer("r4", at, "short", "", None, None, 90.0, None),
    ]
    rows = config_runs_table(answers)
    assert rows[0] == {
        "when": "2 Dec 2026, 07:51 UTC",
        "variant": "short",
        "stars": "★ 4.5",
        "answer": "Yes.",
        "latency": "812 ms",
        "cost": "$0.000400",
        "run": "r1",
    }
    assert (rows[1]["answer"], rows[1]["cost"], rows[1]["variant"], rows[1]["stars"]) == (
        "Error: Cannot reach the server.",
        "—",
        "—",
        "not rated",
    )
    assert (rows[2]["answer"], rows[2]["cost"]) == ("Error: none found.", "$0.000200")
    assert (rows[3]["answer"], rows[3]["cost"]) == ("(empty answer)", "—")
