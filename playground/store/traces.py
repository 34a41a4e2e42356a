"""Served calls as the Monitor sees them, online scores, and alert state (`store.traces`).

Served calls are ordinary runs (`source = "serve"`); this part reads them back per flow and
version, and owns the two tables serving adds: online scores and alert state/events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Select,
    insert,
    select,
    update,
)

from playground.records import utc_now
from playground.store.runs import aware as _aware
from playground.store.schema import alert_events, alert_state, online_scores, ratings, results, runs

if TYPE_CHECKING:
    from playground.store.database import Database

SERVE_SOURCE = "serve"


@dataclass
class ServedCall:
    """One served call as the Monitor needs it."""

    run_id: str
    result_id: str
    created_at: datetime
    flow_name: str | None
    flow_version: int | None
    error: str | None
    latency_ms: float | None
    ttft_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    groundedness: float | None
    text: str
    variables_json: str


@dataclass
class OnlineScore:
    """One reference-free scorer's verdict on one served answer."""

    result_id: str
    run_id: str
    flow_name: str | None
    flow_version: int | None
    scorer: str
    status: str
    score: float | None
    reason: str
    created_at: datetime


@dataclass
class FeedbackRow:
    """Stars given to a served answer."""

    result_id: str
    flow_name: str | None
    flow_version: int | None
    stars: int | None
    comment: str | None
    created_at: datetime


@dataclass
class AlertEvent:
    """A breach or recovery of an alert and whether its webhook got it."""

    id: int
    name: str
    kind: str
    value: float | None
    message: str
    webhook: str | None
    delivered: bool
    attempts: int
    last_error: str | None
    created_at: datetime


