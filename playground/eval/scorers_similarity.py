"""Embeddings for the similarity scorer, batched across the batch runner's threads.

Each cell asks for two vectors (answer, reference). Encoding them one cell at a time leaves
MiniLM running batches of two; here the first thread to ask encodes everything the others
queued meanwhile in one call, so cells running at once share batches of up to `max_batch`.
A lone caller pays nothing extra: nobody waits for company.

Vectors are remembered (LRU, per model): every configuration and repeat of a batch scores
against the same reference of a row, and the answer cache brings the same answer back.

Answers and references vary in length (a median of ~34 tokens, some over 170), and MiniLM
pads every text of a batch to its longest; so a shared call is sorted by length (as
sentence-transformers does within one call) and run in small batches: 30 texts in batches of
64 went at 21 pairs/s on this box, in batches of 8 at 36, and 128 in batches of 16 at 43.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

CACHE_SIZE = 8192  # vectors (~1.5 KB each for MiniLM): ~12 MB
GATHER_S = 0.003  # how long a leader waits for the cells the last batch says are running


@dataclass
class _Request:
    texts: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    vectors: Any = None
    error: BaseException | None = None
    promoted: bool = False  # woken to lead the next batch, not with its vectors


class SharedEncoder:
    """Encode texts for many threads at once, in shared batches (leader/follower)."""

    def __init__(
        self,
        embedder: Any,
        max_batch: int = 128,
        cache_size: int = CACHE_SIZE,
        gather_s: float = GATHER_S,
    ) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self.cache_size = cache_size
        self.gather_s = gather_s
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._pending: list[_Request] = []
        self._leading = False
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        # Requests in the last batch: how many cells are likely scoring at once. A lone
        # caller keeps it at 1, so it never waits.
        self._company = 1

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for texts, one row each (same as Embedder.encode)."""
        import numpy as np

        texts = list(texts)
        with self._lock:
            known = {t: v for t in texts if (v := self._cached(t)) is not None}
            missing = list(dict.fromkeys(t for t in texts if t not in known))
            if not missing:
                return np.stack([known[t] for t in texts])
            request = _Request(missing)
            self._pending.append(request)
            self._arrived.notify()
            lead = not self._leading
            self._leading = True
        if lead:
            self._drain(request)
        request.done.wait()
        while request.promoted:
            request.promoted = False
            request.done.clear()
            self._drain(request)
            request.done.wait()
        if request.error is not None:
            raise request.error
        fresh = dict(zip(missing, request.vectors, strict=True))
        return np.stack([known[t] if t in known else fresh[t] for t in texts])

    def forget(self) -> None:
        """Drop the remembered vectors (a benchmark's next round starts cold)."""
        with self._lock:
            self._cache.clear()

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

    def _take(self) -> list[_Request]:
        """Wait briefly for the cells the last batch had, then take up to max_batch texts."""
        deadline = time.monotonic() + self.gather_s
        while self._pending and len(self._pending) < self._company:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._arrived.wait(left)
        batch: list[_Request] = []
        size = 0
        while self._pending and (not batch or size + len(self._pending[0].texts) <= self.max_batch):
            size += len(self._pending[0].texts)
            batch.append(self._pending.pop(0))
        if batch:
            self._company = len(batch)
        return batch

    def _drain(self, own: _Request) -> None:
        """Encode queued batches until own's is done, then hand the lead to a queued cell.

        The leader goes back to its cell as soon as its vectors are in, so it can queue its
        next request with the others instead of encoding theirs meanwhile.
        """
        while True:
            with self._lock:
                if own.done.is_set():
                    if self._pending:
                        self._pending[0].promoted = True
                        self._pending[0].done.set()
                    else:
                        self._leading = False
                    return
                batch = self._take()
                # Two cells of one row queue the same reference: encode it once; and the
                # batch before this one may have encoded it while this one queued.
                wanted = list(dict.fromkeys(t for r in batch for t in r.texts))
                by_text = {t: v for t in wanted if (v := self._cached(t)) is not None}
                texts = [t for t in wanted if t not in by_text]
            try:
                vectors = (
                    self.embedder.encode(texts, batch_size=padding_batch(len(texts)))
                    if texts
                    else []
                )
            except BaseException as exc:  # every waiting cell gets the failure, none hangs
                for r in batch:
                    r.error = exc
                    r.done.set()
                continue
            by_text.update(zip(texts, vectors, strict=True))
            with self._lock:
                self._remember(texts, vectors)
            for r in batch:
                r.vectors = [by_text[t] for t in r.texts]
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
