"""Saving and reading runs and their results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select

from playground.coalesce import Coalescer
from playground.errors import AmbiguousIdError, NotFoundError, StoreError
from playground.models.base import Message, ModelParams, Usage
from playground.models.response_format import ResponseFormat
from playground.records import Moderation, Result, RetrievalSettings, RetrievedChunk, Run
from playground.store.schema import preferences, ratings, results, runs, store_counts
from playground.store.tallies import forget_answers

if TYPE_CHECKING:
    from playground.store.database import Database


# What the store accepts from one cell. A prompt renders to at most prompts.MAX_RENDERED_CHARS
# per message, so the prompt cap only meets hand-made records; an answer comes from outside and
# may be anything, so a huge one is kept cut short with a marker rather than lost to an error.
MAX_ANSWER_CHARS = 1_000_000
MAX_PROMPT_CHARS = 4_000_000  # templates, messages and variables of one cell together
MAX_ERROR_CHARS = 4_000  # an error is one sentence; a server may echo a whole page
MAX_VARIANT_NAME_CHARS = 200  # results.variant_name (PostgreSQL enforces the length)
MAX_MODEL_ID_CHARS = 300  # results.model_id


def storable(text: str, limit: int = MAX_ANSWER_CHARS, what: str = "answer") -> str:
    """`text` as the store keeps it: no NUL characters, cut at `limit` with a marker saying so."""
    # PostgreSQL text cannot hold NUL (a DataError); show it as the replacement character.
    text = text.replace("\x00", "\ufffd")
    if len(text) <= limit:
        return text
    dropped = len(text) - limit
    return (
        f"{text[:limit]}\n\n[{what} truncated: the run store keeps {limit:,} characters, "
        f"{dropped:,} more were not kept]"
    )


def _label(text: str, limit: int) -> str:
    text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_prompt(run: Run, result: Result) -> None:
    size = len(result.system_template) + len(result.user_template)
    size += sum(len(m.content) for m in result.examples)
    size += sum(len(m.content) for m in result.messages)
    size += sum(len(str(k)) + len(str(v)) for k, v in run.variables.items())
    if size > MAX_PROMPT_CHARS:
        raise StoreError(
            f"The prompt of {_label(result.model_id, 80)} ({_label(result.variant_name, 80)}) "
            f"is {size:,} characters with its variables, more than the {MAX_PROMPT_CHARS:,} "
            "the run store keeps; shorten the prompt or its variables."
        )
    if len(result.model_id) > MAX_MODEL_ID_CHARS:
        raise StoreError(
            f"Model id {result.model_id[:60]}... is {len(result.model_id):,} characters, more "
            f"than the {MAX_MODEL_ID_CHARS} the run store keeps; give the model a shorter name."
        )


def aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _run_row(run: Run) -> dict[str, Any]:
    retrieval = None
    if run.retrieval is not None:
        chunks = [chunk.to_json() for chunk in run.retrieved]
        retrieval = json.dumps({"settings": run.retrieval.to_dict(), "chunks": chunks})
    return {
        "id": run.id,
        "created_at": run.created_at,
        "source": run.source,
        "variables_json": json.dumps(run.variables),  # json escapes NUL: no PostgreSQL error
        "store_name": run.retrieval.store if run.retrieval else None,
        "retrieval_json": retrieval,
        "batch_id": run.batch_id,
        "batch_row": run.batch_row,
        "flow_name": run.flow_name,
        "flow_version": run.flow_version,
        "session_id": run.session_id,
        "parent_run_id": run.parent_run_id,
    }


def _result_row(
    run_id: str, position: int, result: Result, run: Run | None = None
) -> dict[str, Any]:
    _check_prompt(run or Run(id=run_id), result)
    return {
        "id": result.id,
        "run_id": run_id,
        "created_at": result.created_at,
        "position": position,
        "variant_name": _label(result.variant_name, MAX_VARIANT_NAME_CHARS),
        "variant_note": storable(result.variant_note, MAX_ERROR_CHARS, "note") or None,
        "model_id": result.model_id,
        "params_json": result.params.model_dump_json(),
        "system_template": storable(result.system_template, MAX_PROMPT_CHARS, "template"),
        "user_template": storable(result.user_template, MAX_PROMPT_CHARS, "template"),
        "messages_json": json.dumps([m.model_dump() for m in result.messages]),
        "text": storable(result.text),
        "error": storable(result.error, MAX_ERROR_CHARS, "error") if result.error else None,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "usage_estimated": result.usage.estimated,
        "ttft_ms": result.ttft_ms,
        "latency_ms": result.latency_ms,
        "tokens_per_s": result.tokens_per_s,
        "cost_usd": result.cost_usd,
        "groundedness": result.groundedness,
        "chunk_ids_json": json.dumps(result.chunk_ids) if result.chunk_ids is not None else None,
        "moderation": result.moderation.to_json() if result.moderation is not None else None,
        "config_hash": result.config_hash,
        "response_format_json": (
            result.response_format.model_dump_json(by_alias=True)
            if result.response_format is not None
            else None
        ),
        "examples_json": (
            json.dumps([m.model_dump() for m in result.examples]) if result.examples else None
        ),
        "parent_result_id": result.parent_id,
    }


def result_from_row(row: Any, retrieval: RetrievalSettings | None = None) -> Result:
    """Rebuild a Result from a results row."""
    return Result(
        id=row.id,
        created_at=aware(row.created_at),
        model_id=row.model_id,
        messages=[Message(**m) for m in json.loads(row.messages_json)],
        params=ModelParams.model_validate_json(row.params_json),
        variant_name=row.variant_name,
        variant_note=row.variant_note or "",
        system_template=row.system_template,
        user_template=row.user_template,
        text=row.text,
        error=row.error,
        usage=Usage(row.prompt_tokens, row.completion_tokens, bool(row.usage_estimated)),
        ttft_ms=row.ttft_ms,
        latency_ms=row.latency_ms,
        tokens_per_s=row.tokens_per_s,
        cost_usd=row.cost_usd,
        groundedness=row.groundedness,
        chunk_ids=json.loads(row.chunk_ids_json) if row.chunk_ids_json else None,
        moderation=_moderation(row),
        retrieval=retrieval,
        response_format=_response_format(row),
        examples=[Message(**m) for m in json.loads(getattr(row, "examples_json", None) or "[]")],
        parent_id=getattr(row, "parent_result_id", None),
    )


def _moderation(row: Any) -> Moderation | None:
    stored = row.moderation
    if not stored:
        return None
    # Only this code writes the column; a verdict that does not parse was never shown either.
    try:
        return Moderation.from_json(stored)
    except ValueError:
        return None


def _response_format(row: Any) -> ResponseFormat | None:
    # getattr: queries that select only some columns of results build Results too
    stored = getattr(row, "response_format_json", None)
    return ResponseFormat.model_validate_json(stored) if stored else None


def run_from_row(row: Any) -> Run:
    """Rebuild a Run (without results) from a runs row."""
    retrieval = None
    retrieved: list[RetrievedChunk] = []
    if row.retrieval_json:
        data = json.loads(row.retrieval_json)
        retrieval = RetrievalSettings(**data["settings"])
        retrieved = [RetrievedChunk.from_json(c) for c in data.get("chunks") or []]
    return Run(
        id=row.id,
        created_at=aware(row.created_at),
        source=row.source,
        variables=json.loads(row.variables_json),
        retrieval=retrieval,
        retrieved=retrieved,
        batch_id=row.batch_id,
        batch_row=row.batch_row,
        flow_name=row.flow_name,
        flow_version=row.flow_version,
        session_id=row.session_id,
        parent_run_id=getattr(row, "parent_run_id", None),
    )


def assemble_runs(run_rows: Sequence[Any], result_rows: Sequence[Any]) -> list[Run]:
    """Runs (in run_rows order) with their results attached, from rows of both tables."""
    by_run: dict[str, list[Any]] = {}
    for row in result_rows:
        by_run.setdefault(row.run_id, []).append(row)
    found = []
    for row in run_rows:
        run = run_from_row(row)
        run.results = [result_from_row(r, run.retrieval) for r in by_run.get(run.id, [])]
        found.append(run)
    return found


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


_PG_SAVE_RESULT: list[Any] = []


def _pg_save_result() -> Any:
    """INSERT the run if absent and the result, as one PostgreSQL statement (built once)."""
    if not _PG_SAVE_RESULT:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        new_run = (
            pg_insert(runs)
            .values({c.name: bindparam(f"run_{c.name}", type_=c.type) for c in runs.columns})
            .on_conflict_do_nothing()
            .cte("new_run")
        )
        _PG_SAVE_RESULT.append(
            insert(results)
            .values({c.name: bindparam(f"res_{c.name}", type_=c.type) for c in results.columns})
            .add_cte(new_run)
        )
    return _PG_SAVE_RESULT[0]


_Cell = tuple[Run, Result, int]  # a finished cell: its run, its result, its position


class Runs:
    """Saving and reading runs and their results."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Cells that end together (48 models answering in the same second) share one
        # transaction: SQLite serialises writers, and 48 commits queued on its write lock
        # cost the last cell a quarter of a second. A lone cell is saved at once.
        self._group_saves: Coalescer[_Cell, StoreError | None] = Coalescer(
            self._save_cells, max_batch=256
        )

    def _ensure_run(self, conn: Connection, run: Run) -> None:
        # Insert-if-absent in one write: cells of one run finish in parallel threads (and, in a
        # team store, in several processes), so a read-then-insert would let two of them race.
        self.db.insert_ignoring_duplicates(conn, runs, [_run_row(run)])

    def save_run(self, run: Run) -> None:
        """Save a run and all its results in one transaction."""
        with self.db.write() as conn:
            self._ensure_run(conn, run)
            if run.results:
                conn.execute(
                    insert(results),
                    [_result_row(run.id, i, r, run) for i, r in enumerate(run.results)],
                )

    def save_runs(self, batch: Sequence[Run]) -> None:
        """Save many runs and their results in one transaction (a server's group commit)."""
        if not batch:
            return
        with self.db.write() as conn:
            self.db.insert_ignoring_duplicates(conn, runs, [_run_row(run) for run in batch])
            rows = [_result_row(r.id, i, res) for r in batch for i, res in enumerate(r.results)]
            if rows:
                conn.execute(insert(results), rows)

    def save_result(self, run: Run, result: Result, position: int = 0) -> None:
        """Save one finished result (and its run, the first time), whole or not at all.

        The app saves each cell as it finishes, so a crash mid-run loses only unfinished cells;
        cells that finish while another is being saved share the next transaction.
        """
        problem = self._group_saves([(run, result, position)])[0]
        if problem is not None:
            raise problem

    def _save_cells(self, cells: list[_Cell]) -> list[StoreError | None]:
        """Save cells of any runs in one transaction; each cell's own failure, or None.

        A cell the store refuses (too big, a vanished run) fails alone: the cells that ended
        with it are still saved, each on its own once their shared transaction has failed.
        """
        outcomes: list[StoreError | None] = [None] * len(cells)
        rows: dict[int, dict[str, Any]] = {}
        for index, (run, result, position) in enumerate(cells):
            try:
                rows[index] = _result_row(run.id, position, result, run)
            except StoreError as exc:
                outcomes[index] = exc
        try:
            self._insert_cells([cells[i] for i in rows], list(rows.values()))
        except StoreError as exc:
            if len(rows) == 1:
                outcomes[next(iter(rows))] = exc
                return outcomes
            for index, row in rows.items():
                try:
                    self._insert_cells([cells[index]], [row])
                except StoreError as alone:
                    outcomes[index] = alone
        return outcomes

    def _insert_cells(self, cells: Sequence[_Cell], rows: list[dict[str, Any]]) -> None:
        if not cells:
            return
        if self.db.backend == "postgresql" and len(cells) == 1:
            # One statement is its own transaction: one round trip instead of BEGIN, two
            # INSERTs and COMMIT, which is what lets many writers share a server.
            params = {f"run_{k}": v for k, v in _run_row(cells[0][0]).items()}
            params.update({f"res_{k}": v for k, v in rows[0].items()})
            self.db.execute_alone(_pg_save_result(), params)
            return
        new_runs = list({run.id: run for run, _, _ in cells}.values())
        with self.db.write() as conn:
            self.db.insert_ignoring_duplicates(conn, runs, [_run_row(run) for run in new_runs])
            # parameters apart from the statement: one cached compiled INSERT for every cell
            conn.execute(insert(results), rows)

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one run whose id is or starts with `prefix`.

        Headings show the first 8 characters of an id; any unique prefix works.

        :raises NotFoundError: no run has this id or prefix.
        :raises AmbiguousIdError: more than one run starts with it.
        """
        wanted = prefix.strip()
        if not wanted:
            raise NotFoundError("Give a run id (or its first characters) from the History page.")
        with self.db.read() as conn:
            exact = conn.execute(select(runs.c.id).where(runs.c.id == wanted)).scalar()
            if exact is not None:
                return str(exact)
            found = list(
                conn.execute(
                    select(runs.c.id)
                    .where(runs.c.id.like(_like_prefix(wanted), escape="\\"))
                    .order_by(runs.c.id)
                    .limit(3)
                ).scalars()
            )
        if not found:
            raise NotFoundError(f"No run with id {wanted}; check the id on the History page.")
        if len(found) > 1:
            raise AmbiguousIdError(
                f"Run id {wanted} is ambiguous: it starts {', '.join(found[:2])}"
                f"{' and more' if len(found) > 2 else ''}; give more characters."
            )
        return str(found[0])

    def get_run(self, run_id: str) -> Run:
        """A run with its results in cell order; NotFoundError if there is none."""
        with self.db.read() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
            if row is None:
                raise NotFoundError(f"No run with id {run_id}; check the id on the History page.")
            run = run_from_row(row)
            rows = conn.execute(
                select(results).where(results.c.run_id == run_id).order_by(results.c.position)
            ).all()
        run.results = [result_from_row(r, run.retrieval) for r in rows]
        return run

    def get_result(self, result_id: str) -> Result:
        """One result by id; NotFoundError if there is none."""
        with self.db.read() as conn:
            row = conn.execute(select(results).where(results.c.id == result_id)).first()
            if row is None:
                raise NotFoundError(f"No result with id {result_id}.")
            # the run's retrieval settings are part of the result's configuration (its hash)
            run_row = conn.execute(select(runs).where(runs.c.id == row.run_id)).one()
        return result_from_row(row, run_from_row(run_row).retrieval)

    def recent_runs(self, limit: int = 20, offset: int = 0) -> list[Run]:
        """The newest runs first, each with its results."""
        with self.db.read() as conn:
            run_rows = conn.execute(
                select(runs)
                .order_by(runs.c.created_at.desc(), runs.c.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            ids = [r.id for r in run_rows]
            result_rows = conn.execute(
                select(results).where(results.c.run_id.in_(ids)).order_by(results.c.position)
            ).all()
        return assemble_runs(run_rows, result_rows)

    def runs_by_ids(self, run_ids: Sequence[str]) -> list[Run]:
        """Runs with their results, in the order asked; NotFoundError names a missing id."""
        wanted = list(dict.fromkeys(run_ids))
        if not wanted:
            return []
        with self.db.read() as conn:
            run_rows = conn.execute(select(runs).where(runs.c.id.in_(wanted))).all()
            result_rows = conn.execute(
                select(results).where(results.c.run_id.in_(wanted)).order_by(results.c.position)
            ).all()
        by_id = {run.id: run for run in assemble_runs(run_rows, result_rows)}
        for run_id in run_ids:
            if run_id not in by_id:
                raise NotFoundError(f"No run with id {run_id}; check the id on the History page.")
        return [by_id[run_id] for run_id in run_ids]

    def conversation(self, run_id: str) -> list[Run]:
        """Every turn of the conversation that ends with `run_id`, first turn first."""
        turns = [self.get_run(run_id)]
        seen = {run_id}
        while (parent := turns[0].parent_run_id) is not None and parent not in seen:
            seen.add(parent)
            try:
                turns.insert(0, self.get_run(parent))
            except NotFoundError:  # an earlier turn was deleted: its messages are still here
                break
        return turns

    def follow_ups(self, run_id: str) -> list[str]:
        """Ids of the runs that follow up `run_id` (later turns), oldest first."""
        with self.db.read() as conn:
            return list(
                conn.execute(
                    select(runs.c.id)
                    .where(runs.c.parent_run_id == run_id)
                    .order_by(runs.c.created_at, runs.c.id)
                ).scalars()
            )

    def count_runs(self) -> int:
        """How many runs are stored (the counter m008's triggers keep, when there is one)."""
        with self.db.read() as conn:
            value = conn.execute(
                select(store_counts.c.value).where(store_counts.c.name == "runs")
            ).scalar()
            if value is None:
                value = conn.execute(select(func.count()).select_from(runs)).scalar_one()
            return int(value)

    def delete_run(self, run_id: str) -> None:
        """Delete a run with its answers, ratings and votes; search and counts forget it too.

        :raises NotFoundError: no run has this id.
        """
        with self.db.write() as conn:
            # Votes may point at these answers by id without a cascade: remove them first.
            answer_ids = select(results.c.id).where(results.c.run_id == run_id)
            forget_answers(conn, answer_ids)
            conn.execute(
                delete(preferences).where(
                    (preferences.c.run_id == run_id)
                    | preferences.c.winner_result_id.in_(answer_ids)
                    | preferences.c.loser_result_id.in_(answer_ids)
                )
            )
            conn.execute(delete(ratings).where(ratings.c.result_id.in_(answer_ids)))
            conn.execute(delete(results).where(results.c.run_id == run_id))
            gone = conn.execute(delete(runs).where(runs.c.id == run_id)).rowcount
            if not gone:
                raise NotFoundError(f"No run with id {run_id}; check the id on the History page.")
