"""Copy one store into another (a SQLite home into a team's PostgreSQL), idempotently.

Rows with ids of their own (runs, results, flow versions) are inserted unless their key is
there already. Ratings, votes and label moves get new ids in the target, which may hold other
people's rows; a row counts as copied when one with the same answer, session and time exists.
Each batch is one transaction, so an interrupted copy keeps whole batches and a rerun adds only
what is missing: running it twice copies nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from playground.errors import StoreError
from playground.store import Store, tallies
from playground.store.runs import aware
from playground.store.schema import (
    batches,
    flow_label_history,
    flow_labels,
    flow_versions,
    preferences,
    ratings,
    results,
    runs,
)

BATCH_ROWS = 500

# Parents before children. For tables whose ids the target assigns: the columns that say two
# rows are the same row.
COPIED: list[tuple[Table, tuple[str, ...] | None]] = [
    (batches, None),
    (runs, None),
    (results, None),
    (ratings, ("result_id", "session_id", "created_at")),
    (preferences, ("run_id", "winner_result_id", "loser_result_id", "session_id", "created_at")),
    (flow_versions, None),
    (flow_labels, None),
    (flow_label_history, ("name", "label", "version", "moved_at")),
]


@dataclass
class CopyReport:
    """Rows copied and rows already in the target, per table."""

    copied: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)

    @property
    def total_copied(self) -> int:
        """Rows added to the target by this copy."""
        return sum(self.copied.values())

    def summary(self) -> str:
        """One line: what was copied, and how much was there already."""
        parts = [f"{self.copied.get(t.name, 0)} {t.name}" for t, _ in COPIED]
        return f"Copied {', '.join(parts)}; {sum(self.present.values())} rows were already there."


def source_rows(source: Store) -> int:
    """How many rows a copy from this store reads (for a progress bar)."""
    with source.db.read() as conn:
        return sum(
            int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table, _ in COPIED
        )


def _batches(conn: Connection, table: Table, size: int) -> Iterator[list[dict[str, Any]]]:
    order = list(table.primary_key.columns)
    offset = 0
    while True:
        rows = conn.execute(select(table).order_by(*order).limit(size).offset(offset)).all()
        if not rows:
            return
        yield [dict(row._mapping) for row in rows]
        offset += len(rows)


def _key(row: dict[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    return tuple(
        aware(row[c]) if c.endswith("_at") and row[c] is not None else row[c] for c in columns
    )


def _missing_by_key(
    conn: Connection, table: Table, rows: list[dict[str, Any]], natural: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The rows of this batch with no row of the same natural key in the target."""
    first = natural[0]
    existing = {
        _key(dict(row._mapping), natural)
        for row in conn.execute(
            select(*(table.c[c] for c in natural)).where(
                table.c[first].in_({row[first] for row in rows})
            )
        )
    }
    fresh, seen = [], set(existing)
    for row in rows:
        key = _key(row, natural)
        if key not in seen:
            seen.add(key)
            fresh.append({c: v for c, v in row.items() if c != "id"})
    return fresh


def _insert_new(target: Store, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert rows whose primary key the target lacks; return how many were added."""
    key = [c.name for c in table.primary_key.columns]
    columns = [table.c[c] for c in key]
    wanted = [tuple(r[c] for c in key) for r in rows]
    if len(columns) == 1:
        where = columns[0].in_([k[0] for k in wanted])
    else:
        where = tuple_(*columns).in_(wanted)
    have = {tuple(row) for row in conn.execute(select(*columns).where(where))}
    fresh = [r for r in rows if tuple(r[c] for c in key) not in have]
    if not fresh:
        return 0
    if table is flow_labels:
        # A label may have moved since the last copy: the source's current pointer wins.
        insert = sqlite_insert if target.backend == "sqlite" else postgresql_insert
        statement = insert(table)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=key,
                set_={
                    "version": statement.excluded.version,
                    "updated_at": statement.excluded.updated_at,
                },
            ),
            fresh,
        )
    else:
        target.db.insert_ignoring_duplicates(conn, table, fresh)
    return len(fresh)


def copy_store(
    source: Store,
    target: Store,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int], None] | None = None,
) -> CopyReport:
    """Copy every run, result, rating, vote and flow-index row that `target` lacks.

    :param progress: called with the number of source rows read after each batch.
    """
    if source.db.url == target.db.url:
        raise StoreError(f"{target.url} is the store being copied; give another --to.")
    report = CopyReport()
    with source.db.read() as reading:
        for table, natural in COPIED:
            copied = present = 0
            for rows in _batches(reading, table, batch_rows):
                with target.db.write() as conn:
                    if natural is None:
                        added = _insert_new(target, conn, table, rows)
                    else:
                        fresh = _missing_by_key(conn, table, rows, natural)
                        if fresh:
                            conn.execute(table.insert(), fresh)
                        added = len(fresh)
                copied += added
                present += len(rows) - added
                if progress is not None:
                    progress(len(rows))
            report.copied[table.name] = copied
            report.present[table.name] = present
    if report.copied.get("ratings") or report.copied.get("preferences"):
        # Copied rows bypass the rating and vote write path: recount Compare's tallies once.
        with target.db.write() as conn:
            tallies.recount(conn)
    return report
