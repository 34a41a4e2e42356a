"""The SQL index of flow versions and labels; the YAML files on disk stay the source of truth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update

from playground.store.runs import aware
from playground.store.schema import flow_label_history, flow_labels, flow_versions

if TYPE_CHECKING:
    from playground.store.database import Database


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


def _version_row(row: Any) -> FlowVersionRow:
    return FlowVersionRow(
        name=row.name,
        version=row.version,
        parent=row.parent,
        path=row.path,
        sha256=row.sha256,
        description=row.description or "",
        model_id=row.model_id,
        created_at=aware(row.created_at),
    )


class Flows:
    """The index of saved flow versions, their labels and every move of a label."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def index_flow_version(self, row: FlowVersionRow) -> bool:
        """Record a saved version; False if that name and version were already indexed."""
        values = {
            "name": row.name,
            "version": row.version,
            "parent": row.parent,
            "path": row.path,
            "sha256": row.sha256,
            "description": row.description,
            "model_id": row.model_id,
            "created_at": row.created_at,
        }
        with self.db.write() as conn:
            added = self.db.insert_ignoring_duplicates(conn, flow_versions, [values])
        return added > 0

    def flow_version_rows(self, name: str) -> list[FlowVersionRow]:
        """Every indexed version of a flow, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(flow_versions)
                .where(flow_versions.c.name == name)
                .order_by(flow_versions.c.version)
            ).all()
        return [_version_row(r) for r in rows]

    def flow_version_row(self, name: str, version: int) -> FlowVersionRow | None:
        """One indexed version, or None."""
        with self.db.read() as conn:
            row = conn.execute(
                select(flow_versions).where(
                    flow_versions.c.name == name, flow_versions.c.version == version
                )
            ).first()
        return _version_row(row) if row else None

    def latest_flow_version(self, name: str) -> int | None:
        """The highest indexed version of a flow, or None if it has none."""
        with self.db.read() as conn:
            value = conn.execute(
                select(func.max(flow_versions.c.version)).where(flow_versions.c.name == name)
            ).scalar_one_or_none()
        return int(value) if value is not None else None

    def flow_names(self) -> list[str]:
        """Names of every indexed flow, alphabetically."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(flow_versions.c.name).distinct().order_by(flow_versions.c.name)
            ).scalars()
            return list(rows)

    def flow_labels(self, name: str) -> dict[str, int]:
        """Current labels of a flow: label -> version."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(flow_labels.c.label, flow_labels.c.version)
                .where(flow_labels.c.name == name)
                .order_by(flow_labels.c.label)
            ).all()
        return {r.label: r.version for r in rows}

    def move_flow_label(self, name: str, label: str, version: int) -> int | None:
        """Point a label at a version and record the move; returns the previous version."""
        now = datetime.now(UTC)
        with self.db.write() as conn:
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
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(flow_label_history.c.id)).all()
        return [
            LabelMove(r.name, r.label, r.version, r.previous_version, aware(r.moved_at))
            for r in rows
        ]
