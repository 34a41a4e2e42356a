"""The similarity scorer shares embedding batches across the batch runner's threads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from playground.config import load_settings
from playground.errors import ConfigError
from playground.eval.scorers import ScoreContext, encode_references_ahead, score_answer
from playground.eval.scorers_similarity import SharedEncoder, _shared
from playground.eval.spec import EvaluationSpec
from playground.models.base import ModelParams
from playground.rag.embeddings import canonical_name, get_embedder
from playground.records import Result, Run


class _Counting:
    """The real embedder, counting its calls (to see that threads share them)."""

    def __init__(self) -> None:
        self.inner = get_embedder()
        self.calls = 0
        self.gate = threading.Event()

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        self.calls += 1
        self.gate.wait(5)  # hold the first batch so the others queue behind it
        return self.inner.encode(texts, batch_size=batch_size)


def test_threads_get_their_own_vectors_from_shared_batches() -> None:
    counting = _Counting()
    shared = SharedEncoder(counting)
    pairs = [(f"Answer number {i} about tents.", f"Reference {i} on returns.") for i in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(shared.encode, list(pair)) for pair in pairs]
        counting.gate.set()
        results = [f.result() for f in futures]
    direct = get_embedder().encode([t for pair in pairs for t in pair])
    for i, vectors in enumerate(results):
        assert np.allclose(vectors, direct[2 * i : 2 * i + 2], atol=1e-5)
    assert counting.calls < len(pairs)  # batches were shared


class _Broken:
    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        raise RuntimeError("model gone")


def test_a_failing_encode_reaches_every_waiting_caller() -> None:
    shared = SharedEncoder(_Broken())
    with pytest.raises(RuntimeError, match="model gone"):
        shared.encode(["a", "b"])
    with pytest.raises(RuntimeError, match="model gone"):  # and the next caller is not stuck
        shared.encode(["c"])


class _Recording:
    """A fake embedder: a vector per text from its hash, recording every call's texts."""

    def __init__(self, pause: float = 0.0) -> None:
        self.calls: list[list[str]] = []
        self.pause = pause
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        with self._lock:
            self.calls.append(list(texts))
        time.sleep(self.pause)
        rng = [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=4) for t in texts]
        return np.array([v / np.linalg.norm(v) for v in rng], dtype=np.float32)


def test_a_second_cell_with_the_same_reference_does_not_encode_it_again() -> None:
    fake = _Recording()
    shared = SharedEncoder(fake)
    first = shared.encode(["answer one", "the reference"])
    second = shared.encode(["answer two", "the reference"])
    assert fake.calls == [["answer one", "the reference"], ["answer two"]]
    assert np.array_equal(first[1], second[1])
    shared.encode(["answer two", "the reference"])  # the answer cache brings an answer back
    assert len(fake.calls) == 2


def test_a_text_queued_twice_in_one_batch_is_encoded_once() -> None:
    fake = _Recording(pause=0.05)
    shared = SharedEncoder(fake, gather_s=0)
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(shared.encode, [f"answer {i}", "same reference"]) for i in range(6)]
        results = [f.result(timeout=10) for f in futures]
    encoded = [t for call in fake.calls for t in call]
    assert encoded.count("same reference") == 1
    assert all(np.array_equal(r[1], results[0][1]) for r in results)


def test_the_cache_keeps_only_the_most_recent_vectors() -> None:
    fake = _Recording()
    shared = SharedEncoder(fake, cache_size=2)
    shared.encode(["a", "b"])
    shared.encode(["c"])  # "a" is the oldest: dropped
    shared.encode(["b", "a"])
    assert fake.calls[-1] == ["a"]


def test_scores_equal_encoding_each_pair_alone() -> None:
    shared = SharedEncoder(get_embedder())
    long = " ".join(["The tent packs down small and sets up in minutes."] * 12)
    pairs = [
        ("Yes.", "Returns are accepted within 60 days."),
        (long, "Returns are accepted within 60 days."),
        ("Unused items can be returned within sixty days.", "Shipping is free over $50."),
        ("Shipping costs nothing above fifty dollars.", "Shipping is free over $50."),
    ] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        shared_vectors = list(pool.map(lambda p: shared.encode(list(p)), pairs))
    for (answer, reference), vectors in zip(pairs, shared_vectors, strict=True):
        alone = get_embedder().encode([answer, reference])
        assert abs(float(vectors[0] @ vectors[1]) - float(alone[0] @ alone[1])) < 1e-5


def test_the_leader_waits_briefly_for_the_cells_the_last_batch_had() -> None:
    fake = _Recording(pause=0.02)
    shared = SharedEncoder(fake, gather_s=0.5)

    def cell(worker: int) -> None:
        for i in range(6):
            shared.encode([f"answer {worker}-{i}", f"reference {worker}-{i}"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(cell, range(4)))
    sizes = [len(call) for call in fake.calls]
    # Without the wait, the first cell back leads alone and the other three follow: 2, 6, 2, 6.
    assert sizes.count(8) >= 4, sizes


def test_a_lone_caller_is_not_delayed() -> None:
    fake = _Recording()
    shared = SharedEncoder(fake, gather_s=1.0)
    start = time.perf_counter()
    for i in range(5):
        shared.encode([f"answer {i}", f"reference {i}"])
    assert time.perf_counter() - start < 0.5


def test_a_failing_encode_reaches_every_concurrent_caller() -> None:
    class _Held(_Broken):
        def __init__(self) -> None:
            self.gate = threading.Event()

        def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
            self.gate.wait(5)
            return super().encode(texts, batch_size)

    held = _Held()
    shared = SharedEncoder(held)
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(shared.encode, [f"a{i}", "ref"]) for i in range(6)]
        held.gate.set()
        for future in futures:
            with pytest.raises(RuntimeError, match="model gone"):
                future.result(timeout=10)
    held.gate.set()
    with pytest.raises(RuntimeError, match="model gone"):
        shared.encode(["again"])


