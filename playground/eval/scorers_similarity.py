"""Embeddings for the similarity scorer, batched across the batch runner's threads.

Each cell asks for two vectors (answer, reference). Encoding them one cell at a time leaves
MiniLM running batches of two; through a Coalescer (playground/coalesce.py) the cells running
at once share batches of up to `max_batch`. A lone caller pays nothing extra.

Vectors are remembered (LRU, per model): every configuration and repeat of a batch scores
against the same reference of a row, and the answer cache brings the same answer back.

Answers and references vary in length (a median of ~34 tokens, some over 170), and MiniLM
pads every text of a batch to its longest; so a shared call is sorted by length (as
sentence-transformers does within one call) and run in small batches: 30 texts in batches of
64 went at 21 pairs/s on this box, in batches of 8 at 36, and 128 in batches of 16 at 43.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from playground.coalesce import Coalescer

if TYPE_CHECKING:
    import numpy as np

CACHE_SIZE = 8192  # vectors (~1.5 KB each for MiniLM): ~12 MB
GATHER_S = 0.003  # how long a leader waits for the cells the last batch says are running


class SharedEncoder:
    """Encode texts for many threads at once, in shared batches, remembering vectors."""

    def __init__(
        self,
        embedder: Any,
        max_batch: int = 128,
        cache_size: int = CACHE_SIZE,
        gather_s: float = GATHER_S,
    ) -> None:
        self.embedder = embedder
        self.cache_size = cache_size
        self._lock = threading.Lock()  # guards the cache only
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._batches: Coalescer[str, np.ndarray] = Coalescer(
            self._encode_many, max_batch=max_batch, gather_s=gather_s
        )

    @property
    def gather_s(self) -> float:
        """How long a leader waits for the cells the last batch had."""
        return self._batches.gather_s

    @gather_s.setter
    def gather_s(self, seconds: float) -> None:
        self._batches.gather_s = seconds

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for texts, one row each (same as Embedder.encode)."""
        import numpy as np

        texts = list(texts)
        with self._lock:
            known = {t: v for t in texts if (v := self._cached(t)) is not None}
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            known.update(zip(missing, self._batches(missing), strict=True))
        return np.stack([known[t] for t in texts])

    def prime(self, texts: Sequence[str]) -> None:
        """Encode the texts not yet remembered, in one length-sorted call, for cells to come."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if self._cached(t) is None))
        if missing:
            # One request, so it is a call of its own: the model sorts all of it by length.
            self._batches(missing)

    def forget(self) -> None:
        """Drop the remembered vectors (a benchmark's next round starts cold)."""
        with self._lock:
            self._cache.clear()

    def _encode_many(self, texts: list[str]) -> list[np.ndarray]:
        # Two cells of one row queue the same reference: encode it once; and the call before
        # this one may have encoded it while this one queued.
        wanted = list(dict.fromkeys(texts))
        with self._lock:
            by_text = {t: v for t in wanted if (v := self._cached(t)) is not None}
        todo = [t for t in wanted if t not in by_text]
        if todo:
            vectors = self.embedder.encode(todo, batch_size=padding_batch(len(todo)))
            by_text.update(zip(todo, vectors, strict=True))
            with self._lock:
                self._remember(todo, vectors)
        return [by_text[t] for t in texts]

    def _cached(self, text: str) -> np.ndarray | None:
        vector = self._cache.get(text)
        if vector is not None:
            self._cache.move_to_end(text)
        return vector

    def _remember(self, texts: list[str], vectors: np.ndarray) -> None:
        for text, vector in zip(texts, vectors, strict=True):
            self._cache[text] = vector
            self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


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
