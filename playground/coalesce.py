"""Many threads' small requests served by one call (leader/follower).

A batch runs cells on many threads, and each cell asks the same question of something that
answers many at once far cheaper than one at a time (MiniLM encodes a batch of texts in about
the time of a few; the store looks up a hundred cache keys in about the time of one). The
first thread to ask runs everything the others queued meanwhile in one call; once its own
answers are in, it hands the lead to the first queued request and goes back to its cell, so
it can queue its next request with the others instead of serving theirs meanwhile (16 cells
otherwise alternate batches of 1 and 15). A lone caller pays nothing extra.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
AnswerT = TypeVar("AnswerT")


@dataclass
class _Request(Generic[ItemT, AnswerT]):
    items: list[ItemT]
    done: threading.Event = field(default_factory=threading.Event)
    answers: Sequence[AnswerT] = ()
    error: BaseException | None = None
    promoted: bool = False  # woken to lead the next call, not with its answers


class Coalescer(Generic[ItemT, AnswerT]):
    """Serve requests from many threads with shared calls of `answer_many` (one answer per item).

    `gather_s`: how long a leader may wait for as many requests as the last call served (a
    lone caller's last call served 1, so it never waits).
    """

    def __init__(
        self,
        answer_many: Callable[[list[ItemT]], Sequence[AnswerT]],
        max_batch: int = 128,
        gather_s: float = 0.0,
    ) -> None:
        self.answer_many = answer_many
        self.max_batch = max_batch
        self.gather_s = gather_s
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._pending: list[_Request[ItemT, AnswerT]] = []
        self._leading = False
        self._company = 1  # requests in the last call: how many threads are likely asking

    def __call__(self, items: Sequence[ItemT]) -> Sequence[AnswerT]:
        """The answers to items, in order (answer_many's failure, raised here)."""
        request: _Request[ItemT, AnswerT] = _Request(list(items))
        with self._lock:
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
        return request.answers

    def _take(self) -> list[_Request[ItemT, AnswerT]]:
        """Wait briefly for the company the last call had, then take up to max_batch items."""
        deadline = time.monotonic() + self.gather_s
        while self._pending and len(self._pending) < self._company:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._arrived.wait(left)
        batch: list[_Request[ItemT, AnswerT]] = []
        size = 0
        while self._pending and (not batch or size + len(self._pending[0].items) <= self.max_batch):
            size += len(self._pending[0].items)
            batch.append(self._pending.pop(0))
        if batch:
            self._company = len(batch)
        return batch

    def _drain(self, own: _Request[ItemT, AnswerT]) -> None:
        """Serve queued requests until own's is served, then hand the lead to a queued one."""
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
            try:
                answers = self.answer_many([item for r in batch for item in r.items])
            except BaseException as exc:  # every waiting thread gets the failure, none hangs
                for r in batch:
                    r.error = exc
                    r.done.set()
                continue
            start = 0
            for r in batch:
                r.answers = answers[start : start + len(r.items)]
                start += len(r.items)
                r.done.set()
