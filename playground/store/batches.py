"""Batches of evaluation cells: the batch record, one row per finished cell, and the answer cache.

A cell (configuration x dataset row x repeat) is saved together with its run and result in ONE
transaction, so a batch killed at any moment has each cell either fully recorded or not at all:
resuming runs exactly the missing ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Table,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from playground.errors import NotFoundError
from playground.records import Result, RetrievedChunk, Run
from playground.store.runs import (
    _result_row,
    _run_row,
    result_from_row,
    run_from_row,
    storable,
)
from playground.store.schema import answer_cache, batch_cells, results, runs
from playground.store.schema import batches as batch_table

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from playground.store.database import Database


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class BatchRecord:
    """A batch: what it ran (spec_json holds configurations, evaluation and repeat) and how far."""

    id: str
    name: str
    dataset: str
    spec: dict[str, Any]
    created_at: datetime
    status: str
    total_cells: int
    finished_at: datetime | None = None
    done_cells: int = 0


@dataclass
class CellRecord:
    """One finished cell of a batch."""

    config_index: int
    row_index: int
    repeat_index: int
    status: str
    verdicts: list[dict[str, Any]]
    cached: bool
    run_id: str
    result_id: str
    result: Result | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    retrieved: list[RetrievedChunk] = field(default_factory=list)


@dataclass
class CellSave:
    """A finished cell to save: its run (batch_id, batch_row set), result and verdicts."""

    run: Run
    result: Result
    config_index: int
    repeat_index: int
    status: str
    verdicts: list[dict[str, Any]]
    cached: bool
    cache_key: str | None = None  # set to keep a fresh answer in the cache

    @property
    def key(self) -> tuple[int, int, int]:
        """(config, row, repeat)."""
        return (self.config_index, int(self.run.batch_row or 0), self.repeat_index)


@dataclass
class CachedAnswer:
    """An answer kept by content address, with the measurements of the call that made it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    usage_estimated: bool
    ttft_ms: float | None
    latency_ms: float | None
    tokens_per_s: float | None
    cost_usd: float


def _upsert_nothing(conn: Connection, table: Table, row: dict[str, Any]) -> None:
    if conn.dialect.name == "sqlite":
        conn.execute(sqlite_insert(table).values(**row).on_conflict_do_nothing())
    elif conn.dialect.name == "postgresql":
        conn.execute(postgresql_insert(table).values(**row).on_conflict_do_nothing())
    else:
        conn.execute(insert(table).values(**row))


