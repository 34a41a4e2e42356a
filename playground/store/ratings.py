"""Ratings, pairwise preferences, history pages, configuration aggregates and exports.

Every rating and every vote is a new row, so two sessions rating at once never overwrite each
other; what counts in aggregates is the latest row per (session, answer) for stars and the
latest vote per (session, pair of answers) for preferences. Earlier rows stay as an audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from playground.errors import NotFoundError, PlaygroundError
from playground.history import (
    PAGE_SIZE,
    HistoryFilters,
    HistoryPage,
    RatingSummary,
)
from playground.records import Run, utc_now
from playground.store.exports import ExportsMixin
from playground.store.filters import (
    current_rating_ids,
    run_conditions,
)
from playground.store.leaderboard import LeaderboardMixin
from playground.store.runs import _aware, assemble_runs
from playground.store.schema import preferences, ratings, results, runs

if TYPE_CHECKING:
    from sqlalchemy import Engine

VoteKind = Literal["best", "all_good", "all_bad"]


class RatingError(PlaygroundError):
    """A rating or vote that cannot be stored as given (stars out of range, unknown answer)."""


class RatingsMixin(ExportsMixin, LeaderboardMixin):
    """Rating, preference, history and leaderboard queries of the Store (and exports)."""

    engine: Engine

    # -- writing -------------------------------------------------------------------------

    def add_rating(
        self,
        result_id: str,
        stars: int | None,
        comment: str | None = None,
        session_id: str | None = None,
    ) -> int:
        """Store a rating as a new row (never an update) and return its id.

        :param stars: 1 to 5, or None for a comment without stars.
        :raises RatingError: stars out of range, or neither stars nor a comment.
        :raises NotFoundError: no answer with this id.
        """
        if stars is not None and (isinstance(stars, bool) or stars not in range(1, 6)):
            raise RatingError(f"Stars must be a whole number from 1 to 5, not {stars!r}.")
        comment = (comment or "").strip() or None
        if stars is None and comment is None:
            raise RatingError("Give 1 to 5 stars or a comment.")
        try:
            with self.engine.begin() as conn:
                row = conn.execute(
                    insert(ratings)
                    .values(
                        result_id=result_id,
                        stars=stars,
                        comment=comment,
                        session_id=session_id,
                        created_at=utc_now(),
                    )
                    .returning(ratings.c.id)
                ).first()
        except IntegrityError:
            raise NotFoundError(f"No answer with id {result_id} to rate.") from None
        return int(row.id) if row else 0

    def add_preference(
        self,
        run_id: str,
        result_ids: Sequence[str],
        kind: VoteKind,
        best: str | None = None,
        session_id: str | None = None,
    ) -> int:
        """Store a best-answer vote as pairwise rows; return how many rows were written.

        'best' writes one win of `best` over each other answer; 'all_good' and 'all_bad' write
        a tie for every pair. A later vote of the same session on the same answers replaces
        this one in aggregates (both stay stored).

        :raises RatingError: fewer than two answers, or `best` is not one of them.
        """
        ids = list(dict.fromkeys(result_ids))
        if len(ids) < 2:
            raise RatingError("A best-answer vote needs at least two answers side by side.")
        if kind == "best":
            if best not in ids:
                raise RatingError("The best answer must be one of the answers shown.")
            pairs = [(best, other, "win") for other in ids if other != best]
        elif kind in ("all_good", "all_bad"):
            outcome = "tie_good" if kind == "all_good" else "tie_bad"
            pairs = [(a, b, outcome) for i, a in enumerate(ids) for b in ids[i + 1 :]]
        else:
            raise RatingError(f"Unknown vote {kind!r}; use best, all_good or all_bad.")
        now = utc_now()
        rows = [
            {
                "run_id": run_id,
                "winner_result_id": a,
                "loser_result_id": b,
                "outcome": outcome,
                "session_id": session_id,
                "created_at": now,
            }
            for a, b, outcome in pairs
        ]
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(preferences), rows)
        except IntegrityError:
            raise NotFoundError(f"Run {run_id} or one of its answers does not exist.") from None
        return len(rows)

    # -- reading one session's own state -------------------------------------------------

    def session_rating(self, result_id: str, session_id: str) -> tuple[int | None, str | None]:
        """This session's latest (stars, comment) for an answer; (None, None) if none."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(ratings.c.stars, ratings.c.comment)
                .where(ratings.c.result_id == result_id, ratings.c.session_id == session_id)
                .order_by(ratings.c.id.desc())
                .limit(1)
            ).first()
        return (row.stars, row.comment) if row else (None, None)

    def session_vote(
        self, result_ids: Sequence[str], session_id: str
    ) -> tuple[VoteKind, str | None] | None:
        """This session's latest vote among these answers: ('best', id), ('all_good', None)..."""
        ids = list(result_ids)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(preferences.c.outcome, preferences.c.winner_result_id)
                .where(
                    preferences.c.session_id == session_id,
                    preferences.c.winner_result_id.in_(ids),
                    preferences.c.loser_result_id.in_(ids),
                )
                .order_by(preferences.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        if row.outcome == "win":
            return ("best", row.winner_result_id)
        return ("all_good" if row.outcome == "tie_good" else "all_bad", None)

    # -- summaries -----------------------------------------------------------------------

    def rating_summaries(self, result_ids: Sequence[str]) -> dict[str, RatingSummary]:
        """Current stars (latest per session) and all comments of each answer."""
        ids = list(result_ids)
        if not ids:
            return {}
        summaries: dict[str, RatingSummary] = {}
        with self.engine.connect() as conn:
            current = conn.execute(
                select(
                    ratings.c.result_id,
                    func.count(ratings.c.stars).label("n"),
                    func.avg(ratings.c.stars).label("mean"),
                )
                .where(ratings.c.id.in_(current_rating_ids().where(ratings.c.result_id.in_(ids))))
                .group_by(ratings.c.result_id)
            ).all()
            comments = conn.execute(
                select(ratings.c.result_id, ratings.c.comment)
                .where(ratings.c.result_id.in_(ids), ratings.c.comment.is_not(None))
                .order_by(ratings.c.id)
            ).all()
        for row in current:
            summaries[row.result_id] = RatingSummary(int(row.n), float(row.mean))
        for row in comments:
            summary = summaries.setdefault(row.result_id, RatingSummary())
            if row.comment not in summary.comments:
                summary.comments.append(row.comment)
        return summaries

    def ratings_of(self, result_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Every stored rating row of each answer, oldest first (for JSON output)."""
        ids = list(result_ids)
        found: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        if not ids:
            return found
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ratings).where(ratings.c.result_id.in_(ids)).order_by(ratings.c.id)
            ).all()
        for row in rows:
            found[row.result_id].append(
                {
                    "stars": row.stars,
                    "comment": row.comment,
                    "session_id": row.session_id,
                    "created_at": _aware(row.created_at).isoformat(),
                }
            )
        return found

    # -- history -------------------------------------------------------------------------

    def data_version(self) -> tuple[int, int, int]:
        """A cheap stamp that changes whenever an answer, a rating or a vote is stored.

        Pages cache their queries under it, so a rerun that changed nothing costs three
        index lookups instead of a full aggregate.
        """
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    select(func.count()).select_from(results).scalar_subquery(),
                    select(func.max(ratings.c.id)).scalar_subquery(),
                    select(func.max(preferences.c.id)).scalar_subquery(),
                )
            ).one()
        return (int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))

    def model_ids(self) -> list[str]:
        """Every model id that has an answer stored, sorted."""
        with self.engine.connect() as conn:
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
        conditions = run_conditions(filters, self.engine.dialect.name)
        page = max(1, page)
        with self.engine.connect() as conn:
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
        summaries = self.rating_summaries([r.id for r in result_rows])
        return HistoryPage(found, total, page, page_size, summaries)

    def runs_by_ids(self, run_ids: Sequence[str]) -> list[Run]:
        """Runs with their results, in the order asked; NotFoundError names a missing id."""
        return [self.get_run(run_id) for run_id in run_ids]  # type: ignore[attr-defined]
