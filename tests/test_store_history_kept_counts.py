"""Capped History counts kept across calls: new runs leave them capped, any delete recounts.

One test body per backend. A count that reached its cap stays "N+" while only runs are added
(nothing is walked again); a delete in any process (another Store, or plain SQL) moves m012's
marker, and the next count is walked again and exact. Counts below the cap, and counts that
depend on ratings, are never kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, text

from playground.history import HistoryFilters
from playground.store import Store
from tests.history_fixtures import T0, make_run

SEARCH = HistoryFilters(text="tent")
CAP = 6  # page_size 1 + COUNT_CAP 5


@pytest.fixture(autouse=True)
def small_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    import playground.store.history as history

    monkeypatch.setattr(history, "COUNT_CAP", CAP - 1)


def save(store: Store, i: int, matching: bool = True, model: str = "a/1") -> str:
    run = make_run(
        texts=(f"Tent answer {i}" if matching else f"Stove answer {i}", "plain"),
        prompt="Which one?",
        models=(model, "b/2"),
        created_at=T0 + timedelta(minutes=i),
    )
    store.runs.save_run(run)
    return run.id


def counted(
    store: Store, filters: HistoryFilters = SEARCH, version: object = None
) -> tuple[int, bool]:
    page = store.history.history_page(filters, page_size=1, version=version)  # type: ignore[arg-type]
    return page.total, page.more


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """Every SQL statement the store's engine sends while inside."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(store.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.db.engine, "before_cursor_execute", record)


def cold_statements(url: str, filters: HistoryFilters = SEARCH) -> list[str]:
    """What a Store with nothing kept sends for the same count (another process's view)."""
    other = Store(url)
    try:
        with statements(other) as seen:
            counted(other, filters)
        return seen
    finally:
        other.close()


@pytest.mark.parametrize(
    "filters",
    [SEARCH, HistoryFilters(model_id="a/1"), HistoryFilters(text="tent", date_from=T0.date())],
    ids=["search", "model", "search and date"],
)
def test_a_capped_count_stays_capped_after_new_runs_without_walking_again(
    backend_store: Store, backend_url: str, filters: HistoryFilters
):
    for i in range(8):
        save(backend_store, i)
    assert counted(backend_store, filters) == (CAP, True)

    for i in range(8, 11):
        save(backend_store, i, matching=i % 2 == 0)
    cold = cold_statements(backend_url, filters)
    with statements(backend_store) as kept:
        assert counted(backend_store, filters) == (CAP, True)

    # What the kept count sent is what a cold count sends, less the walk to the cap.
    assert set(kept) <= set(cold)
    assert len(kept) < len(cold)


def test_the_version_read_for_the_rerun_vouches_for_the_kept_count(
    backend_store: Store, backend_url: str
):
    # The page passes the data_version it just read: its marker, no extra statement.
    for i in range(8):
        save(backend_store, i)
    version = backend_store.history.data_version()
    assert version.deletions is not None
    assert counted(backend_store, version=version) == (CAP, True)
    save(backend_store, 20)

    version = backend_store.history.data_version()
    cold = cold_statements(backend_url)
    with statements(backend_store) as kept:
        assert counted(backend_store, version=version) == (CAP, True)
    assert set(kept) <= set(cold)
    assert len(kept) <= len(cold) - 2  # neither the marker nor the walk


@pytest.mark.parametrize("with_version", [False, True], ids=["marker read", "version passed"])
def test_a_delete_in_another_store_makes_the_count_walk_again(
    backend_store: Store, backend_url: str, with_version: bool
):
    ids = [save(backend_store, i) for i in range(7)]
    assert counted(backend_store) == (CAP, True)

    other = Store(backend_url)  # another process's view of the same database
    try:
        other.runs.delete_run(ids[0])
        other.runs.delete_run(ids[1])
    finally:
        other.close()
    save(backend_store, 30, matching=False)  # a new run too: the counts alone could not tell

    version = backend_store.history.data_version() if with_version else None
    assert counted(backend_store, version=version) == (5, False)
    save(backend_store, 31)
    assert counted(backend_store, version=version) == (6, True)


def test_a_delete_outside_the_store_moves_the_marker_too(backend_store: Store, backend_url: str):
    # The marker is kept by triggers: a delete by hand (psql, a script) invalidates as well.
    ids = [save(backend_store, i) for i in range(7)]
    assert counted(backend_store) == (CAP, True)
    before = backend_store.history.data_version().deletions

    other = Store(backend_url)
    try:
        with other.db.write() as conn:
            conn.execute(text("DELETE FROM results WHERE run_id = :run"), {"run": ids[0]})
            conn.execute(text("DELETE FROM results WHERE run_id = :run"), {"run": ids[1]})
    finally:
        other.close()

    assert backend_store.history.data_version().deletions != before
    assert counted(backend_store) == (5, False)  # two runs kept no matching answer


def test_a_delete_that_removes_nothing_leaves_the_marker(backend_store: Store):
    save(backend_store, 0)
    before = backend_store.history.data_version().deletions
    with backend_store.db.write() as conn:
        conn.execute(text("DELETE FROM runs WHERE id = 'no such run'"))
    assert backend_store.history.data_version().deletions == before


def test_an_uncapped_count_is_recounted_and_grows(backend_store: Store):
    for i in range(3):
        save(backend_store, i)
    save(backend_store, 3, matching=False)
    assert counted(backend_store) == (3, False)

    save(backend_store, 4)
    assert counted(backend_store) == (4, False)
    for i in range(5, 8):
        save(backend_store, i)
    assert counted(backend_store) == (CAP, True)


def test_a_rating_filter_count_is_never_kept(backend_store: Store):
    # Stars change with a new rating, not only with a delete: such a count is always walked.
    ids = [save(backend_store, i) for i in range(7)]
    answers = [backend_store.runs.get_run(run_id).results[0].id for run_id in ids]
    for answer in answers:
        backend_store.ratings.add_rating(answer, 5, session_id="s")
    rated = HistoryFilters(min_stars=4)
    assert counted(backend_store, rated) == (CAP, True)

    for answer in answers[:3]:
        backend_store.ratings.add_rating(answer, 1, session_id="s")  # replaces the 5

    assert counted(backend_store, rated) == (4, False)


def test_kept_counts_are_bounded(backend_store: Store, monkeypatch: pytest.MonkeyPatch):
    import playground.store.history as history

    monkeypatch.setattr(history, "KEPT_COUNTS", 2)
    for i in range(7):
        save(backend_store, i)
    for word in ("tent", "answer", "plain", "which"):
        assert counted(backend_store, HistoryFilters(text=word)) == (CAP, True)

    assert len(backend_store.history._capped) == 2
