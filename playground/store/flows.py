"""The SQL index of flow versions and labels; the YAML files on disk stay the source of truth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from playground.store.schema import (
    flow_label_history,
    flow_labels,
    flow_versions,
    ratings,
    results,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class FlowVersionRow:
    """One indexed version of a flow."""

    name: str
    version: int
    parent: int | None
    path: str
    sha256: str
    description: str
    model_id: str | None
    created_at: datetime


@dataclass
class LabelMove:
    """One move of a label: which version it pointed at, from which, and when."""

    name: str
    label: str
    version: int
    previous_version: int | None
    moved_at: datetime


@dataclass
class ConfigEvidence:
    """Ratings and runs of every result sharing one configuration hash."""

    rating_count: int
    rating_mean: float | None
    run_ids: list[str]


def _version_row(row: Any) -> FlowVersionRow:
    return FlowVersionRow(
        name=row.name,
        version=row.version,
        parent=row.parent,
        path=row.path,
        sha256=row.sha256,
        description=row.description or "",
        model_id=row.model_id,
        created_at=_aware(row.created_at),
    )


class FlowIndexMixin:
    """Flow index queries of the Store."""

    engine: Engine

    def index_flow_version(self, row: FlowVersionRow) -> bool:
        """Record a saved version; False if that name and version were already indexed."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(flow_versions).values(
                        name=row.name,
                        version=row.version,
                        parent=row.parent,
                        path=row.path,
                        sha256=row.sha256,
                        description=row.description,
                        model_id=row.model_id,
                        created_at=row.created_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    def flow_version_rows(self, name: str) -> list[FlowVersionRow]:
        """Every indexed version of a flow, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(flow_versions)
                .where(flow_versions.c.name == name)
                .order_by(flow_versions.c.version)
            ).all()
        return [_version_row(r) for r in rows]

    def flow_version_row(self, name: str, version: int) -> FlowVersionRow | None:
        """One indexed version, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(flow_versions).where(
                    flow_versions.c.name == name, flow_versions.c.version == version
                )
            ).first()
        return _version_row(row) if row else None

    def latest_flow_version(self, name: str) -> int | None:
        """The highest indexed version of a flow, or None if it has none."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.max(flow_versions.c.version)).where(flow_versions.c.name == name)
            ).scalar_one_or_none()
        return int(value) if value is not None else None

    def flow_names(self) -> list[str]:
        """Names of every indexed flow, alphabetically."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(flow_versions.c.name).distinct().order_by(flow_versions.c.name)
            ).scalars()
            return list(rows)

    def flow_labels(self, name: str) -> dict[str, int]:
        """Current labels of a flow: label -> version."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(flow_labels.c.label, flow_labels.c.version)
                .where(flow_labels.c.name == name)
                .order_by(flow_labels.c.label)
            ).all()
        return {r.label: r.version for r in rows}

    def move_flow_label(self, name: str, label: str, version: int) -> int | None:
        """Point a label at a version and record the move; returns the previous version."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            previous = conn.execute(
                select(flow_labels.c.version).where(
                    flow_labels.c.name == name, flow_labels.c.label == label
                )
            ).scalar_one_or_none()
            if previous is None:
                conn.execute(
                    insert(flow_labels).values(
                        name=name, label=label, version=version, updated_at=now
                    )
                )
            else:
                conn.execute(
                    update(flow_labels)
                    .where(flow_labels.c.name == name, flow_labels.c.label == label)
                    .values(version=version, updated_at=now)
                )
            conn.execute(
                insert(flow_label_history).values(
                    name=name,
                    label=label,
                    version=version,
                    previous_version=previous,
                    moved_at=now,
                )
            )
        return previous

    def flow_label_moves(self, name: str, label: str | None = None) -> list[LabelMove]:
        """Every recorded move of a flow's labels (or of one label), oldest first."""
        query = select(flow_label_history).where(flow_label_history.c.name == name)
        if label is not None:
            query = query.where(flow_label_history.c.label == label)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(flow_label_history.c.id)).all()
        return [
            LabelMove(r.name, r.label, r.version, r.previous_version, _aware(r.moved_at))
            for r in rows
        ]

    def config_evidence(self, config_hash: str) -> ConfigEvidence:
        """Star ratings and run ids of every stored result with this configuration hash.

        Like the leaderboard, only the latest stars per (answer, session) count.
        """
        current = (
            select(func.max(ratings.c.id))
            .where(ratings.c.stars.is_not(None))
            .group_by(ratings.c.result_id, ratings.c.session_id)
        )
        with self.engine.connect() as conn:
            stats = conn.execute(
                select(func.count(ratings.c.stars), func.avg(ratings.c.stars))
                .select_from(ratings.join(results, ratings.c.result_id == results.c.id))
                .where(results.c.config_hash == config_hash, ratings.c.id.in_(current))
            ).one()
            run_ids = conn.execute(
                select(results.c.run_id)
                .where(results.c.config_hash == config_hash)
                .group_by(results.c.run_id)
                .order_by(func.min(results.c.created_at))
            ).scalars()
            runs = list(run_ids)
        count = int(stats[0] or 0)
        mean = round(float(stats[1]), 2) if count else None
        return ConfigEvidence(count, mean, runs)
