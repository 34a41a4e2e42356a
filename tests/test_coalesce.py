"""The leader/follower coalescer: many threads' requests served by shared calls."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from playground.coalesce import Coalescer


def test_threads_asking_at_once_share_calls_and_each_gets_its_own_answers() -> None:
    calls: list[list[int]] = []

    def square_all(items: list[int]) -> list[int]:
        calls.append(items)
        time.sleep(0.05)  # while one call runs, the other threads queue up behind it
        return [i * i for i in items]

    squares = Coalescer(square_all, max_batch=64)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda i: squares([i, i + 100]), range(32)))
    assert answers == [[i * i, (i + 100) ** 2] for i in range(32)]
    assert len(calls) < 16  # shared: far fewer calls than the 32 requests
    assert max(len(c) for c in calls) <= 64


def test_a_lone_caller_is_served_at_once() -> None:
    calls: list[list[str]] = []
    upper = Coalescer(lambda items: calls.append(items) or [s.upper() for s in items])
    start = time.perf_counter()
    assert upper(["a", "b"]) == ["A", "B"]
    assert time.perf_counter() - start < 0.05 and calls == [["a", "b"]]


def test_a_failing_call_reaches_every_waiting_thread_and_the_next_call_works() -> None:
    gate = threading.Event()
    fail = True

    def answer(items: list[int]) -> list[int]:
        gate.wait(5)
        if fail:
            raise RuntimeError("store is down")
        return items

    echo = Coalescer(answer)
    errors: list[str] = []

    def ask(i: int) -> None:
        try:
            echo([i])
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads)  # none hangs
    assert errors == ["store is down"] * 8
    fail = False
    assert echo([7]) == [7]
