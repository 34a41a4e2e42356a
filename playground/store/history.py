"""History pages: runs newest first under filters, the models seen, and the data version."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import func, select

from playground.history import PAGE_SIZE, HistoryFilters, HistoryPage
from playground.store.filters import run_conditions
from playground.store.runs import assemble_runs
from playground.store.schema import preferences, ratings, results, runs

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


class History:
    """The queries behind the History page and `playground runs list`."""

    def __init__(self, db: Database, ratings: Ratings) -> None:
        self.db = db
        self.ratings = ratings

    def data_version(self) -> DataVersion:
        """The current DataVersion: five index lookups in one statement."""
        with self.db.read() as conn:
            row = conn.execute(
                select(
                    select(func.count()).select_from(results).scalar_subquery(),
                    select(func.count()).select_from(ratings).scalar_subquery(),
                    select(func.max(ratings.c.id)).scalar_subquery(),
                    select(func.count()).select_from(preferences).scalar_subquery(),
                    select(func.max(preferences.c.id)).scalar_subquery(),
                )
            ).one()
        return DataVersion(*(int(value or 0) for value in row))

    def model_ids(self) -> list[str]:
        """Every model id that has an answer stored, sorted."""
        with self.db.read() as conn:
            return list(
                conn.execute(
                    select(results.c.model_id).distinct().order_by(results.c.model_id)
                ).scalars()
            )

    def history_page(
        self, filters: HistoryFilters | None = None, page: int = 1, page_size: int = PAGE_SIZE
    ) -> HistoryPage:
        """One page of runs newest first, matching the filters, with their rating summaries."""
        filters = filters or HistoryFilters()
        conditions = run_conditions(filters, self.db.backend)
        page = max(1, page)
        with self.db.read() as conn:
            total = int(
                conn.execute(select(func.count()).select_from(runs).where(*conditions)).scalar_one()
            )
            run_rows = conn.execute(
                select(runs)
                .where(*conditions)
                .order_by(runs.c.created_at.desc(), runs.c.id.desc())
                .limit(page_size)
                .offset((page - 1) * page_size)
            ).all()
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
        return HistoryPage(found, total, page, page_size, summaries)
