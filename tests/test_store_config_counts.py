"""Compare's per-configuration numbers kept by triggers equal a recount of the answers."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from playground.compare import ConfigFilters
from playground.store import Store
from playground.store.leaderboard import Leaderboard
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


def _kept_answer_stars(store: Store) -> dict[str, tuple[int, float]]:
    from sqlalchemy import select

    from playground.store.schema import answer_stars

    with store.db.read() as conn:
        rows = conn.execute(select(answer_stars.c.result_id, answer_stars.c.n, answer_stars.c.mean))
        return {r.result_id: (int(r.n), float(r.mean)) for r in rows}


def _recounted_answer_stars(store: Store, ids: list[str]) -> dict[str, tuple[int, float]]:
    summaries = store.ratings.rating_summaries(ids).items()
    return {i: (s.count, float(s.mean)) for i, s in summaries if s.mean is not None}


def _best_by_recount(store: Store, answers: list[object]) -> str | None:
    """The best answer as Compare defines it, from every answer's recounted current stars."""
    summaries = store.ratings.rating_summaries([a.id for a in answers])

    def rank(a: object) -> tuple[object, ...]:
        mean = summaries[a.id].mean if a.id in summaries else None
        return (a.error is None, mean is not None, mean or 0, a.created_at, a.id)

    return max(answers, key=rank).id if answers else None


def test_kept_answer_stars_and_the_best_answer_equal_a_recount(backend_store: Store):
    store = backend_store
    runs = []
    for i in range(6):
        run = make_run(
            models=("local/a", "openai/b"),
            created_at=T0 + timedelta(minutes=i),
            errors={"local/a": "EndpointError: 500"} if i in (1, 5) else None,
        )
        store.runs.save_run(run)
        runs.append(run)
    config = runs[0].results[0].config_hash
    answers = [run.results[0] for run in runs]  # local/a: one configuration, errors included
    board = store.leaderboard

    def check() -> None:
        ids = [r.id for run in runs for r in run.results]
        assert _kept_answer_stars(store) == _recounted_answer_stars(store, ids)
        best = board.best_answer(config)
        assert (best[1].id if best else None) == _best_by_recount(store, answers)

    check()  # nothing rated: the newest answer without an error, not the newest (failed) one
    assert board.best_answer(config)[1].id == answers[4].id
    store.ratings.add_rating(answers[0].id, 4, session_id="s1")
    store.ratings.add_rating(answers[2].id, 5, session_id="s1")
    store.ratings.add_rating(answers[2].id, 3, session_id="s2")  # mean 4, a tie with answers[0]
    store.ratings.add_rating(answers[3].id, 5, session_id="s1")
    store.ratings.add_rating(answers[3].id, 2, session_id="s1")  # replaces the 5
    store.ratings.add_rating(answers[4].id, None, "comment only", session_id="s1")
    store.ratings.add_rating(answers[5].id, 5, session_id="s1")  # failed: ranks after the rest
    check()
    assert board.best_answer(config)[1].id == answers[2].id  # the newer of the two at 4.0
    store.runs.delete_run(runs[2].id)
    runs.pop(2), answers.pop(2)
    check()
    assert board.best_answer(config)[1].id == answers[0].id
    for run in runs:  # only the failed answers left: the rated failed one, then the newest
        if run.results[0].error is None:
            store.runs.delete_run(run.id)
    runs[:] = [run for run in runs if run.results[0].error is not None]
    answers[:] = [run.results[0] for run in runs]
    check()
    assert board.best_answer(config)[1].id == answers[-1].id  # runs[5]'s, rated 5
    store.ratings.add_rating(answers[0].id, 5, session_id="s2")
    check()
    assert board.best_answer(config)[1].id == answers[-1].id  # a tie at 5.0: the newer
    assert board.best_answer("no-such-hash") is None


