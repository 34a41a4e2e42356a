"""Ratings and votes in the run store: new rows, latest per session, concurrency, pairs."""

from __future__ import annotations

import random
import threading
from dataclasses import asdict
from datetime import timedelta

import pytest

from playground.compare import ConfigFilters
from playground.errors import NotFoundError
from playground.records import Moderation
from playground.store import Store
from playground.store.leaderboard import Leaderboard
from playground.store.ratings import RatingError
from tests.history_fixtures import T0, make_run


@pytest.fixture
def store(backend_store: Store) -> Store:
    """A fresh store on SQLite, then on PostgreSQL (see backend_url in conftest.py)."""
    return backend_store


@pytest.fixture
def run(store: Store):
    """One stored run with three answers."""
    saved = make_run(models=("local/a", "openai/b", "myserver/c"))
    store.runs.save_run(saved)
    return saved


def test_each_rating_is_a_new_row_and_the_latest_per_session_counts(store, run):
    answer = run.results[0].id
    store.ratings.add_rating(answer, 2, session_id="alice")
    store.ratings.add_rating(answer, 5, "changed my mind", session_id="alice")
    store.ratings.add_rating(answer, 3, session_id="bob")
    summary = store.ratings.rating_summaries([answer])[answer]
    assert (summary.count, summary.mean) == (2, 4.0)
    assert summary.comments == ["changed my mind"]
    assert [r["stars"] for r in store.exports.export_ratings()] == [2, 5, 3]
    assert [r["current"] for r in store.exports.export_ratings()] == [False, True, True]


def test_a_comment_without_stars_keeps_the_earlier_stars(store, run):
    answer = run.results[0].id
    store.ratings.add_rating(answer, 4, session_id="alice")
    store.ratings.add_rating(answer, None, "too long", session_id="alice")
    summary = store.ratings.rating_summaries([answer])[answer]
    assert (summary.count, summary.mean, summary.comments) == (1, 4.0, ["too long"])
    assert store.ratings.session_rating(answer, "alice") == (None, "too long")


def test_a_sessions_latest_ratings_of_many_answers_come_back_at_once(store, run):
    first, second, third = (r.id for r in run.results)
    store.ratings.add_rating(first, 2, "meh", session_id="alice")
    store.ratings.add_rating(first, 5, None, session_id="alice")
    store.ratings.add_rating(second, 1, "wrong", session_id="bob")
    store.ratings.add_rating(third, None, "too long", session_id="alice")
    assert store.ratings.session_ratings([first, second, third], "alice") == {
        first: (5, None),
        third: (None, "too long"),
    }
    assert store.ratings.session_ratings([], "alice") == {}


@pytest.mark.parametrize(
    ("stars", "comment", "expected_error"),
    [
        (0, None, "Stars must be a whole number from 1 to 5, not 0."),
        (6, None, "Stars must be a whole number from 1 to 5, not 6."),
        (True, None, "Stars must be a whole number from 1 to 5, not True."),
        (None, "  ", "Give 1 to 5 stars or a comment."),
        (1, None, None),
        (5, "ok", None),
    ],
)
def test_stars_are_validated(store, run, stars, comment, expected_error):
    if expected_error is None:
        assert store.ratings.add_rating(run.results[0].id, stars, comment, "s") > 0
        return
    with pytest.raises(RatingError) as info:
        store.ratings.add_rating(run.results[0].id, stars, comment, "s")
    assert str(info.value) == expected_error


def test_rating_an_unknown_answer_names_it(store):
    with pytest.raises(NotFoundError, match=r"No answer with id nope to rate\."):
        store.ratings.add_rating("nope", 3)


