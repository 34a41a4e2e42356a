"""The run store: runs and results round-trip through SQLite and PostgreSQL, migrations once."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from playground.config import load_settings
from playground.errors import NotFoundError
from playground.models.base import Message, ModelParams, Usage
from playground.records import (
    Draft,
    Moderation,
    Result,
    RetrievalSettings,
    RetrievedChunk,
    Run,
    new_id,
)
from playground.store import Store, open_store
from playground.store.migrations import MIGRATIONS, migrations_table
from playground.store.schema import results, runs

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where an on-disk store lives."""
    return tmp_path / "data" / "playground.db"


@pytest.fixture
def store(backend_store: Store) -> Store:
    """A fresh store on SQLite, then on PostgreSQL (see backend_url in conftest.py)."""
    return backend_store


def full_result(model_id: str = "local/smollm2-135m-instruct", **changes: object) -> Result:
    """A result with every field set to something other than its default."""
    result = Result(
        model_id=model_id,
        messages=[
            Message(role="system", content="Answer from the context."),
            Message(role="user", content="Is the tent waterproof? ünïcode ✓"),
        ],
        params=ModelParams(temperature=0.2, top_p=0.9, max_tokens=64, seed=7, stop=["END"]),
        variant_name="short",
        variant_note="fewer words",
        system_template="Answer from the {{ source }}.",
        user_template="{{ question }}",
        text="Yes, it is.\n<b>not html</b>",
        error=None,
        usage=Usage(prompt_tokens=31, completion_tokens=5, estimated=True),
        ttft_ms=12.5,
        latency_ms=80.25,
        tokens_per_s=61.5,
        cost_usd=0.000123,
        groundedness=0.75,
        chunk_ids=["c1", "c2"],
        moderation=Moderation(flagged=True, categories=["violence"], model="omni-moderation"),
        retrieval=RetrievalSettings(store="manuals", top_k=3, query="{{ question }}"),
        created_at=T0 + timedelta(seconds=1),
    )
    for name, value in changes.items():
        setattr(result, name, value)
    return result


def full_run(**changes: object) -> Run:
    """A run with every field set, holding two results."""
    retrieval = RetrievalSettings(store="manuals", top_k=3, query="{{ question }}")
    run = Run(
        source="cli",
        variables={"question": "Is the tent waterproof?", "source": "context"},
        retrieval=retrieval,
        retrieved=[RetrievedChunk("c1", "The tent is waterproof.", score=0.9)],
        results=[
            full_result(),
            full_result(
                "srv/other",
                error="srv/other failed with a server error (500).",
                text="",
                ttft_ms=None,
                tokens_per_s=None,
                groundedness=None,
                chunk_ids=None,
            ),
        ],
        batch_id=None,
        batch_row=4,
        flow_name="gear-support",
        flow_version=3,
        session_id="session-1",
        created_at=T0,
    )
    for name, value in changes.items():
        setattr(run, name, value)
    return run


def test_a_saved_run_reads_back_field_for_field(store: Store) -> None:
    run = full_run()

    store.runs.save_run(run)
    loaded = store.runs.get_run(run.id)

    assert loaded == run
    assert loaded.created_at.tzinfo is not None
    assert loaded.results[0].config_hash == run.results[0].config_hash


def test_a_run_without_retrieval_reads_back_without_it(store: Store) -> None:
    run = full_run(retrieval=None, retrieved=[], flow_name=None, flow_version=None)
    for result in run.results:
        result.retrieval = None

    store.runs.save_run(run)

    assert store.runs.get_run(run.id) == run


# The texts the store wrote before chunks and verdicts were typed (json.dumps of plain dicts).
OLD_RETRIEVAL_JSON = (
    '{"settings": {"store": "manuals", "top_k": 2, "query": "{{ question }}", '
    '"context_variable": "context"}, "chunks": [{"id": "c1", "text": "The fly is rated to '
    '3000 mm.", "source": "tent.pdf", "page": 3, "score": 0.8123}, {"id": "c2", "text": '
    '"Seams are taped.", "source": "tent.md", "page": null, "score": 0.5}]}'
)
OLD_MODERATION_JSON = (
    '{"flagged": true, "categories": ["hate", "violence"], "model": "omni-moderation-latest"}'
)


def _stored_texts(store: Store, run_id: str) -> tuple[str | None, list[str | None]]:
    """The raw retrieval_json of a run and the moderation texts of its results."""
    with store.db.read() as conn:
        retrieval = conn.execute(
            select(runs.c.retrieval_json).where(runs.c.id == run_id)
        ).scalar_one()
        moderation = conn.execute(
            select(results.c.moderation)
            .where(results.c.run_id == run_id)
            .order_by(results.c.position)
        ).scalars()
        return retrieval, list(moderation)


