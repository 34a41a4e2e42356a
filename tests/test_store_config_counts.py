"""Compare's per-configuration numbers kept by triggers equal a recount of the answers."""

from __future__ import annotations

from datetime import timedelta

from playground.compare import ConfigFilters
from playground.store import Store
from tests.history_fixtures import T0, make_result, make_run


def test_kept_sums_and_index_medians_equal_a_recount(backend_store: Store):
    store = backend_store
    saved = []
    for i in range(7):
        run = make_run(models=("local/a", "openai/b"), created_at=T0 + timedelta(minutes=i))
        run.results[1] = make_result(
            "openai/b",
            latency_ms=100.0 + 37 * i,
            ttft_ms=None if i == 3 else 10.0 * i,
            cost_usd=0.001 * i,
            groundedness=None if i % 2 else 0.25 * (i % 4),
            error="EndpointError: 500" if i == 5 else None,
            created_at=run.created_at,
        )
        store.runs.save_run(run)
        saved.append(run)
    store.runs.delete_run(saved[2].id)  # a deleted answer leaves the sums too

    kept = {a.config_hash: a for a in store.leaderboard.config_aggregates()}
    recounted = store.leaderboard._config_measurements(ConfigFilters())

    assert sorted(kept) == sorted(recounted)
    for config_hash, expected in recounted.items():
        got = kept[config_hash]
        assert (got.n_results, got.n_errors) == (expected.n_results, expected.n_errors)
        assert (got.ttft_median, got.latency_median) == (
            expected.ttft_median,
            expected.latency_median,
        )
        for name in ("cost_mean", "groundedness_mean"):
            want, have = getattr(expected, name), getattr(got, name)
            assert (want is None) == (have is None) and abs((want or 0) - (have or 0)) < 1e-12
        assert (got.model_id, got.user_template) == (expected.model_id, expected.user_template)
    assert store.history.model_ids() == ["local/a", "openai/b"]


def test_kept_stars_and_vote_pairs_equal_a_recount_after_replacing_and_deleting(
    backend_store: Store,
):
    store = backend_store
    runs = []
    for i in range(4):
        run = make_run(
            models=("local/a", "openai/b", "openai/c"), created_at=T0 + timedelta(minutes=i)
        )
        store.runs.save_run(run)
        runs.append(run)
    a, b, c = (r.id for r in runs[0].results)
    store.ratings.add_rating(a, 2, session_id="s1")
    store.ratings.add_rating(a, 5, session_id="s1")  # replaces the 2
    store.ratings.add_rating(a, 3, session_id="s2")
    store.ratings.add_rating(a, None, "a comment only", session_id="s2")  # keeps the 3
    store.ratings.add_rating(b, 4)  # no session
    store.ratings.add_rating(b, 1)  # replaces the 4
    store.ratings.add_rating(runs[1].results[2].id, 4, session_id="s1")
    store.ratings.add_rating(runs[2].results[0].id, 1, session_id="s3")
    store.ratings.add_preference(runs[0].id, [a, b, c], "best", a, "s1")
    store.ratings.add_preference(runs[0].id, [a, b, c], "best", c, "s1")  # replaces it
    store.ratings.add_preference(runs[0].id, [a, b], "all_good", None, "s2")
    second = [r.id for r in runs[1].results]
    store.ratings.add_preference(runs[1].id, second, "all_bad", None, None)
    store.ratings.add_preference(runs[2].id, [r.id for r in runs[2].results], "best",
                                 runs[2].results[1].id, "s1")  # fmt: skip
    board = store.leaderboard

    def kept() -> tuple[dict[str, tuple[int, float, float]], list[object]]:
        stars = {
            agg.config_hash: (agg.stars_n, agg.stars_sum, agg.stars_sumsq)
            for agg in board.config_aggregates()
            if agg.stars_n
        }
        return stars, board.preference_pairs()

    def recounted() -> tuple[dict[str, tuple[int, float, float]], list[object]]:
        pairs = sorted(board._preference_pairs(), key=lambda p: (p.a, p.b, p.outcome))
        return board._config_stars(ConfigFilters()), pairs

    assert kept() == recounted()
    assert kept()[0] != {} and kept()[1] != []

    store.runs.delete_run(runs[0].id)

    assert kept() == recounted()


def test_counts_stay_exact_when_cells_are_saved_one_by_one(backend_store: Store):
    # The app saves each cell as it finishes: every cell after a run's first finds its run
    # stored already (its insert stores nothing); the counters History and Compare read must
    # still equal a recount.
    store = backend_store
    runs = []
    for i in range(3):
        run = make_run(
            models=("local/a", "openai/b", "openai/c"), created_at=T0 + timedelta(minutes=i)
        )
        for position, result in enumerate(run.results):
            store.runs.save_result(run, result, position)
        runs.append(run)
    store.runs.delete_run(runs[1].id)

    version = store.history.data_version()
    assert store.runs.count_runs() == 2
    assert version.answers == 6
    kept = {a.config_hash: a.n_results for a in store.leaderboard.config_aggregates()}
    recounted = store.leaderboard._config_measurements(ConfigFilters())
    assert kept == {h: m.n_results for h, m in recounted.items()}
    assert sorted(kept.values()) == [2, 2, 2]
