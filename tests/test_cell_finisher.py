"""The one finish-a-cell step: answers checked alike, then saved; chunks embedded once."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from playground.config import Settings, load_settings
from playground.models.base import Message, ModelParams
from playground.moderation import verdict_label
from playground.rag import retrieval
from playground.rag.embeddings import Embedder
from playground.rag.groundedness import Grounding
from playground.rag.retrieval import retrieve_for_run
from playground.rag.store import KnowledgeBase, UploadedFile
from playground.records import Result, RetrievalSettings, Run
from playground.runner import CellFinisher
from playground.store import open_store
from tests.support import FaultServer

TENT_TEXT = (
    "The Trail Tent 2P is a two-person backpacking tent weighing 1.6 kg. The fly is rated "
    "waterproof to 3000 mm and all seams are taped. Pitching takes about five minutes."
)
ANSWERS = [
    "The fly is rated waterproof to 3000 mm.",
    "The tent weighs 1.6 kg.",
    "Paris is the capital of France.",
    "Pitching takes about five minutes. The tent is made of chocolate.",
]


def _rag_run(settings: Settings) -> Run:
    """A RAG run over a one-document store, with one cell per answer in ANSWERS."""
    KnowledgeBase(settings).ingest("gear", [UploadedFile("tent.md", TENT_TEXT.encode())])
    run = Run(retrieval=RetrievalSettings(store="gear", top_k=1))
    run.retrieved = retrieve_for_run(settings, run.retrieval, {"question": "tent?"}).retrieved
    run.results = [
        Result(f"local/m{i}", [Message(role="user", content="q")], ModelParams(), text=text)
        for i, text in enumerate(ANSWERS)
    ]
    return run


@pytest.fixture
def chunk_encodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the real embedder's calls that embed the tent chunk (the scorer being built)."""
    calls: list[int] = []
    monkeypatch.setattr(retrieval, "_groundings", OrderedDict())  # no scorer from other tests
    real_encode = Embedder.encode

    def counting(self: Embedder, texts: Sequence[str], *args: object, **kw: object) -> np.ndarray:
        if TENT_TEXT in texts:
            calls.append(len(texts))
        return real_encode(self, texts, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Embedder, "encode", counting)
    return calls


def test_cells_ending_on_many_threads_embed_the_run_chunks_once(
    home: Path, chunk_encodes: list[int]
) -> None:
    settings = load_settings()
    run = _rag_run(settings)
    chunk_encodes.clear()  # the ingest embedded it too
    saved: list[int] = []
    finisher = CellFinisher(settings, run, save=lambda _run, _result, i: saved.append(i))
    threads = [
        threading.Thread(target=finisher.finish, args=(result, i))
        for i, result in enumerate(run.results)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(chunk_encodes) == 1  # four cells, one embedding of the chunks
    assert sorted(saved) == [0, 1, 2, 3]
    alone = Grounding([c.text for c in run.retrieved])  # what each cell scored alone
    assert [r.groundedness for r in run.results] == [alone.score(text) for text in ANSWERS]
    assert run.results[0].groundedness == 1.0 and run.results[2].groundedness == 0.0


def test_a_follow_up_turn_on_the_same_chunks_does_not_embed_them_again(
    home: Path, chunk_encodes: list[int]
) -> None:
    settings = load_settings()
    first = _rag_run(settings)
    chunk_encodes.clear()
    CellFinisher(settings, first, save=lambda *_: None).check(first.results)
    follow_up = Run(retrieval=first.retrieval, retrieved=list(first.retrieved))
    follow_up.results = [
        Result("local/m0", [Message(role="user", content="q")], ModelParams(), text=ANSWERS[0])
    ]
    CellFinisher(settings, follow_up, save=lambda *_: None).check(follow_up.results)
    assert len(chunk_encodes) == 1
    assert follow_up.results[0].groundedness == 1.0


def test_a_check_that_cannot_be_done_is_one_sentence_and_the_answer_is_still_saved(
    home: Path, write_config: Callable[[str], Path], fault_server: FaultServer
) -> None:
    write_config(f'[moderation]\nbase_url = "{fault_server.url("500")}"\nmax_retries = 0\n')
    settings = load_settings()
    run = Run(
        results=[Result("local/m", [Message(role="user", content="q")], ModelParams(), text="Hi.")]
    )
    notes = CellFinisher(settings, run).finish(run.results[0], 0)
    assert len(notes) == 1 and notes[0].startswith("Moderation was not checked:")
    stored = open_store(settings).runs.get_run(run.id).results[0]
    assert stored.text == "Hi."
    assert verdict_label(stored.moderation) == "not checked"


def test_failed_cells_are_saved_unchecked(
    home: Path, write_config: Callable[[str], Path], fault_server: FaultServer
) -> None:
    write_config(f'[moderation]\nbase_url = "{fault_server.url("ok")}"\nmax_retries = 0\n')
    settings = load_settings()
    failed = Result("local/m", [], ModelParams(), error="local/m failed: out of memory")
    run = Run(results=[failed])
    assert CellFinisher(settings, run).finish(failed, 0) == []
    stored = open_store(settings).runs.get_run(run.id).results[0]
    assert stored.error == "local/m failed: out of memory"
    assert stored.moderation is None  # an error is never sent to be moderated