def _overwrite(store: Store, run: Run, retrieval_json: str, moderation: list[str | None]) -> None:
    """Put texts as older code wrote them into a saved run's rows."""
    with store.db.write() as conn:
        conn.execute(update(runs).where(runs.c.id == run.id).values(retrieval_json=retrieval_json))
        for result, text_ in zip(run.results, moderation, strict=True):
            conn.execute(update(results).where(results.c.id == result.id).values(moderation=text_))


def test_old_rows_load_typed_and_save_back_byte_for_byte(store: Store) -> None:
    run = full_run()
    store.runs.save_run(run)
    _overwrite(store, run, OLD_RETRIEVAL_JSON, [OLD_MODERATION_JSON, None])

    loaded = store.runs.get_run(run.id)

    assert loaded.retrieved == [
        RetrievedChunk("c1", "The fly is rated to 3000 mm.", "tent.pdf", 3, 0.8123),
        RetrievedChunk("c2", "Seams are taped.", "tent.md", None, 0.5),
    ]
    first, second = loaded.results
    assert first.moderation == Moderation(True, ["hate", "violence"], "omni-moderation-latest")
    assert second.moderation is None
    # Saved again (as a copy), the typed values write exactly the texts they were read from.
    copy = replace(loaded, id=new_id(), results=[replace(r, id=new_id()) for r in loaded.results])
    store.runs.save_run(copy)
    assert _stored_texts(store, copy.id) == (OLD_RETRIEVAL_JSON, [OLD_MODERATION_JSON, None])
    assert store.runs.get_run(copy.id).retrieved == loaded.retrieved


def test_stored_chunks_and_verdicts_with_missing_keys_still_load(store: Store) -> None:
    run = full_run()
    store.runs.save_run(run)
    sparse = (
        '{"settings": {"store": "manuals"}, "chunks": [{"id": "c1", "text": "Taped seams."}, '
        '{"id": "c2"}]}'
    )
    _overwrite(store, run, sparse, ['{"flagged": true}', '{"flagged": false}'])

    loaded = store.runs.get_run(run.id)

    assert loaded.retrieval == RetrievalSettings(store="manuals")
    assert loaded.retrieved == [RetrievedChunk("c1", "Taped seams."), RetrievedChunk("c2")]
    assert [r.moderation for r in loaded.results] == [Moderation(True), Moderation(False)]
    assert [r.moderation.label for r in loaded.results if r.moderation] == [
        "flagged: unspecified",
        "ok",
    ]


def test_results_saved_one_by_one_join_the_same_run(store: Store) -> None:
    run = full_run(results=[])
    first, second = full_result("a/m"), full_result("b/m")

    store.runs.save_result(run, second, position=1)
    store.runs.save_result(run, first, position=0)

    loaded = store.runs.get_run(run.id)
    assert [r.model_id for r in loaded.results] == ["a/m", "b/m"]
    assert store.runs.count_runs() == 1


def test_a_result_read_by_id_keeps_its_configuration(store: Store) -> None:
    run = full_run()
    store.runs.save_run(run)

    loaded = store.runs.get_result(run.results[0].id)

    assert loaded == run.results[0]
    assert loaded.config_hash == run.results[0].config_hash


def test_an_unknown_run_id_is_one_sentence(store: Store) -> None:
    with pytest.raises(NotFoundError) as caught:
        store.runs.get_run("0123456789abcdef")

    assert str(caught.value) == (
        "No run with id 0123456789abcdef; check the id on the History page."
    )


def test_an_unknown_result_id_is_one_sentence(store: Store) -> None:
    with pytest.raises(NotFoundError) as caught:
        store.runs.get_result("feedface")

    assert str(caught.value) == "No result with id feedface."


def test_recent_runs_are_newest_first_with_their_results(store: Store) -> None:
    runs = [full_run(created_at=T0 + timedelta(minutes=m)) for m in (5, 1, 9, 3)]
    for run in runs:
        store.runs.save_run(run)

    recent = store.runs.recent_runs(limit=3)

    assert [r.created_at for r in recent] == [T0 + timedelta(minutes=m) for m in (9, 5, 3)]
    assert all(len(r.results) == 2 for r in recent)
    assert [r.created_at for r in store.runs.recent_runs(limit=3, offset=3)] == [
        T0 + timedelta(minutes=1)
    ]


def test_the_sqlite_database_uses_wal_journal_mode(db_path: Path) -> None:
    store = Store(f"sqlite:///{db_path}")
    with store.db.engine.connect() as conn:
        mode = conn.execute(text("PRAGMA journal_mode")).scalar_one()
    store.close()

    assert mode == "wal"
    assert db_path.is_file()


