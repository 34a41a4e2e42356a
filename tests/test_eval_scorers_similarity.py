"""The similarity scorer shares embedding batches across the batch runner's threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from playground.eval.scorers_similarity import SharedEncoder
from playground.rag.embeddings import get_embedder


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