def test_migrating_a_store_with_ratings_fills_the_kept_answer_stars(backend_url: str):
    from sqlalchemy import delete

    from playground.store.migrations import migrations_table

    store = Store(backend_url)
    run = make_run(models=("local/a", "openai/b", "openai/c"))
    store.runs.save_run(run)
    a, b, c = (r.id for r in run.results)
    store.ratings.add_rating(a, 2, session_id="s1")
    store.ratings.add_rating(a, 5, session_id="s1")
    store.ratings.add_rating(a, 4, session_id="s2")
    store.ratings.add_rating(b, 3)
    store.ratings.add_rating(c, None, "comment only")
    expected = _recounted_answer_stars(store, [a, b, c])
    with store.db.write() as conn:  # the database as it was before m011
        conn.exec_driver_sql("DROP TABLE answer_stars")
        conn.execute(delete(migrations_table).where(migrations_table.c.name == "m011_answer_stars"))
    store.close()

    migrated = Store(backend_url)
    try:
        assert _kept_answer_stars(migrated) == expected == {a: (2, 4.5), b: (1, 3.0)}
    finally:
        migrated.close()


class _Recounting(Leaderboard):
    """The leaderboard without its kept tables: every number recounted from the answers."""

    def _kept_aggregates(self, filters: ConfigFilters) -> bool:
        return False


def test_a_template_filter_on_the_kept_aggregates_equals_a_recount(backend_store: Store):
    store = backend_store
    prompts = [
        ("", "Is the trail tent waterproof?"),
        ("You sell TENTS.", "How heavy is the stove?"),
        ("", "Give 100% of the answer in _one_ line."),
        ("", "Summarise the warranty."),
    ]
    for i, (system, prompt) in enumerate(prompts * 2):
        run = make_run(
            models=("local/a", "openai/b"),
            prompt=prompt,
            system=system,
            created_at=T0 + timedelta(minutes=i),
        )
        store.runs.save_run(run)
        store.ratings.add_rating(run.results[i % 2].id, 1 + i % 5, session_id="s1")
    recounting = _Recounting(store.db, store.runs, store.ratings, store.history)
    for text in ("tent", "TENT", " warranty ", "100%", "_one_", "0%", "no such words", "e"):
        for model in (None, "local/a"):
            filters = ConfigFilters(template_text=text, model_id=model)
            kept = [asdict(a) for a in store.leaderboard.config_aggregates(filters)]
            assert kept == [asdict(a) for a in recounting.config_aggregates(filters)], filters
    assert len(store.leaderboard.config_aggregates(ConfigFilters("tent"))) == 4


def test_the_rated_at_least_filter_equals_a_recount_of_current_stars(backend_store: Store):
    from playground.history import HistoryFilters

    store = backend_store
    runs = []
    for i in range(8):
        run = make_run(
            models=("local/a", "openai/b") if i % 2 else ("openai/b", "openai/c"),
            created_at=T0 + timedelta(minutes=i),
        )
        store.runs.save_run(run)
        runs.append(run)
    rate = store.ratings.add_rating
    rate(runs[0].results[0].id, 4, session_id="s1")  # exactly 4
    rate(runs[1].results[1].id, 5, session_id="s1")
    rate(runs[1].results[1].id, 3, session_id="s2")  # (5 + 3) / 2 = 4
    rate(runs[2].results[0].id, 5, session_id="s1")
    rate(runs[2].results[0].id, 3, session_id="s1")  # replaced: 3
    rate(runs[3].results[0].id, 4, session_id="s1")
    rate(runs[3].results[0].id, 3, session_id="s2")  # 3.5
    rate(runs[4].results[1].id, None, "comment only", session_id="s1")
    rate(runs[5].results[0].id, 2, session_id="s1")
    rate(runs[5].results[1].id, 5)
    rate(runs[6].results[1].id, 1)
    rate(runs[6].results[1].id, 5)  # replaced: 5

    def found(stars: int, model: str | None = None) -> list[str]:
        page = store.history.history_page(HistoryFilters(model_id=model, min_stars=stars))
        return [r.id for r in page.runs]

    def recounted(stars: int, model: str | None = None) -> list[str]:
        ids = [r.id for run in runs for r in run.results]
        means = {k: s.mean for k, s in store.ratings.rating_summaries(ids).items() if s.count}
        return [
            run.id
            for run in reversed(runs)
            if any(means.get(r.id, 0) >= stars for r in run.results)
            and (model is None or any(r.model_id == model for r in run.results))
        ]

    def check() -> None:
        for stars in range(1, 6):
            for model in (None, "local/a", "openai/c"):
                assert found(stars, model) == recounted(stars, model), (stars, model)

    check()
    assert found(4) == [runs[6].id, runs[5].id, runs[1].id, runs[0].id]
    store.runs.delete_run(runs[6].id)
    runs.pop(6)
    check()
    assert found(5) == [runs[5].id]
