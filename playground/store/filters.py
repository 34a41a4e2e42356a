"""SQL building blocks shared by the rating, history, leaderboard and export queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, or_, select

from playground.compare import ConfigFilters
from playground.history import HistoryFilters, day_after, day_start
from playground.store.schema import preferences, ratings, results, runs


def contains(column: Any, text: str, dialect: str) -> ColumnElement[bool]:
    """Case-insensitive substring match; LIKE wildcards in the text are taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    if dialect == "sqlite":
        # SQLite's LIKE already ignores ASCII case; ilike() would add lower() on every row.
        return column.like(pattern, escape="\\")
    return column.ilike(pattern, escape="\\")


def current_rating_ids() -> Select[Any]:
    """Ids of the rating rows that count: the latest row with stars per (answer, session)."""
    return (
        select(func.max(ratings.c.id))
        .where(ratings.c.stars.is_not(None))
        .group_by(ratings.c.result_id, ratings.c.session_id)
    )


def current_vote_ids() -> Select[Any]:
    """Ids of the preference rows that count: the latest per (session, pair of answers).

    A vote covers the answers shown together (one variant's row in the Playground), so a
    second vote on other answers of the same run adds to the first; a new vote on the same
    answers replaces the earlier one.
    """
    win, lose = preferences.c.winner_result_id, preferences.c.loser_result_id
    first = case((win < lose, win), else_=lose)
    second = case((win < lose, lose), else_=win)
    return select(func.max(preferences.c.id)).group_by(preferences.c.session_id, first, second)


def run_conditions(filters: HistoryFilters, dialect: str) -> list[ColumnElement[bool]]:
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
        matching = select(results.c.run_id).where(
            or_(
                contains(results.c.text, text, dialect),
                contains(results.c.user_template, text, dialect),
                contains(results.c.system_template, text, dialect),
            )
        )
        conditions.append(
            or_(runs.c.id.in_(matching), contains(runs.c.variables_json, text, dialect))
        )
    if filters.min_stars:
        per_answer = (
            select(ratings.c.result_id, func.avg(ratings.c.stars).label("mean"))
            .where(ratings.c.id.in_(current_rating_ids()))
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


def result_conditions(filters: ConfigFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.model_id:
        conditions.append(results.c.model_id == filters.model_id)
    if filters.date_from:
        conditions.append(results.c.created_at >= day_start(filters.date_from))
    if filters.date_to:
        conditions.append(results.c.created_at < day_after(filters.date_to))
    return conditions