def test_primed_references_leave_a_cell_only_its_answer_to_encode() -> None:
    fake = _Recording()
    shared = SharedEncoder(fake)
    shared.prime(["reference one", "reference two", "reference one"])
    assert fake.calls == [["reference one", "reference two"]]  # one call, each text once
    shared.encode(["answer one", "reference one"])
    shared.encode(["answer two", "reference two"])
    assert fake.calls[1:] == [["answer one"], ["answer two"]]
    shared.prime(["reference two"])  # already known: no call
    assert len(fake.calls) == 3


def test_scores_after_priming_equal_encoding_each_pair_alone() -> None:
    shared = SharedEncoder(get_embedder())
    long = " ".join(["Keep the stove upright and away from the tent walls."] * 10)
    pairs = [
        (f"Answer {i}: returns take {i} days.", f"Reference {i}. " + long[: 9 * i])
        for i in range(20)
    ]
    shared.prime([reference for _, reference in pairs])  # one length-sorted call, mixed lengths
    with ThreadPoolExecutor(max_workers=6) as pool:
        shared_vectors = list(pool.map(lambda p: shared.encode(list(p)), pairs))
    for (answer, reference), vectors in zip(pairs, shared_vectors, strict=True):
        alone = get_embedder().encode([answer, reference])
        assert abs(float(vectors[0] @ vectors[1]) - float(alone[0] @ alone[1])) < 1e-5


def _similarity_cells(rows: int) -> tuple[list[Any], list[ScoreContext]]:
    spec = EvaluationSpec.model_validate(
        {"dataset": "d", "scorers": [{"type": "similarity", "reference": "{{ expected }}"}]}
    )
    settings = load_settings()
    contexts = [
        ScoreContext(
            row={"expected": f"reference {i}"},
            result=Result(model_id="x/y", messages=[], params=ModelParams(), text=f"answer {i}"),
            run=Run(),
            settings=settings,
        )
        for i in range(rows)
    ]
    return list(spec.scorers), contexts


def _score_all(scorer_specs: list[Any], contexts: list[ScoreContext], window: int) -> list[Any]:
    cells = encode_references_ahead(contexts, lambda c: c.row, scorer_specs, window=window)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(score_answer, scorer_specs, ctx) for ctx in cells]
        return [f.result(timeout=20)[0] for f in futures]


def test_references_are_encoded_ahead_in_windows_and_scores_stay_those_of_one_by_one(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _Recording()
    monkeypatch.setitem(_shared, canonical_name(None), SharedEncoder(fake))
    scorer_specs, contexts = _similarity_cells(10)
    verdicts = _score_all(scorer_specs, contexts, window=4)
    encoded = [t for call in fake.calls for t in call]
    # Each later window's references came in one call before its cells asked: with none of
    # their answers (the first window's cells do not wait, so they may encode their own).
    for rows in (range(4, 8), range(8, 10)):
        refs, answers = {f"reference {i}" for i in rows}, {f"answer {i}" for i in rows}
        assert any(refs <= set(c) and not answers & set(c) for c in fake.calls), fake.calls
    assert all(encoded.count(f"reference {i}") == 1 for i in range(10))  # never per cell
    alone = SharedEncoder(_Recording())
    for i, verdict in enumerate(verdicts):
        vectors = alone.encode([f"answer {i}", f"reference {i}"])
        assert verdict.score == round(max(0.0, float(vectors[0] @ vectors[1])), 4)


def test_a_reference_needing_the_answer_is_left_to_its_cell(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _Recording()
    monkeypatch.setitem(_shared, canonical_name(None), SharedEncoder(fake))
    spec = EvaluationSpec.model_validate(
        {"dataset": "d", "scorers": [{"type": "similarity", "reference": "{{ answer }} ok"}]}
    )
    _, contexts = _similarity_cells(3)
    verdicts = _score_all(list(spec.scorers), contexts, window=8)
    assert all(v.status != "unmeasured" for v in verdicts)
    assert not any(call == [f"answer {i} ok" for i in range(3)] for call in fake.calls)


def test_a_failed_encode_reaches_every_cell_and_none_hangs(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class _Missing:
        def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
            time.sleep(0.01)
            raise ConfigError("The embedding model is missing; install it.")

    monkeypatch.setitem(_shared, canonical_name(None), SharedEncoder(_Missing()))
    scorer_specs, contexts = _similarity_cells(12)
    verdicts = _score_all(scorer_specs, contexts, window=5)
    assert len(verdicts) == 12
    assert all(v.status == "unmeasured" and "model is missing" in v.reason for v in verdicts)


def test_cells_behind_a_failed_prime_still_get_their_scores(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class _PrimeFails(_Recording):
        def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
            if all(t.startswith("reference") for t in texts) and len(texts) > 1:
                raise RuntimeError("out of memory for the window")
            return super().encode(texts, batch_size)

    monkeypatch.setitem(_shared, canonical_name(None), SharedEncoder(_PrimeFails()))
    scorer_specs, contexts = _similarity_cells(8)
    verdicts = _score_all(scorer_specs, contexts, window=4)
    assert all(v.score is not None and v.status != "unmeasured" for v in verdicts)
