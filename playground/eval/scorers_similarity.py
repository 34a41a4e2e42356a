"""Embeddings for the similarity scorer, batched across the batch runner's threads.

Each cell asks for two vectors (answer, reference). Encoding them one cell at a time leaves
MiniLM running batches of two; here the first thread to ask encodes everything the others
queued meanwhile in one call, so cells running at once share batches of up to `max_batch`.
A lone caller pays nothing extra: nobody waits for company.

Answers and references vary in length (a median of ~34 tokens, some over 170), and MiniLM
pads every text of a batch to its longest; so a shared call is sorted by length (as
sentence-transformers does within one call) and run in small batches: 30 texts in batches of
64 went at 21 pairs/s on this box, in batches of 8 at 36, and 128 in batches of 16 at 43.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass
class _Request:
    texts: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    vectors: Any = None
    error: BaseException | None = None


class SharedEncoder:
    """Encode texts for many threads at once, in shared batches (leader/follower)."""

    def __init__(self, embedder: Any, max_batch: int = 128) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Request] = []
        self._leading = False

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for texts, one row each (same as Embedder.encode)."""
        request = _Request(list(texts))
        with self._lock:
            self._pending.append(request)
            lead = not self._leading
            self._leading = True
        if lead:
            self._drain()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.vectors

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch: list[_Request] = []
                size = 0
                while self._pending and (
                    not batch or size + len(self._pending[0].texts) <= self.max_batch
                ):
                    size += len(self._pending[0].texts)
                    batch.append(self._pending.pop(0))
                if not batch:
                    self._leading = False
                    return
            try:
                texts = [t for r in batch for t in r.texts]
                vectors = self.embedder.encode(texts, batch_size=padding_batch(len(texts)))
            except BaseException as exc:  # every waiting cell gets the failure, none hangs
                for r in batch:
                    r.error = exc
                    r.done.set()
                continue
            start = 0
            for r in batch:
                r.vectors = vectors[start : start + len(r.texts)]
                start += len(r.texts)
                r.done.set()


def padding_batch(count: int) -> int:
    """The model batch for `count` texts of mixed length: small, so little is padding."""
    return 8 if count <= 64 else 16


_shared: dict[str, SharedEncoder] = {}
_shared_lock = threading.Lock()


def shared_encoder(name: str | None = None) -> SharedEncoder:
    """The process-wide shared encoder over get_embedder(name)."""
    from playground.rag.embeddings import canonical_name, get_embedder

    key = canonical_name(name)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = SharedEncoder(get_embedder(key))
        return _shared[key]
