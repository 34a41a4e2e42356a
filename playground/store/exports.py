"""Flat rows of answers, ratings and votes for CSV and JSON downloads and `playground runs`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from playground.history import HistoryFilters, RatingSummary
from playground.store.filters import current_rating_ids, run_conditions
from playground.store.runs import aware
from playground.store.schema import preferences, ratings, results, runs

if TYPE_CHECKING:
    from playground.store.database import Database
    from playground.store.ratings import Ratings


class Exports:
    """Flat rows of answers (with their stars), of every rating and of every vote."""

    def __init__(self, db: Database, ratings: Ratings) -> None:
        self.db = db
        self.ratings = ratings

    def export_results(
        self, filters: HistoryFilters | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """One flat row per answer of the matching runs (newest run first), for CSV/JSON."""
        conditions = run_conditions(filters or HistoryFilters(), self.db.backend)
        query = (
            select(
                runs.c.id.label("run_id"),
                runs.c.created_at.label("run_created_at"),
                runs.c.source,
                runs.c.variables_json,
                runs.c.store_name,
                runs.c.parent_run_id,
                results.c.id.label("result_id"),
                results.c.parent_result_id,
                results.c.model_id,
                results.c.variant_name,
                results.c.config_hash,
                results.c.params_json,
                results.c.system_template,
                results.c.user_template,
                results.c.examples_json,
                results.c.messages_json,
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
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        summaries = self.ratings.rating_summaries([r.result_id for r in rows])
        exported = []
        for row in rows:
            summary = summaries.get(row.result_id, RatingSummary())
            exported.append(
                {
                    "run_id": row.run_id,
                    "run_created_at": aware(row.run_created_at).isoformat(),
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
                    "few_shot": json.loads(row.examples_json) if row.examples_json else [],
                    # the whole conversation this answer replied to, as sent (every turn)
                    "messages": json.loads(row.messages_json),
                    "parent_run_id": row.parent_run_id,
                    "parent_result_id": row.parent_result_id,
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
        with self.db.read() as conn:
            current = set(conn.execute(current_rating_ids()).scalars())
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
                "created_at": aware(r.created_at).isoformat(),
                "current": r.id in current,
            }
            for r in rows
        ]

    def export_preferences(self) -> list[dict[str, Any]]:
        """Every stored pairwise preference row, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(select(preferences).order_by(preferences.c.id)).all()
        return [
            {
                "run_id": r.run_id,
                "winner_result_id": r.winner_result_id,
                "loser_result_id": r.loser_result_id,
                "outcome": r.outcome,
                "session_id": r.session_id,
                "created_at": aware(r.created_at).isoformat(),
            }
            for r in rows
        ]
