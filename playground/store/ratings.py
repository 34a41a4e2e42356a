"""Ratings, pairwise preferences, history pages, configuration aggregates and exports.

Every rating and every vote is a new row, so two sessions rating at once never overwrite each
other; what counts in aggregates is the latest row per (session, answer) for stars and the
latest vote per (session, pair of answers) for preferences. Earlier rows stay as an audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    case,
    distinct,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError

from playground.compare import ConfigAggregate, ConfigFilters, Pair
from playground.errors import NotFoundError, PlaygroundError
from playground.history import (
    PAGE_SIZE,
    HistoryFilters,
    HistoryPage,
    RatingSummary,
    day_after,
    day_start,
)
from playground.records import Run, utc_now
from playground.store.runs import _aware, result_from_row, run_from_row
from playground.store.schema import preferences, ratings, results, runs

if TYPE_CHECKING:
    from sqlalchemy import Engine

VoteKind = Literal["best", "all_good", "all_bad"]


class RatingError(PlaygroundError):
    """A rating or vote that cannot be stored as given (stars out of range, unknown answer)."""


def _like(text: str) -> str:
    # Escape LIKE wildcards so a search for "50%" matches the text "50%" literally.
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _current_rating_ids() -> Select[Any]:
    """Ids of the rating rows that count: the latest row with stars per (answer, session)."""
    return (
        select(func.max(ratings.c.id))
        .where(ratings.c.stars.is_not(None))
        .group_by(ratings.c.result_id, ratings.c.session_id)
    )


def _current_vote_ids() -> Select[Any]:
    """Ids of the preference rows that count: the latest per (session, pair of answers).

    A vote covers the answers shown together (one variant's row in the Playground), so a
    second vote on other answers of the same run adds to the first; a new vote on the same
    answers replaces the earlier one.
    """
    win, lose = preferences.c.winner_result_id, preferences.c.loser_result_id
    first = case((win < lose, win), else_=lose)
    second = case((win < lose, lose), else_=win)
    return select(func.max(preferences.c.id)).group_by(preferences.c.session_id, first, second)


def _run_conditions(filters: HistoryFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.date_from:
        conditions.append(runs.c.created_at >= day_start(filters.date_from))
    if filters.date_to:
        conditions.append(runs.c.created_at < day_after(filters.date_to))
    if filters.model_id:
        conditions.append(
            runs.c.id.in_(select(results.c.run_id).where(results.c.model_id == filters.model_id))
        )
    text = filters.text.strip()
    if text:
        pattern = _like(text)
        matching = select(results.c.run_id).where(
            or_(
                results.c.text.ilike(pattern, escape="\\"),
                results.c.user_template.ilike(pattern, escape="\\"),
                results.c.system_template.ilike(pattern, escape="\\"),
            )
        )
        conditions.append(
            or_(runs.c.id.in_(matching), runs.c.variables_json.ilike(pattern, escape="\\"))
        )
    if filters.min_stars:
        per_answer = (
            select(ratings.c.result_id, func.avg(ratings.c.stars).label("mean"))
            .where(ratings.c.id.in_(_current_rating_ids()))
            .group_by(ratings.c.result_id)
            .subquery()
        )
        rated = (
            select(results.c.run_id)
            .join(per_answer, per_answer.c.result_id == results.c.id)
            .where(per_answer.c.mean >= filters.min_stars)
        )
        conditions.append(runs.c.id.in_(rated))
    return conditions


def _result_conditions(filters: ConfigFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.model_id:
        conditions.append(results.c.model_id == filters.model_id)
    if filters.date_from:
        conditions.append(results.c.created_at >= day_start(filters.date_from))
    if filters.date_to:
        conditions.append(results.c.created_at < day_after(filters.date_to))
    text = filters.template_text.strip()
    if text:
        pattern = _like(text)
        conditions.append(
            or_(
                results.c.user_template.ilike(pattern, escape="\\"),
                results.c.system_template.ilike(pattern, escape="\\"),
            )
        )
    return conditions


class RatingsMixin:
    """Rating, preference, history and leaderboard queries of the Store."""

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
                .where(ratings.c.id.in_(_current_rating_ids().where(ratings.c.result_id.in_(ids))))
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
        conditions = _run_conditions(filters)
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
        by_run: dict[str, list[Any]] = {}
        for row in result_rows:
            by_run.setdefault(row.run_id, []).append(row)
        found = []
        for row in run_rows:
            run = run_from_row(row)
            run.results = [result_from_row(r, run.retrieval) for r in by_run.get(run.id, [])]
            found.append(run)
        summaries = self.rating_summaries([r.id for r in result_rows])
        return HistoryPage(found, total, page, page_size, summaries)

    def runs_by_ids(self, run_ids: Sequence[str]) -> list[Run]:
        """Runs with their results, in the order asked; NotFoundError names a missing id."""
        return [self.get_run(run_id) for run_id in run_ids]  # type: ignore[attr-defined]

    # -- leaderboard ---------------------------------------------------------------------

    def config_aggregates(self, filters: ConfigFilters | None = None) -> list[ConfigAggregate]:
        """Per configuration hash: what it is, how often it ran, and its raw measurements."""
        conditions = _result_conditions(filters or ConfigFilters())
        with self.engine.connect() as conn:
            base = conn.execute(
                select(
                    results.c.config_hash,
                    func.min(results.c.model_id).label("model_id"),
                    func.min(results.c.params_json).label("params_json"),
                    func.min(results.c.system_template).label("system_template"),
                    func.min(results.c.user_template).label("user_template"),
                    func.max(runs.c.store_name).label("store_name"),
                    func.count().label("n_results"),
                    func.count(distinct(results.c.run_id)).label("n_runs"),
                    func.sum(case((results.c.error.is_not(None), 1), else_=0)).label("n_errors"),
                    func.avg(results.c.groundedness).label("groundedness"),
                    func.avg(results.c.cost_usd).label("cost"),
                )
                .select_from(results.join(runs, runs.c.id == results.c.run_id))
                .where(*conditions)
                .group_by(results.c.config_hash)
            ).all()
            stars = conn.execute(
                select(
                    results.c.config_hash,
                    func.count(ratings.c.stars).label("n"),
                    func.sum(ratings.c.stars).label("total"),
                    func.sum(ratings.c.stars * ratings.c.stars).label("total_sq"),
                )
                .select_from(ratings.join(results, results.c.id == ratings.c.result_id))
                .where(ratings.c.id.in_(_current_rating_ids()), *conditions)
                .group_by(results.c.config_hash)
            ).all()
            timings = conn.execute(
                select(results.c.config_hash, results.c.ttft_ms, results.c.latency_ms).where(
                    results.c.error.is_(None), *conditions
                )
            ).all()
            moderated = conn.execute(
                select(results.c.config_hash, results.c.moderation).where(
                    results.c.moderation.is_not(None), *conditions
                )
            ).all()
        aggregates: dict[str, ConfigAggregate] = {}
        for row in base:
            aggregates[row.config_hash] = ConfigAggregate(
                config_hash=row.config_hash,
                model_id=row.model_id,
                params=json.loads(row.params_json),
                system_template=row.system_template,
                user_template=row.user_template,
                store_name=row.store_name,
                n_results=int(row.n_results),
                n_runs=int(row.n_runs),
                n_errors=int(row.n_errors or 0),
                groundedness_mean=row.groundedness,
                cost_mean=row.cost,
            )
        for row in stars:
            agg = aggregates.get(row.config_hash)
            if agg is not None:
                agg.stars_n, agg.stars_sum = int(row.n), float(row.total or 0)
                agg.stars_sumsq = float(row.total_sq or 0)
        for row in timings:
            agg = aggregates[row.config_hash]
            if row.ttft_ms is not None:
                agg.ttft_ms.append(row.ttft_ms)
            if row.latency_ms is not None:
                agg.latency_ms.append(row.latency_ms)
        for row in moderated:
            aggregates[row.config_hash].moderations.append(row.moderation)
        return list(aggregates.values())

    def preference_pairs(self) -> list[Pair]:
        """Every current pairwise preference, between configuration hashes."""
        winner, loser = results.alias("winner"), results.alias("loser")
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    winner.c.config_hash, loser.c.config_hash.label("other"), preferences.c.outcome
                )
                .join(winner, winner.c.id == preferences.c.winner_result_id)
                .join(loser, loser.c.id == preferences.c.loser_result_id)
                .where(preferences.c.id.in_(_current_vote_ids()))
            ).all()
        return [Pair(r.config_hash, r.other, r.outcome) for r in rows]

    def config_runs(self, config_hash: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest answers of one configuration with their run id and current stars."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    results.c.id,
                    results.c.run_id,
                    results.c.created_at,
                    results.c.variant_name,
                    results.c.text,
                    results.c.error,
                    results.c.latency_ms,
                    results.c.cost_usd,
                )
                .where(results.c.config_hash == config_hash)
                .order_by(results.c.created_at.desc())
                .limit(limit)
            ).all()
        summaries = self.rating_summaries([r.id for r in rows])
        return [
            {
                "when": _aware(r.created_at).strftime("%Y-%m-%d %H:%M"),
                "run": r.run_id,
                "variant": r.variant_name,
                "answer": (r.error and f"Error: {r.error}") or r.text,
                "stars": summaries[r.id].mean if r.id in summaries else None,
                "latency_ms": r.latency_ms,
                "cost_usd": r.cost_usd,
            }
            for r in rows
        ]

    # -- exports -------------------------------------------------------------------------

    def export_results(
        self, filters: HistoryFilters | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """One flat row per answer of the matching runs (newest run first), for CSV/JSON."""
        conditions = _run_conditions(filters or HistoryFilters())
        query = (
            select(
                runs.c.id.label("run_id"),
                runs.c.created_at.label("run_created_at"),
                runs.c.source,
                runs.c.variables_json,
                runs.c.store_name,
                results.c.id.label("result_id"),
                results.c.model_id,
                results.c.variant_name,
                results.c.config_hash,
                results.c.params_json,
                results.c.system_template,
                results.c.user_template,
                results.c.text,
                results.c.error,
                results.c.prompt_tokens,
                results.c.completion_tokens,
                results.c.ttft_ms,
                results.c.latency_ms,
                results.c.tokens_per_s,
                results.c.cost_usd,
                results.c.groundedness,
            )
            .join(results, results.c.run_id == runs.c.id)
            .where(*conditions)
            .order_by(runs.c.created_at.desc(), runs.c.id, results.c.position)
        )
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        summaries = self.rating_summaries([r.result_id for r in rows])
        exported = []
        for row in rows:
            summary = summaries.get(row.result_id, RatingSummary())
            exported.append(
                {
                    "run_id": row.run_id,
                    "run_created_at": _aware(row.run_created_at).isoformat(),
                    "source": row.source,
                    "variables": json.loads(row.variables_json),
                    "store": row.store_name,
                    "result_id": row.result_id,
                    "model": row.model_id,
                    "variant": row.variant_name,
                    "config_hash": row.config_hash,
                    "params": json.loads(row.params_json),
                    "system_template": row.system_template,
                    "user_template": row.user_template,
                    "text": row.text,
                    "error": row.error,
                    "prompt_tokens": row.prompt_tokens,
                    "completion_tokens": row.completion_tokens,
                    "ttft_ms": row.ttft_ms,
                    "latency_ms": row.latency_ms,
                    "tokens_per_s": row.tokens_per_s,
                    "cost_usd": row.cost_usd,
                    "groundedness": row.groundedness,
                    "stars_mean": summary.mean,
                    "stars_count": summary.count,
                }
            )
        return exported

    def export_ratings(self) -> list[dict[str, Any]]:
        """Every rating row (superseded ones too, flagged) with its answer's model and config."""
        with self.engine.connect() as conn:
            current = set(conn.execute(_current_rating_ids()).scalars())
            rows = conn.execute(
                select(
                    ratings,
                    results.c.run_id,
                    results.c.model_id,
                    results.c.config_hash,
                )
                .join(results, results.c.id == ratings.c.result_id)
                .order_by(ratings.c.id)
            ).all()
        return [
            {
                "rating_id": r.id,
                "run_id": r.run_id,
                "result_id": r.result_id,
                "model": r.model_id,
                "config_hash": r.config_hash,
                "stars": r.stars,
                "comment": r.comment,
                "session_id": r.session_id,
                "created_at": _aware(r.created_at).isoformat(),
                "current": r.id in current,
            }
            for r in rows
        ]

    def export_preferences(self) -> list[dict[str, Any]]:
        """Every stored pairwise preference row, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(preferences).order_by(preferences.c.id)).all()
        return [
            {
                "run_id": r.run_id,
                "winner_result_id": r.winner_result_id,
                "loser_result_id": r.loser_result_id,
                "outcome": r.outcome,
                "session_id": r.session_id,
                "created_at": _aware(r.created_at).isoformat(),
            }
            for r in rows
        ]
