"""Compare's running tallies, kept in the transaction that stores a rating, a vote or a delete.

`config_counts` holds per configuration the count, sum and sum of squares of the current stars
(the latest with stars per answer and session), `answer_stars` their count and sum per rated
answer, and `pair_counts` the current votes (the latest per session and pair of answers) per
pair of configurations and outcome. A new rating or vote that replaces an earlier one takes the
earlier one out of the tallies and puts itself in, so the Compare page reads 40 rows instead of
recounting every rating and vote.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Float, and_, cast, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from playground.store.filters import current_rating_ids, current_vote_ids
from playground.store.schema import (
    answer_stars,
    config_counts,
    pair_counts,
    preferences,
    ratings,
    results,
)


def _same_session(column: Any, session_id: str | None) -> Any:
    return column.is_(None) if session_id is None else column == session_id


def _upsert(conn: Connection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def _add_stars(conn: Connection, config_hash: str, n: int, total: int, total_sq: int) -> None:
    conn.execute(
        update(config_counts)
        .where(config_counts.c.config_hash == config_hash)
        .values(
            stars_n=config_counts.c.stars_n + n,
            stars_sum=config_counts.c.stars_sum + total,
            stars_sumsq=config_counts.c.stars_sumsq + total_sq,
        )
    )


def rate(conn: Connection, result_id: str, session_id: str | None, stars: int | None) -> None:
    """Before a rating row is stored: replace this session's current stars in the tally."""
    if stars is None:  # a comment alone leaves the stars as they were
        return
    answer = conn.execute(
        select(
            results.c.run_id,
            results.c.config_hash,
            results.c.error.is_not(None),
            results.c.created_at,
        ).where(results.c.id == result_id)
    ).first()
    if answer is None:
        return
    run_id, config_hash, failed, created_at = answer
    previous = conn.execute(
        select(ratings.c.stars)
        .where(
            ratings.c.result_id == result_id,
            _same_session(ratings.c.session_id, session_id),
            ratings.c.stars.is_not(None),
        )
        .order_by(ratings.c.id.desc())
        .limit(1)
    ).scalar()
    n, total = (1, stars) if previous is None else (0, stars - previous)
    _add_stars(conn, config_hash, n, total, stars * stars - (previous or 0) ** 2)
    statement = _upsert(conn)(answer_stars).values(
        result_id=result_id, run_id=run_id, config_hash=config_hash, failed=bool(failed),
        created_at=created_at, n=n, total=total, mean=float(total),
    )  # fmt: skip
    kept_n = answer_stars.c.n + statement.excluded.n
    kept_total = answer_stars.c.total + statement.excluded.total
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["result_id"],
            set_={"n": kept_n, "total": kept_total, "mean": cast(kept_total, Float) / kept_n},
        )
    )


def _add_pair(conn: Connection, winner: str, loser: str, outcome: str, n: int) -> None:
    statement = _upsert(conn)(pair_counts).values(
        winner_config=winner, loser_config=loser, outcome=outcome, n=n
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["winner_config", "loser_config", "outcome"],
            set_={"n": pair_counts.c.n + statement.excluded.n},
        )
    )


