"""History pages: runs newest first under filters, the models seen, and the data version."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, func, literal, select, tuple_

from playground.history import PAGE_SIZE, HistoryFilters, HistoryPage
from playground.store.filters import COUNT_CAP, indexed_run_count, run_conditions
from playground.store.runs import assemble_runs
from playground.store.schema import (
    config_counts,
    preferences,
    ratings,
    results,
    runs,
    store_counts,
)

# Jumping to a far page walks run keys in chunks of this many (no OFFSET on wide rows).
SEEK_CHUNK = 2000
# Capped counts kept across calls, per History (the app keeps one Store per process): a few
# searches and filters per person are what reruns ask for again.
KEPT_COUNTS = 64

if TYPE_CHECKING:
    from playground.store.database import Database
    from playground.store.ratings import Ratings


class DataVersion(NamedTuple):
    """What is stored, counted: it changes whenever any process stores an answer, a rating or a
    vote, so pages (in every app process) cache their queries under it.

    Counts, not only the highest ids: on PostgreSQL two writers may commit their ids out of
    order, so a new row can appear *below* the highest id already seen; its count still moves.
    """

    answers: int
    ratings: int
    last_rating: int
    votes: int
    last_vote: int
    # m012's marker, moved by every delete of runs or answers (None without it): a delete and
    # a new run between two reruns may leave every count above as it was.
    deletions: int | None = None


class History:
    """The queries behind the History page and `playground runs list`."""

    def __init__(self, db: Database, ratings: Ratings) -> None:
        self.db = db
        self.ratings = ratings
        # (filters, cap) -> the deletion marker read before that count reached its cap.
        self._capped: OrderedDict[tuple[Any, ...], int] = OrderedDict()
        self._capped_lock = threading.Lock()  # Streamlit's sessions share this object

    def data_version(self) -> DataVersion:
        """The current DataVersion: the trigger-kept counters and two index lookups."""
        with self.db.read() as conn:
            counted = dict(conn.execute(select(store_counts.c.name, store_counts.c.value)).all())
            last = conn.execute(
                select(
                    select(func.max(ratings.c.id)).scalar_subquery(),
                    select(func.max(preferences.c.id)).scalar_subquery(),
                )
            ).one()
            missing = [t for t in (results, ratings, preferences) if t.name not in counted]
            for table in missing:  # a database built without m009's counters
                counted[table.name] = conn.execute(
                    select(func.count()).select_from(table)
                ).scalar_one()
        return DataVersion(
            int(counted["results"]),
            int(counted["ratings"]),
            int(last[0] or 0),
            int(counted["preferences"]),
            int(last[1] or 0),
            None if counted.get("deletions") is None else int(counted["deletions"]),
        )

    def model_ids(self) -> list[str]:
        """Every model id that has an answer stored, sorted."""
        with self.db.read() as conn:
            if conn.dialect.has_table(conn, config_counts.name):  # m009: one row per config
                query = select(config_counts.c.model_id).where(config_counts.c.n_results > 0)
            else:
                query = select(results.c.model_id)
            return list(
                conn.execute(query.distinct().order_by(query.selected_columns[0])).scalars()
            )

    def count_runs(self) -> int:
        """How many runs are stored: one row kept by triggers, not a count of the table."""
        with self.db.read() as conn:
            return self._stored_runs(conn)

    def _stored_runs(self, conn: Connection) -> int:
        value = _counter(conn, "runs")
        if value is None:  # a database built without m008's counter row
            value = int(conn.execute(select(func.count()).select_from(runs)).scalar_one())
        return value

    def _seek(
        self, conn: Connection, conditions: list[ColumnElement[bool]], skip: int
    ) -> tuple[datetime, str] | None:
        """The (created_at, id) key of the `skip`-th matching run, walking keys, not rows."""
        after: tuple[datetime, str] | None = None
        while skip > 0:
            keyset = [tuple_(runs.c.created_at, runs.c.id) < tuple_(*after)] if after else []
            keys = conn.execute(
                select(runs.c.created_at, runs.c.id)
                .where(*conditions, *keyset)
                .order_by(runs.c.created_at.desc(), runs.c.id.desc())
                .limit(min(skip, SEEK_CHUNK))
            ).all()
            if not keys:
                return after
            after = (keys[-1][0], keys[-1][1])
            skip -= len(keys)
        return after

    def _still_capped(self, key: tuple[Any, ...], deletions: int) -> bool:
        """Whether a count under this key reached its cap with no delete since."""
        with self._capped_lock:
            kept = self._capped.get(key)
            if kept is None:
                return False
            if kept != deletions:  # something was deleted since: the count may have dropped
                del self._capped[key]
                return False
            self._capped.move_to_end(key)
            return True

    def _keep_capped(self, key: tuple[Any, ...], deletions: int) -> None:
        with self._capped_lock:
            self._capped[key] = deletions
            self._capped.move_to_end(key)
            while len(self._capped) > KEPT_COUNTS:
                self._capped.popitem(last=False)

    def _count(
        self,
        conn: Connection,
        conditions: list[ColumnElement[bool]],
        at_least: int,
        filters: HistoryFilters,
        version: DataVersion | None = None,
    ) -> tuple[int, bool]:
        """(matching runs, whether there are more than that): exact up to a cap.

        A count that reached its cap is kept: until something is deleted, new runs and answers
        only add matches, so it stays capped and the next rerun need not walk to the cap again.
        """
        if not conditions:
            return self._stored_runs(conn), False
        cap = at_least + COUNT_CAP
        key = _kept_key(filters, cap)
        deletions = None
        if key is not None:
            # Read before counting: a delete during the count then only makes the kept count
            # look stale next time, never makes a stale one look fresh.
            deletions = version.deletions if version is not None else _counter(conn, "deletions")
            if deletions is not None and self._still_capped(key, deletions):
                return cap, True
        found = self._count_to(conn, conditions, cap, filters)
        if found >= cap and key is not None and deletions is not None:
            self._keep_capped(key, deletions)
        return found, found >= cap

    def _count_to(
        self,
        conn: Connection,
        conditions: list[ColumnElement[bool]],
        cap: int,
        filters: HistoryFilters,
    ) -> int:
        """Matching runs counted up to `cap` (from SQLite's FTS5 index for a search alone)."""
        wanted = filters.text.strip()
        if wanted and filters == HistoryFilters(text=filters.text):  # a search alone
            indexed = indexed_run_count(conn, wanted, cap)
            if indexed is not None:
                return indexed
        return int(
            conn.execute(
                select(func.count()).select_from(
                    select(literal(1)).select_from(runs).where(*conditions).limit(cap).subquery()
                )
            ).scalar_one()
        )

    def history_page(
        self,
        filters: HistoryFilters | None = None,
        page: int = 1,
        page_size: int = PAGE_SIZE,
        after: tuple[Any, str] | None = None,
        version: DataVersion | None = None,
    ) -> HistoryPage:
        """One page of runs newest first, matching the filters, with their rating summaries.

        `after` is the key of the last run of the page before (HistoryPage.last_key): pages
        continue from it through the index. Without it, page N walks the keys before it.
        `version` is the data_version() this page is read under, just read: its deletion
        marker tells whether a capped count kept from an earlier call still holds (without
        it, the marker is read here).
        """
        filters = filters or HistoryFilters()
        page = max(1, page)
        with self.db.read() as conn:
            conditions = run_conditions(filters, self.db.backend, conn)
            if after is None and page > 1:
                after = self._seek(conn, conditions, (page - 1) * page_size)
            keyset = [tuple_(runs.c.created_at, runs.c.id) < tuple_(*after)] if after else []
            run_rows = conn.execute(
                select(runs)
                .where(*conditions, *keyset)
                .order_by(runs.c.created_at.desc(), runs.c.id.desc())
                .limit(page_size)
            ).all()
            total, more = self._count(conn, conditions, page * page_size, filters, version)
            ids = [r.id for r in run_rows]
            result_rows = (
                conn.execute(
                    select(results)
                    .where(results.c.run_id.in_(ids))
                    .order_by(results.c.run_id, results.c.position)
                ).all()
                if ids
                else []
            )
        found = assemble_runs(run_rows, result_rows)
        summaries = self.ratings.rating_summaries([r.id for r in result_rows])
        last_key = (run_rows[-1].created_at, run_rows[-1].id) if run_rows else None
        return HistoryPage(found, total, page, page_size, summaries, more, last_key)


def _kept_key(filters: HistoryFilters, cap: int) -> tuple[Any, ...] | None:
    """What a capped count is kept under; None when ratings decide what matches.

    Text, model and dates match on what runs and answers hold, which only a delete takes away;
    stars change with every new rating, so a rating filter's count is never kept.
    """
    if filters.min_stars:
        return None
    return (filters.text.strip(), filters.model_id, filters.date_from, filters.date_to, cap)


def _counter(conn: Connection, name: str) -> int | None:
    """One trigger-kept counter of store_counts (None where its migration has not run)."""
    value = conn.execute(select(store_counts.c.value).where(store_counts.c.name == name)).scalar()
    return None if value is None else int(value)
