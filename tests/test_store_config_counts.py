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
