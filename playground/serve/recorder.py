"""Saving served runs off the request path: one writer thread, many runs per transaction.

With a transaction per call, a hundred concurrent calls queue on SQLite's write lock (its
busy handler sleeps between tries) and each opens its own pooled connection; the server spent
most of its time there. One thread that commits whatever has queued up since the last commit
(group commit) keeps one connection and takes the lock once per batch. A caller still learns
when its run is stored (the returned future), so a run id handed to a client always resolves.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING

from playground.config import Settings
from playground.records import Run

if TYPE_CHECKING:
    from playground.store import Store

log = logging.getLogger(__name__)

MAX_BATCH = 512  # runs per transaction; a batch of 512 small runs commits in a few ms


class RunRecorder:
    """Saves runs in batches on one thread; `submit` returns a future done once stored."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.saved = 0
        self.failed = 0
        self._queue: queue.SimpleQueue[tuple[Run, Future[None]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="run-recorder", daemon=True)
        self._started = False
        self._lock = threading.Lock()

    def submit(self, run: Run) -> Future[None]:
        """Queue a finished run for saving; the future fails if it could not be stored."""
        future: Future[None] = Future()
        with self._lock:
            if not self._started:  # started on first use, so a bare ServeService also records
                self._started = True
                self._thread.start()
        self._queue.put((run, future))
        return future

    def close(self, timeout: float = 30.0) -> None:
        """Store what is queued and stop the writer."""
        with self._lock:
            started = self._started
        if started and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _work(self) -> None:
        from playground.store import open_store

        store = open_store(self.settings)
        while True:
            item = self._queue.get()
            stop = item is None
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
        for (_, future), error in zip(batch, outcomes, strict=True):
            if error is None:
                self.saved += 1
                future.set_result(None)
            else:
                self.failed += 1
                future.set_exception(error)