class TracesPart:
    """Queries over served calls, online scores and alerts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- served calls ----------------------------------------------------------------------

    def served_calls(self, since: datetime, flow: str | None = None) -> list[ServedCall]:
        """Served calls since a time, oldest first, optionally of one flow."""
        query = (
            select(
                runs.c.id.label("run_id"),
                results.c.id.label("result_id"),
                runs.c.created_at,
                runs.c.flow_name,
                runs.c.flow_version,
                runs.c.variables_json,
                results.c.error,
                results.c.latency_ms,
                results.c.ttft_ms,
                results.c.prompt_tokens,
                results.c.completion_tokens,
                results.c.cost_usd,
                results.c.groundedness,
                results.c.text,
            )
            .select_from(runs.join(results, results.c.run_id == runs.c.id))
            .where(runs.c.source == SERVE_SOURCE, runs.c.created_at >= since)
            .order_by(runs.c.created_at)
        )
        if flow is not None:
            query = query.where(runs.c.flow_name == flow)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [
            ServedCall(
                run_id=r.run_id,
                result_id=r.result_id,
                created_at=_aware(r.created_at),
                flow_name=r.flow_name,
                flow_version=r.flow_version,
                error=r.error,
                latency_ms=r.latency_ms,
                ttft_ms=r.ttft_ms,
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.completion_tokens,
                cost_usd=r.cost_usd,
                groundedness=r.groundedness,
                text=r.text,
                variables_json=r.variables_json,
            )
            for r in rows
        ]

    def served_feedback(self, since: datetime, flow: str | None = None) -> list[FeedbackRow]:
        """Ratings given to served answers since a time, oldest first."""
        query = _feedback_query().where(
            runs.c.source == SERVE_SOURCE, ratings.c.created_at >= since
        )
        if flow is not None:
            query = query.where(runs.c.flow_name == flow)
        return self._feedback(query)

    def feedback_for(self, result_ids: list[str]) -> list[FeedbackRow]:
        """Every rating of these results, oldest first (for "Add to dataset")."""
        if not result_ids:
            return []
        return self._feedback(_feedback_query().where(ratings.c.result_id.in_(result_ids)))

    def _feedback(self, query: Select[Any]) -> list[FeedbackRow]:
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(ratings.c.id)).all()
        return [
            FeedbackRow(
                r.result_id, r.flow_name, r.flow_version, r.stars, r.comment, _aware(r.created_at)
            )
            for r in rows
        ]

    # -- online scores ---------------------------------------------------------------------

    def add_scores(self, scores: list[OnlineScore]) -> None:
        """Store scorer verdicts in one transaction."""
        if not scores:
            return
        with self.db.write() as conn:
            conn.execute(
                insert(online_scores),
                [
                    {
                        "result_id": s.result_id,
                        "run_id": s.run_id,
                        "flow_name": s.flow_name,
                        "flow_version": s.flow_version,
                        "scorer": s.scorer,
                        "status": s.status,
                        "score": s.score,
                        "reason": s.reason,
                        "created_at": s.created_at,
                    }
                    for s in scores
                ],
            )

    def scores_since(self, since: datetime, flow: str | None = None) -> list[OnlineScore]:
        """Online scores since a time, oldest first."""
        query = select(online_scores).where(online_scores.c.created_at >= since)
        if flow is not None:
            query = query.where(online_scores.c.flow_name == flow)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(online_scores.c.id)).all()
        return [
            OnlineScore(
                r.result_id,
                r.run_id,
                r.flow_name,
                r.flow_version,
                r.scorer,
                r.status,
                r.score,
                r.reason or "",
                _aware(r.created_at),
            )
            for r in rows
        ]

    # -- alerts ----------------------------------------------------------------------------

    def alert_states(self) -> dict[str, tuple[bool, float | None, datetime | None]]:
        """name -> (firing, last value, firing since)."""
        with self.db.read() as conn:
            rows = conn.execute(select(alert_state)).all()
        return {
            r.name: (bool(r.firing), r.value, _aware(r.since) if r.since else None) for r in rows
        }

    def flip_alert(self, name: str, firing: bool, value: float | None) -> bool:
        """Set an alert's state; True only for the caller that changed it (one POST per flip).

        Several replicas evaluate the same rules; the conditional update lets exactly one of
        them see the transition.
        """
        now = utc_now()
        with self.db.write() as conn:
            exists = conn.execute(
                select(alert_state.c.name).where(alert_state.c.name == name)
            ).first()
            if exists is None:
                if not firing:
                    conn.execute(
                        insert(alert_state).values(
                            name=name, firing=False, value=value, since=None, updated_at=now
                        )
                    )
                    return False
                conn.execute(
                    insert(alert_state).values(
                        name=name, firing=True, value=value, since=now, updated_at=now
                    )
                )
                return True
            changed = conn.execute(
                update(alert_state)
                .where(alert_state.c.name == name, alert_state.c.firing == (not firing))
                .values(firing=firing, value=value, since=now if firing else None, updated_at=now)
            ).rowcount
            if not changed:
                conn.execute(
                    update(alert_state)
                    .where(alert_state.c.name == name)
                    .values(value=value, updated_at=now)
                )
        return bool(changed)

    def add_alert_event(
        self, name: str, kind: str, value: float | None, message: str, webhook: str | None
    ) -> int:
        """Record a breach or recovery (not yet delivered) and return its id."""
        with self.db.write() as conn:
            row = conn.execute(
                insert(alert_events)
                .values(
                    name=name,
                    kind=kind,
                    value=value,
                    message=message,
                    webhook=webhook,
                    delivered=False,
                    attempts=0,
                    last_error=None,
                    created_at=utc_now(),
                )
                .returning(alert_events.c.id)
            ).first()
        return int(row.id) if row else 0

    def mark_delivery(
        self, event_id: int, delivered: bool, attempts: int, error: str | None
    ) -> None:
        """Record how a webhook delivery went."""
        with self.db.write() as conn:
            conn.execute(
                update(alert_events)
                .where(alert_events.c.id == event_id)
                .values(delivered=delivered, attempts=attempts, last_error=error)
            )

    def alert_events(self, limit: int = 50) -> list[AlertEvent]:
        """The newest alert events first."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(alert_events).order_by(alert_events.c.id.desc()).limit(limit)
            ).all()
        return [_event(r) for r in rows]


def _event(r: Any) -> AlertEvent:
    return AlertEvent(
        r.id,
        r.name,
        r.kind,
        r.value,
        r.message,
        r.webhook,
        bool(r.delivered),
        r.attempts,
        r.last_error,
        _aware(r.created_at),
    )


def _feedback_query() -> Select[Any]:
    # ratings with the flow and version of the run whose answer they rate
    return select(
        ratings.c.result_id,
        ratings.c.stars,
        ratings.c.comment,
        ratings.c.created_at,
        runs.c.flow_name,
        runs.c.flow_version,
    ).select_from(
        ratings.join(results, ratings.c.result_id == results.c.id).join(
            runs, results.c.run_id == runs.c.id
        )
    )