class Batches:
    """Batch, cell and cache queries over the store's engine (`store.batches`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, batch_id: str, name: str, dataset: str, spec: dict[str, Any], total_cells: int
    ) -> None:
        """Record a new batch before its first cell runs."""
        with self.db.write() as conn:
            conn.execute(
                insert(batch_table).values(
                    id=batch_id,
                    name=name,
                    dataset=dataset,
                    spec_json=json.dumps(spec),
                    created_at=datetime.now(UTC),
                    status="running",
                    total_cells=total_cells,
                )
            )

    def set_status(self, batch_id: str, status: str) -> None:
        """Mark a batch running, done, cancelled or stopped."""
        finished = datetime.now(UTC) if status != "running" else None
        with self.db.write() as conn:
            conn.execute(
                update(batch_table)
                .where(batch_table.c.id == batch_id)
                .values(status=status, finished_at=finished)
            )

    def _record(self, row: Any, done: int) -> BatchRecord:
        return BatchRecord(
            id=row.id,
            name=row.name,
            dataset=row.dataset or "",
            spec=json.loads(row.spec_json or "{}"),
            created_at=_aware(row.created_at) or datetime.now(UTC),
            status=row.status or "done",
            total_cells=row.total_cells or 0,
            finished_at=_aware(row.finished_at),
            done_cells=done,
        )

    def get(self, batch_id: str) -> BatchRecord:
        """A batch by id or unique id prefix; NotFoundError if there is none."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(batch_table).where(batch_table.c.id.like(f"{batch_id}%")).limit(2)
            ).all()
            if len(rows) != 1:
                what = "is ambiguous" if rows else "does not exist"
                raise NotFoundError(
                    f"Batch {batch_id} {what}; `playground eval list` shows the batch ids."
                )
            done = conn.execute(
                select(func.count())
                .select_from(batch_cells)
                .where(batch_cells.c.batch_id == rows[0].id)
            ).scalar_one()
        return self._record(rows[0], int(done))

    def list(self, limit: int = 50) -> list[BatchRecord]:
        """Newest batches first, with how many cells each has finished."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(batch_table).order_by(batch_table.c.created_at.desc()).limit(limit)
            ).all()
            counts = dict(
                conn.execute(
                    select(batch_cells.c.batch_id, func.count())
                    .where(batch_cells.c.batch_id.in_([r.id for r in rows]))
                    .group_by(batch_cells.c.batch_id)
                ).all()
            )
        return [self._record(r, int(counts.get(r.id, 0))) for r in rows]

    def done_keys(self, batch_id: str) -> set[tuple[int, int, int]]:
        """(config, row, repeat) of every finished cell."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    batch_cells.c.config_index, batch_cells.c.row_index, batch_cells.c.repeat_index
                ).where(batch_cells.c.batch_id == batch_id)
            ).all()
        return {(r[0], r[1], r[2]) for r in rows}

    def save_cells(self, cells: Sequence[CellSave]) -> int:
        """Save finished cells with their runs and results (and cache their answers) in ONE
        transaction; cells another process saved first are skipped. Returns how many were new.
        """
        if not cells:
            return 0
        batch_id = cells[0].run.batch_id
        with self.db.write() as conn:
            saved = {
                (r[0], r[1], r[2])
                for r in conn.execute(
                    select(
                        batch_cells.c.config_index,
                        batch_cells.c.row_index,
                        batch_cells.c.repeat_index,
                    ).where(
                        batch_cells.c.batch_id == batch_id,
                        batch_cells.c.row_index.in_(sorted({c.run.batch_row for c in cells})),
                    )
                )
            }
            fresh = [c for c in cells if c.key not in saved]
            if not fresh:
                return 0
            now = datetime.now(UTC)
            # executemany of one compiled statement per table: a cached rerun of thousands of
            # cells is bound by these inserts, not by building statements row by row
            conn.execute(insert(runs), [_run_row(c.run) for c in fresh])
            conn.execute(
                insert(results), [_result_row(c.run.id, 0, c.result, c.run) for c in fresh]
            )
            conn.execute(
                insert(batch_cells),
                [
                    {
                        "batch_id": c.run.batch_id,
                        "config_index": c.config_index,
                        "row_index": c.run.batch_row,
                        "repeat_index": c.repeat_index,
                        "run_id": c.run.id,
                        "result_id": c.result.id,
                        "status": c.status,
                        "verdicts_json": json.dumps(c.verdicts),
                        "cached": int(c.cached),
                        "created_at": now,
                    }
                    for c in fresh
                ],
            )
            for c in fresh:
                if c.cache_key is not None:
                    _upsert_nothing(conn, answer_cache, _cache_row(c.cache_key, c.result, now))
        return len(fresh)

    def delete_cells(self, batch_id: str, statuses: set[str]) -> int:
        """Forget cells with these statuses (their runs stay in History) so they run again."""
        with self.db.write() as conn:
            return conn.execute(
                batch_cells.delete().where(
                    batch_cells.c.batch_id == batch_id, batch_cells.c.status.in_(sorted(statuses))
                )
            ).rowcount

    def cells(self, batch_id: str, with_results: bool = True) -> list[CellRecord]:
        """Every finished cell of a batch, in (config, row, repeat) order."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(batch_cells)
                .where(batch_cells.c.batch_id == batch_id)
                .order_by(
                    batch_cells.c.config_index, batch_cells.c.row_index, batch_cells.c.repeat_index
                )
            ).all()
            by_result: dict[str, Any] = {}
            by_run: dict[str, Any] = {}
            if with_results and rows:
                for r in conn.execute(
                    select(results).where(
                        results.c.run_id.in_(
                            select(batch_cells.c.run_id).where(batch_cells.c.batch_id == batch_id)
                        )
                    )
                ):
                    by_result[r.id] = r
                for r in conn.execute(select(runs).where(runs.c.batch_id == batch_id)):
                    by_run[r.id] = r
        found = []
        for row in rows:
            cell = CellRecord(
                config_index=row.config_index,
                row_index=row.row_index,
                repeat_index=row.repeat_index,
                status=row.status,
                verdicts=json.loads(row.verdicts_json),
                cached=bool(row.cached),
                run_id=row.run_id,
                result_id=row.result_id,
            )
            if row.run_id in by_run:
                run = run_from_row(by_run[row.run_id])
                cell.variables = run.variables
                cell.retrieved = run.retrieved
                if row.result_id in by_result:
                    cell.result = result_from_row(by_result[row.result_id], run.retrieval)
            found.append(cell)
        return found

    def cached_answers(self, keys: Sequence[str]) -> dict[str, CachedAnswer]:
        """The answers stored under these content addresses, by key (absent ones left out)."""
        found: dict[str, CachedAnswer] = {}
        with self.db.read() as conn:
            for start in range(0, len(keys), 500):  # well under every backend's bound-parameter cap
                chunk = sorted(set(keys[start : start + 500]))
                for row in conn.execute(select(answer_cache).where(answer_cache.c.key.in_(chunk))):
                    found[row.key] = CachedAnswer(
                        text=row.text,
                        prompt_tokens=row.prompt_tokens,
                        completion_tokens=row.completion_tokens,
                        usage_estimated=bool(row.usage_estimated),
                        ttft_ms=row.ttft_ms,
                        latency_ms=row.latency_ms,
                        tokens_per_s=row.tokens_per_s,
                        cost_usd=row.cost_usd,
                    )
        return found

    def cache_answer(self, key: str, result: Result) -> None:
        """Keep a successful answer and its original measurements under its content address."""
        with self.db.write() as conn:
            _upsert_nothing(conn, answer_cache, _cache_row(key, result, datetime.now(UTC)))


def _cache_row(key: str, result: Result, now: datetime) -> dict[str, Any]:
    return {
        "key": key,
        "text": storable(result.text),  # the same cap and NUL rule as the results table
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "usage_estimated": int(result.usage.estimated),
        "ttft_ms": result.ttft_ms,
        "latency_ms": result.latency_ms,
        "tokens_per_s": result.tokens_per_s,
        "cost_usd": result.cost_usd,
        "created_at": now,
    }


__all__ = [
    "BatchRecord",
    "Batches",
    "CachedAnswer",
    "CellRecord",
    "CellSave",
]