def test_two_sessions_rating_at_once_are_both_stored(backend_url, run, store):
    # Two Store objects = two app processes sharing one database.
    second = Store(backend_url)
    answer = run.results[0].id
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def rate(target: Store, session: str, stars: int) -> None:
        try:
            barrier.wait()
            for _ in range(20):
                target.ratings.add_rating(answer, stars, session_id=session)
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [
        threading.Thread(target=rate, args=(store, "alice", 5)),
        threading.Thread(target=rate, args=(second, "bob", 1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    second.close()
    assert errors == []
    assert len(store.exports.export_ratings()) == 40
    summary = store.ratings.rating_summaries([answer])[answer]
    assert (summary.count, summary.mean) == (2, 3.0)


def test_best_answer_vote_becomes_one_win_over_each_other_answer(store, run):
    a, b, c = (r.id for r in run.results)
    assert store.ratings.add_preference(run.id, [a, b, c], "best", best=b, session_id="s") == 2
    rows = store.exports.export_preferences()
    assert {(r["winner_result_id"], r["loser_result_id"], r["outcome"]) for r in rows} == {
        (b, a, "win"),
        (b, c, "win"),
    }
    assert store.ratings.session_vote([a, b, c], "s") == ("best", b)


@pytest.mark.parametrize(("kind", "outcome"), [("all_good", "tie_good"), ("all_bad", "tie_bad")])
def test_all_equal_votes_are_ties_between_every_pair(store, run, kind, outcome):
    ids = [r.id for r in run.results]
    assert store.ratings.add_preference(run.id, ids, kind, session_id="s") == 3
    assert {r["outcome"] for r in store.exports.export_preferences()} == {outcome}
    assert store.ratings.session_vote(ids, "s") == (kind, None)


def test_a_new_vote_replaces_the_same_sessions_earlier_vote_only(store, run):
    a, b, _ = (r.id for r in run.results)
    store.ratings.add_preference(run.id, [a, b], "best", best=a, session_id="alice")
    store.ratings.add_preference(run.id, [a, b], "best", best=b, session_id="alice")
    store.ratings.add_preference(run.id, [a, b], "best", best=a, session_id="bob")
    pairs = store.leaderboard.preference_pairs()
    hash_a, hash_b = run.results[0].config_hash, run.results[1].config_hash
    assert sorted((p.a, p.b) for p in pairs) == sorted([(hash_b, hash_a), (hash_a, hash_b)])
    assert len(store.exports.export_preferences()) == 3


@pytest.mark.parametrize(
    ("ids", "kind", "best", "expected_error"),
    [
        (1, "best", 0, "A best-answer vote needs at least two answers side by side."),
        (2, "best", None, "The best answer must be one of the answers shown."),
        (2, "worst", None, "Unknown vote 'worst'; use best, all_good or all_bad."),
    ],
)
def test_bad_votes_are_refused(store, run, ids, kind, best, expected_error):
    shown = [r.id for r in run.results[:ids]]
    with pytest.raises(RatingError) as info:
        store.ratings.add_preference(
            run.id, shown, kind, best=shown[best] if best is not None else None
        )
    assert str(info.value) == expected_error


def test_config_aggregates_count_runs_stars_cost_and_median_latency(store):
    for latency, stars in ((100.0, 5), (300.0, 4), (200.0, 3)):
        run = make_run(models=("local/a",))
        run.results[0].latency_ms = latency
        run.results[0].cost_usd = 0.002
        store.runs.save_run(run)
        store.ratings.add_rating(run.results[0].id, stars, session_id="s")
    (agg,) = store.leaderboard.config_aggregates()
    assert (agg.model_id, agg.n_runs, agg.stars_n, agg.stars_sum) == ("local/a", 3, 3, 12.0)
    assert agg.cost_mean == pytest.approx(0.002)
    assert agg.latency_median == 200.0 and agg.ttft_median == 120.0
    assert agg.moderations == []


def test_median_of_an_even_count_is_the_mean_of_the_two_middle_answers(store):
    # The earlier SQL median divided (n + 1) / 2 as a real number and took the upper middle.
    for latency in (100.0, 400.0, 200.0, 300.0, None):
        run = make_run(models=("local/a",))
        run.results[0].latency_ms = latency
        store.runs.save_run(run)
    failed = make_run(models=("local/a",), errors={"local/a": "The endpoint answered 500."})
    store.runs.save_run(failed)
    (agg,) = store.leaderboard.config_aggregates()
    assert (agg.n_results, agg.n_errors, agg.latency_median) == (6, 1, 250.0)


def test_aggregates_and_pairs_follow_new_ratings_votes_and_answers(store, run):
    a, b, _ = run.results
    assert {agg.stars_n for agg in store.leaderboard.config_aggregates()} == {0}
    store.ratings.add_rating(a.id, 5, session_id="s")
    assert sum(agg.stars_n for agg in store.leaderboard.config_aggregates()) == 1
    assert store.leaderboard.preference_pairs() == []
    store.ratings.add_preference(run.id, [a.id, b.id], "best", best=a.id, session_id="s")
    assert [p.n for p in store.leaderboard.preference_pairs()] == [1]
    store.runs.save_run(make_run(models=("local/new",)))
    assert "local/new" in {agg.model_id for agg in store.leaderboard.config_aggregates()}


def test_history_indexes_exist_after_migration(store):
    from sqlalchemy import inspect

    names = {ix["name"] for ix in inspect(store.db.engine).get_indexes("results")}
    assert {"ix_results_config_metrics", "ix_results_id_config", "ix_results_moderation"} <= names
    assert "ix_ratings_current" in {
        ix["name"] for ix in inspect(store.db.engine).get_indexes("ratings")
    }


def _rounded(value: object) -> object:
    """Floats rounded so that sums taken in another order still compare equal."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@pytest.mark.parametrize(
    "filters",
    [
        ConfigFilters(),
        ConfigFilters(model_id="local/a"),
        ConfigFilters(template_text="tent"),
        ConfigFilters(date_from=T0.date() + timedelta(days=1)),
    ],
    ids=["all", "model", "template", "date"],
)
def test_incremental_leaderboard_matches_a_fresh_recount(store, filters):
    rng = random.Random(5)
    models = ("local/a", "openai/b", "myserver/c")
    prompts = ("Is the trail tent waterproof?", "How heavy is the summit stove?")
    saved: list = []
    for step in range(40):
        action = rng.choice(["run", "run", "rate", "vote"]) if saved else "run"
        if action == "run":
            run = make_run(
                models=tuple(rng.sample(models, 2)),
                prompt=rng.choice(prompts),
                temperature=rng.choice([0.2, 0.7]),
                created_at=T0 + timedelta(days=rng.randint(0, 3)),
            )
            for result in run.results:
                result.latency_ms = rng.uniform(100, 900)
                result.cost_usd = rng.uniform(0, 0.01)
            if rng.random() < 0.2:
                run.results[0].moderation = Moderation(flagged=True)
            store.runs.save_run(run)
            saved.append(run)
        elif action == "rate":
            answer = rng.choice(rng.choice(saved).results)
            store.ratings.add_rating(answer.id, rng.randint(1, 5), session_id=rng.choice("xy"))
        else:
            run = rng.choice(saved)
            a, b = run.results
            kind = rng.choice(["best", "all_good", "all_bad"])
            store.ratings.add_preference(run.id, [a.id, b.id], kind, best=a.id, session_id="x")
        # the same database with empty caches
        fresh = Leaderboard(store.db, store.runs, store.ratings, store.history)
        expected = [_rounded(asdict(agg)) for agg in fresh.config_aggregates(filters)]
        assert [
            _rounded(asdict(agg)) for agg in store.leaderboard.config_aggregates(filters)
        ] == expected
        assert store.leaderboard.preference_pairs() == fresh.preference_pairs(), f"step {step}"
