"""A batch that runs in a background thread, so the Evaluate page can show progress and cancel.

Nothing here touches Streamlit: the page keeps a `LiveBatch` in session state and polls it
from a fragment while `live` is true. Cancel stops new cells from starting; cells already
talking to a model finish and are saved, and `playground eval resume` runs the rest.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from playground.config import Settings
from playground.errors import PlaygroundError
from playground.eval.batch import DEFAULT_CONCURRENCY, BatchPlan, BatchRunner, CellOutcome

if TYPE_CHECKING:
    import pandas as pd

STATUSES = ("pass", "fail", "unmeasured", "error")
RECENT_ROWS = 6  # finished cells shown under the progress bar


@dataclass
class RecentCell:
    """One finished cell as the progress view shows it."""

    config: str
    row: int
    status: str
    answer: str


class LiveBatch:
    """Runs one batch plan in a daemon thread and keeps the counts the page shows."""

    def __init__(
        self, settings: Settings, plan: BatchPlan, concurrency: int = DEFAULT_CONCURRENCY
    ) -> None:
        self.plan = plan
        self.total = plan.total_cells
        self.done = 0
        self.counts = {s: 0 for s in STATUSES}
        self.per_config = [{s: 0 for s in STATUSES} for _ in plan.configs]
        self.recent: deque[RecentCell] = deque(maxlen=RECENT_ROWS)
        self.status = "running"  # then the runner's done | cancelled | stopped, or failed
        self.error: str | None = None
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self.runner = BatchRunner(
            settings, plan, concurrency=concurrency, on_progress=self._progress, cancel=self._cancel
        )
        self._thread = threading.Thread(target=self._work, name="ev-batch", daemon=True)

    @property
    def batch_id(self) -> str:
        """The batch's id in the store."""
        return self.plan.batch_id

    def start(self) -> LiveBatch:
        """Record the batch (so pages list it at once), then start its thread."""
        self.runner.ensure_record()
        self._thread.start()
        return self

    @property
    def live(self) -> bool:
        """True while the batch's thread runs."""
        return self._thread.is_alive()

    @property
    def cancelling(self) -> bool:
        """True once Cancel was pressed."""
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Start no new cell; the ones in flight finish and are saved."""
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread (tests, and a page that must not leave it behind)."""
        self._thread.join(timeout)

    def _work(self) -> None:
        try:
            self.status = self.runner.run()
        except PlaygroundError as exc:
            self.error, self.status = str(exc), "failed"
        except Exception as exc:  # a bug or a broken store: one sentence, the batch is marked
            self.error = f"The batch stopped unexpectedly ({type(exc).__name__}: {exc})."
            self.status = "failed"
        if self.status == "failed":
            # the store itself may be what failed: the message above says enough then
            with contextlib.suppress(Exception):
                self.runner.batches.set_status(self.batch_id, "failed")

    def _progress(self, done: int, total: int, outcome: CellOutcome) -> None:
        status = outcome.status if outcome.status in self.counts else "error"
        answer = outcome.result.error or outcome.result.text or ""
        with self._lock:
            self.done = done
            self.counts[status] += 1
            self.per_config[outcome.config_index][status] += 1
            self.recent.appendleft(
                RecentCell(
                    self.plan.configs[outcome.config_index].label,
                    outcome.row_index + 1,
                    status,
                    answer.strip().replace("\n", " ")[:160],
                )
            )

    @property
    def fraction(self) -> float:
        """Share of cells finished, in [0, 1]."""
        return min(1.0, self.done / self.total) if self.total else 1.0

    def progress_text(self) -> str:
        """'12/18 cells · pass 3 · fail 9 · 4 s' for the progress bar."""
        seconds = time.monotonic() - self.started
        counts = " · ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        head = f"{self.done}/{self.total} cells"
        if self.cancelling and self.live:
            head = "Cancelling: waiting for the cells in flight · " + head
        return " · ".join(p for p in (head, counts, f"{seconds:.0f} s") if p)

    def partial_frame(self) -> pd.DataFrame:
        """Per configuration so far: finished cells, passed, failed, pass rate of the scored."""
        import pandas as pd

        with self._lock:
            rows = []
            for config, counts in zip(self.plan.configs, self.per_config, strict=True):
                scored = counts["pass"] + counts["fail"]
                rows.append(
                    {
                        "configuration": config.label,
                        "finished": sum(counts.values()),
                        "of": self.plan.dataset.rows * self.plan.repeat,
                        "passed": counts["pass"],
                        "failed": counts["fail"],
                        "unmeasured": counts["unmeasured"],
                        "errors": counts["error"],
                        "pass rate so far": counts["pass"] / scored if scored else None,
                    }
                )
        return pd.DataFrame(rows)

    def recent_frame(self) -> pd.DataFrame:
        """The last few finished cells, newest first."""
        import pandas as pd

        with self._lock:
            return pd.DataFrame([cell.__dict__ for cell in self.recent])