def test_migrations_apply_once_and_are_recorded(backend_url: str) -> None:
    first = Store(backend_url)
    with first.db.engine.connect() as conn:
        recorded = conn.execute(select(migrations_table)).all()
    first.close()

    reopened = Store(backend_url)
    with reopened.db.engine.connect() as conn:
        after_reopen = conn.execute(select(migrations_table)).all()
    applied_again = reopened.migrate()
    reopened.close()

    assert [row.name for row in recorded] == [name for name, _ in MIGRATIONS]
    assert after_reopen == recorded  # same names, same applied_at: nothing re-ran
    assert applied_again == []


def test_open_store_puts_the_database_in_the_data_home(home: Path) -> None:
    settings = load_settings()

    store = open_store(settings)
    store.runs.save_run(full_run())

    assert open_store(settings) is store
    assert (home / "playground.db").is_file()
    assert store.runs.count_runs() == 1


def test_a_stored_run_reloads_into_the_editor(store: Store) -> None:
    run = full_run()
    store.runs.save_run(run)

    draft = Draft.from_run(store.runs.get_run(run.id))

    assert [v.name for v in draft.variants] == ["short"]
    assert draft.variants[0].user == "{{ question }}"
    assert draft.model_ids == ["local/smollm2-135m-instruct", "srv/other"]
    assert draft.params["srv/other"].seed == 7
    assert draft.variables == run.variables


def test_cells_of_one_run_saved_from_parallel_threads_all_land(store: Store) -> None:
    import threading

    run = full_run()
    cells = [full_result(f"local/model-{i}") for i in range(8)]
    run.results = []
    barrier = threading.Barrier(len(cells))
    errors: list[BaseException] = []

    def save(position: int, result: Result) -> None:
        barrier.wait()  # every cell of the new run reaches the store at the same moment
        try:
            store.runs.save_result(run, result, position)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i, c)) for i, c in enumerate(cells)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [r.model_id for r in store.runs.get_run(run.id).results] == [c.model_id for c in cells]


def _save_behind_another_writer(
    store: Store, run: Run, cells: list[Result]
) -> tuple[dict[int, BaseException], int]:
    """Save cells from parallel threads while another writer holds the store; errors, commits."""
    import threading

    from sqlalchemy import event

    commits: list[int] = []
    event.listen(store.db.engine, "commit", lambda conn: commits.append(1))
    errors: dict[int, BaseException] = {}

    def save(position: int, result: Result) -> None:
        try:
            store.runs.save_result(run, result, position + 1)
        except BaseException as exc:
            errors[position] = exc

    threads = [threading.Thread(target=save, args=(i, c)) for i, c in enumerate(cells)]
    with store.db.write() as conn:  # mid-save: the cells queue behind this writer
        if store.db.backend == "postgresql":
            conn.execute(text("LOCK TABLE results IN SHARE ROW EXCLUSIVE MODE"))
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(store.runs._group_saves._pending) < len(cells) - 1:  # one leads, blocked
            assert time.monotonic() < deadline, "the cells never queued"
            time.sleep(0.01)
        commits.clear()  # from here: this writer's commit, then the cells'
    for thread in threads:
        thread.join()
    return errors, len(commits)


def test_cells_that_end_together_are_saved_in_one_transaction(store: Store) -> None:
    run = full_run()
    run.results = []
    cells = [full_result(f"local/model-{i}") for i in range(8)]
    errors, commits = _save_behind_another_writer(store, run, cells)
    assert errors == {}
    assert [r.model_id for r in store.runs.get_run(run.id).results] == [c.model_id for c in cells]
    if store.db.backend == "sqlite":  # the other writer's, the blocked leader's, the seven queued
        assert commits == 3


def test_a_refused_cell_fails_alone_and_the_cells_that_ended_with_it_are_saved(
    store: Store,
) -> None:
    from playground.errors import StoreError

    run = full_run()
    run.results = []
    stored_before = full_result("local/already-saved")
    store.runs.save_result(run, stored_before, -1)
    cells = [full_result(f"local/model-{i}") for i in range(1, 8)]
    cells.insert(3, stored_before)  # ends again: its id is taken, so the store refuses it
    errors, _ = _save_behind_another_writer(store, run, cells)
    assert list(errors) == [3]  # only the refused cell's thread hears of it, in one sentence
    assert isinstance(errors[3], StoreError) and "\n" not in str(errors[3])
    saved = [r.model_id for r in store.runs.get_run(run.id).results]
    assert saved == ["local/already-saved"] + [f"local/model-{i}" for i in range(1, 8)]