def vote(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Before vote rows are stored: each replaces the session's current vote on its pair."""
    ids = {r["winner_result_id"] for r in rows} | {r["loser_result_id"] for r in rows}
    configs: dict[str, str] = {
        row.id: row.config_hash
        for row in conn.execute(
            select(results.c.id, results.c.config_hash).where(results.c.id.in_(ids))
        )
    }
    for row in rows:
        a, b, session = row["winner_result_id"], row["loser_result_id"], row["session_id"]
        earlier = conn.execute(
            select(preferences.c.winner_result_id, preferences.c.loser_result_id,
                   preferences.c.outcome)
            .where(
                or_(
                    and_(preferences.c.winner_result_id == a, preferences.c.loser_result_id == b),
                    and_(preferences.c.winner_result_id == b, preferences.c.loser_result_id == a),
                ),
                _same_session(preferences.c.session_id, session),
            )
            .order_by(preferences.c.id.desc())
            .limit(1)
        ).first()  # fmt: skip
        if earlier is not None:
            old_w = configs.get(earlier.winner_result_id)
            old_l = configs.get(earlier.loser_result_id)
            if old_w and old_l:
                _add_pair(conn, old_w, old_l, earlier.outcome, -1)
        if configs.get(a) and configs.get(b):
            _add_pair(conn, configs[a], configs[b], row["outcome"], 1)


def forget_answers(conn: Connection, answer_ids: Any) -> None:
    """Before answers are deleted: take their current stars and votes out of the tallies."""
    stars = conn.execute(
        select(
            results.c.config_hash,
            func.count(),
            func.sum(ratings.c.stars),
            func.sum(ratings.c.stars * ratings.c.stars),
        )
        .join(results, results.c.id == ratings.c.result_id)
        .where(ratings.c.id.in_(current_rating_ids().where(ratings.c.result_id.in_(answer_ids))))
        .group_by(results.c.config_hash)
    ).all()
    for config_hash, n, total, total_sq in stars:
        _add_stars(conn, config_hash, -int(n), -int(total or 0), -int(total_sq or 0))
    conn.execute(delete(answer_stars).where(answer_stars.c.result_id.in_(answer_ids)))
    winner, loser = results.alias("winner"), results.alias("loser")
    touching = or_(
        preferences.c.winner_result_id.in_(answer_ids),
        preferences.c.loser_result_id.in_(answer_ids),
    )
    votes = conn.execute(
        select(winner.c.config_hash, loser.c.config_hash, preferences.c.outcome, func.count())
        .join(winner, winner.c.id == preferences.c.winner_result_id)
        .join(loser, loser.c.id == preferences.c.loser_result_id)
        .where(preferences.c.id.in_(current_vote_ids().where(touching)))
        .group_by(winner.c.config_hash, loser.c.config_hash, preferences.c.outcome)
    ).all()
    for winner_config, loser_config, outcome, n in votes:
        _add_pair(conn, winner_config, loser_config, outcome, -int(n))


def recount(conn: Connection) -> None:
    """Rebuild the star and vote tallies from every rating and vote (after a bulk copy)."""
    conn.execute(update(config_counts).values(stars_n=0, stars_sum=0, stars_sumsq=0))
    stars = conn.execute(
        select(
            results.c.config_hash,
            func.count(),
            func.sum(ratings.c.stars),
            func.sum(ratings.c.stars * ratings.c.stars),
        )
        .join(results, results.c.id == ratings.c.result_id)
        .where(ratings.c.id.in_(current_rating_ids()))
        .group_by(results.c.config_hash)
    ).all()
    for config_hash, n, total, total_sq in stars:
        _add_stars(conn, config_hash, int(n), int(total or 0), int(total_sq or 0))
    conn.execute(answer_stars.delete())
    failed = results.c.error.is_not(None)
    conn.execute(
        answer_stars.insert().from_select(
            ["result_id", "run_id", "config_hash", "failed", "created_at", "n", "total", "mean"],
            select(
                ratings.c.result_id,
                results.c.run_id,
                results.c.config_hash,
                failed,
                results.c.created_at,
                func.count(),
                func.sum(ratings.c.stars),
                cast(func.sum(ratings.c.stars), Float) / func.count(),
            )
            .join(results, results.c.id == ratings.c.result_id)
            .where(ratings.c.id.in_(current_rating_ids()))
            .group_by(
                ratings.c.result_id,
                results.c.run_id,
                results.c.config_hash,
                failed,
                results.c.created_at,
            ),
        )
    )
    conn.execute(pair_counts.delete())
    winner, loser = results.alias("winner"), results.alias("loser")
    votes = conn.execute(
        select(winner.c.config_hash, loser.c.config_hash, preferences.c.outcome, func.count())
        .join(winner, winner.c.id == preferences.c.winner_result_id)
        .join(loser, loser.c.id == preferences.c.loser_result_id)
        .where(preferences.c.id.in_(current_vote_ids()))
        .group_by(winner.c.config_hash, loser.c.config_hash, preferences.c.outcome)
    ).all()
    if votes:
        conn.execute(
            pair_counts.insert(),
            [
                {"winner_config": w, "loser_config": lo, "outcome": o, "n": int(n)}
                for w, lo, o, n in votes
            ],
        )
