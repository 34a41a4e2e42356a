"""Ratings and pairwise preferences: writing them, and reading them back per answer.

Every rating and every vote is a new row, so two sessions rating at once never overwrite each
other; what counts in aggregates is the latest row per (session, answer) for stars and the
latest vote per (session, pair of answers) for preferences. Earlier rows stay as an audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, insert, select

from playground.errors import NotFoundError, PlaygroundError
from playground.history import RatingSummary
from playground.records import utc_now
from playground.store import tallies
from playground.store.filters import current_rating_ids
from playground.store.runs import aware
from playground.store.schema import preferences, ratings, results, runs

if TYPE_CHECKING:
    from playground.store.database import Database

VoteKind = Literal["best", "all_good", "all_bad"]


class RatingError(PlaygroundError):
    """A rating or vote that cannot be stored as given (stars out of range, unknown answer)."""


class Ratings:
    """Stars, comments and best-answer votes on stored answers."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _known_answers(self, conn: Any, result_ids: Sequence[str]) -> set[str]:
        rows = conn.execute(select(results.c.id).where(results.c.id.in_(list(result_ids))))
        return set(rows.scalars())

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
        with self.db.write() as conn:
            # Checked in the same transaction rather than left to the foreign key, so that the
            # answer is named whatever the database's wording of a constraint failure.
            if not self._known_answers(conn, [result_id]):
                raise NotFoundError(f"No answer with id {result_id} to rate.")
            tallies.rate(conn, result_id, session_id, stars)
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
        with self.db.write() as conn:
            known_run = conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first()
            if known_run is None or len(self._known_answers(conn, ids)) < len(ids):
                raise NotFoundError(f"Run {run_id} or one of its answers does not exist.")
            tallies.vote(conn, rows)
            conn.execute(insert(preferences), rows)
        return len(rows)

    # -- reading one session's own state -------------------------------------------------

    def session_rating(self, result_id: str, session_id: str) -> tuple[int | None, str | None]:
        """This session's latest (stars, comment) for an answer; (None, None) if none."""
        return self.session_ratings([result_id], session_id).get(result_id, (None, None))

    def session_ratings(
        self, result_ids: Sequence[str], session_id: str
    ) -> dict[str, tuple[int | None, str | None]]:
        """This session's latest (stars, comment) per answer, for the answers it rated."""
        latest: dict[str, tuple[int | None, str | None]] = {}
        with self.db.read() as conn:
            rows = conn.execute(
                select(ratings.c.result_id, ratings.c.stars, ratings.c.comment)
                .where(
                    ratings.c.result_id.in_(list(result_ids)), ratings.c.session_id == session_id
                )
                .order_by(ratings.c.id)
            )
            for row in rows:  # in order of rating: the last row of an answer is its current one
                latest[row.result_id] = (row.stars, row.comment)
        return latest

    def session_vote(
        self, result_ids: Sequence[str], session_id: str
    ) -> tuple[VoteKind, str | None] | None:
        """This session's latest vote among these answers: ('best', id), ('all_good', None)..."""
        ids = list(result_ids)
        with self.db.read() as conn:
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
        with self.db.read() as conn:
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
        with self.db.read() as conn:
            rows = conn.execute(
                select(ratings).where(ratings.c.result_id.in_(ids)).order_by(ratings.c.id)
            ).all()
        for row in rows:
            found[row.result_id].append(
                {
                    "stars": row.stars,
                    "comment": row.comment,
                    "session_id": row.session_id,
                    "created_at": aware(row.created_at).isoformat(),
                }
            )
        return found
