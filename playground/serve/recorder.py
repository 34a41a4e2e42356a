"""Saving served runs off the request path: one writer thread, many runs per transaction.

With a transaction per call, a hundred concurrent calls queue on SQLite's write lock (its
busy handler sleeps between tries) and each opens its own pooled connection; the server spent
most of its time there. One thread that commits whatever has queued up since the last commit
(group commit) keeps one connection and takes the lock once per batch, and a batch is one
transaction, so a run is stored whole or not at all.

The answer does not wait for its commit (that was ~2 ms of every call, bench/README.md): a
run is stored a few milliseconds after its answer left. What reads a run back through the
server waits for it (`wait_stored`, e.g. feedback on a run id just handed out), and `close`
stores everything queued before it returns, so a graceful shutdown loses no served call. A
hard kill (SIGKILL, a crash) can lose the runs of the last few milliseconds, whose answers
had already left.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from typing import TYPE_CHECKING

from playground.config import Settings
from playground.records import Run

if TYPE_CHECKING:
    from playground.store import Store

log = logging.getLogger(__name__)

MAX_BATCH = 512  # runs per transaction; a batch of 512 small runs commits in a few ms
# Wait this long after a run arrives before committing: the answer it belongs to is being
# sent right then, and a commit's Python (SQLAlchemy) would hold the GIL against it; runs
# arriving meanwhile join the batch.
GATHER_S = 0.005
CLOSE_TIMEOUT_S = 120.0  # a shutdown waits this long for the queue to be stored


class RunRecorder:
    """Saves runs in batches on one thread; `submit` returns a future done once stored."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.saved = 0
        self.failed = 0
        self._queue: queue.SimpleQueue[tuple[Run, Future[None]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="run-recorder", daemon=True)
        self._started = False
        self._closed = False
        self._lock = threading.Lock()
        self._pending: dict[str, Future[None]] = {}  # run id -> its save, until stored

    def submit(self, run: Run) -> Future[None]:
        """Queue a finished run for saving; the future fails if it could not be stored."""
        future: Future[None] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("The run recorder is closed; the run was not queued.")
            if not self._started:  # started on first use, so a bare ServeService also records
                self._started = True
                self._thread.start()
            self._pending[run.id] = future
            self._queue.put((run, future))  # under the lock: never behind close's stop mark
        return future

    def wait_stored(self, run_id: str, timeout: float = 30.0) -> None:
        """Wait until a queued run is stored (or failed to be); returns at once if not queued."""
        with self._lock:
            future = self._pending.get(run_id)
        if future is not None:
            wait_all([future], timeout)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every run queued so far is stored; False if the timeout passed first."""
        with self._lock:
            futures = list(self._pending.values())
        return not wait_all(futures, timeout).not_done

    @property
    def pending(self) -> int:
        """Runs queued and not stored yet."""
        with self._lock:
            return len(self._pending)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Store everything queued, then stop the writer (later submits are refused)."""
        with self._lock:
            started, self._closed = self._started, True
        if started and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)
        left = self.pending
        if left:
            log.error("%d served runs were not recorded within %g s of shutdown", left, timeout)

    def _work(self) -> None:
        from playground.store import open_store

        store = open_store(self.settings)
        while True:
            item = self._queue.get()
            stop = item is None
            if not stop:
                time.sleep(GATHER_S)
            batch = [] if item is None else [item]
            while len(batch) < MAX_BATCH:  # whatever queued up while the last batch committed
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            if batch:
                self._save(store, batch)
            if stop:
                return

    def _save(self, store: Store, batch: list[tuple[Run, Future[None]]]) -> None:
        runs = [run for run, _ in batch]
        try:
            store.runs.save_runs(runs)
            outcomes: list[BaseException | None] = [None] * len(batch)
        except Exception:
            # One bad run must not lose the others: save them one by one to find it.
            outcomes = []
            for run in runs:
                try:
                    store.runs.save_run(run)
                    outcomes.append(None)
                except Exception as exc:
                    log.exception("Served run %s could not be recorded", run.id)
                    outcomes.append(exc)
        with self._lock:
            for run in runs:
                self._pending.pop(run.id, None)
        for (_, future), error in zip(batch, outcomes, strict=True):
            if error is None:
                self.saved += 1
                future.set_result(None)
            else:
                self.failed += 1
                future.set_exception(error)
