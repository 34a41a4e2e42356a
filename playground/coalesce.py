"""Many threads' small requests served by one call (leader/follower).

A batch runs cells on many threads, and each cell asks the same question of something that
answers many at once far cheaper than one at a time (MiniLM encodes a batch of texts in about
the time of a few; the store looks up a hundred cache keys in about the time of one). The
first thread to ask runs everything the others queued meanwhile in one call, and goes on until
the queue is empty; the others wait for their share. A lone caller pays nothing extra: nobody
waits for company.
"""

from __future__ import annotations

import threading
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


class Coalescer(Generic[ItemT, AnswerT]):
    """Serve requests from many threads with shared calls of `answer_many` (one answer per item)."""

    def __init__(
        self, answer_many: Callable[[list[ItemT]], Sequence[AnswerT]], max_batch: int = 128
    ) -> None:
        self.answer_many = answer_many
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Request[ItemT, AnswerT]] = []
        self._leading = False

    def __call__(self, items: Sequence[ItemT]) -> Sequence[AnswerT]:
        """The answers to items, in order (answer_many's failure, raised here)."""
        request: _Request[ItemT, AnswerT] = _Request(list(items))
        with self._lock:
            self._pending.append(request)
            lead = not self._leading
            self._leading = True
        if lead:
            self._drain()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.answers

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch: list[_Request[ItemT, AnswerT]] = []
                size = 0
                while self._pending and (
                    not batch or size + len(self._pending[0].items) <= self.max_batch
                ):
                    size += len(self._pending[0].items)
                    batch.append(self._pending.pop(0))
                if not batch:
                    self._leading = False
                    return
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
