"""`[[alerts]]`: thresholds on served flows, evaluated on a schedule, posted to webhooks.

A breach is recorded and POSTed once; when it clears, a recovery is posted once. The state
lives in the store, and flipping it is a conditional update, so several replicas evaluating
the same rules send one message per change. Webhooks are posted by a background thread with
retries and exponential backoff; a webhook that is down never blocks serving or evaluation.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta

from playground.config import Settings
from playground.records import utc_now
from playground.serve.monitor import metric_value
from playground.serve.settings import AlertRule, alert_rules

log = logging.getLogger(__name__)

BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # waits between attempts; len + 1 attempts in all
POST_TIMEOUT_S = 5.0


@dataclass
class AlertCheck:
    """One rule's evaluation: the measured value and whether it breaches."""

    rule: AlertRule
    value: float | None
    breached: bool
    changed: bool  # this evaluation flipped the stored state (and queued a message)


def alert_message(rule: AlertRule, value: float | None, breached: bool) -> str:
    """One sentence for the webhook and the Monitor page."""
    where = f"flow {rule.flow}" if rule.flow else "served flows"
    shown = "no data" if value is None else f"{value:.4g}"
    threshold = f"{rule.metric} {rule.operator} {rule.value:g} over {rule.window}"
    if breached:
        return f"Alert {rule.name}: {where} breach {threshold} (now {shown})."
    return f"Recovered {rule.name}: {where} no longer breach {threshold} (now {shown})."


class WebhookSender:
    """Posts alert events from a queue on one thread, retrying with backoff."""

    def __init__(self, settings: Settings, backoff: tuple[float, ...] = BACKOFF_S) -> None:
        self.settings = settings
        self.backoff = backoff
        self.queue: queue.Queue[tuple[int, str, dict[str, object]] | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="alert-webhooks", daemon=True)
        self._thread.start()

    def send(self, event_id: int, url: str, payload: dict[str, object]) -> None:
        """Queue a delivery; returns at once."""
        self.queue.put((event_id, url, payload))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current attempt (undelivered events stay marked undelivered)."""
        self._stop.set()
        self.queue.put(None)
        self._thread.join(timeout=timeout)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until every queued delivery is done (tests, `monitor --evaluate`)."""
        done = threading.Event()
        self.queue.put((-1, "", {"__done__": done}))  # type: ignore[dict-item]
        done.wait(timeout)

    def _work(self) -> None:
        from playground.store import open_store

        while True:
            item = self.queue.get()
            if item is None:
                return
            event_id, url, payload = item
            marker = payload.get("__done__")
            if isinstance(marker, threading.Event):
                marker.set()
                continue
            attempts, error = 0, None
            delivered = False
            for wait in (0.0, *self.backoff):
                if wait and self._stop.wait(wait):
                    break
                attempts += 1
                error = _post(url, payload)
                if error is None:
                    delivered = True
                    break
            try:
                open_store(self.settings).traces.mark_delivery(event_id, delivered, attempts, error)
            except Exception:
                log.exception("Could not record delivery of alert event %s", event_id)


def _post(url: str, payload: dict[str, object]) -> str | None:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT_S) as response:
            if 200 <= response.status < 300:
                return None
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


class AlertEngine:
    """Evaluates every rule against the store and queues one message per state change."""

    def __init__(
        self,
        settings: Settings,
        rules: list[AlertRule] | None = None,
        sender: WebhookSender | None = None,
    ) -> None:
        self.settings = settings
        self.rules = alert_rules(settings) if rules is None else rules
        self.sender = sender

    def evaluate(self, now: datetime | None = None) -> list[AlertCheck]:
        """Measure each rule over its window, flip state where it changed, queue webhooks."""
        from playground.store import open_store

        traces = open_store(self.settings).traces
        now = now or utc_now()
        checks = []
        for rule in self.rules:
            since = now - timedelta(seconds=rule.window_s)
            calls = traces.served_calls(since, rule.flow)
            value: float | None = None
            if len(calls) >= rule.min_requests or rule.metric == "requests":
                feedback = traces.served_feedback(since, rule.flow)
                scores = traces.scores_since(since, rule.flow)
                value = metric_value(rule.metric, calls, feedback, scores)
            breached = value is not None and rule.breached(value)
            changed = traces.flip_alert(rule.name, breached, value)
            if changed:
                message = alert_message(rule, value, breached)
                kind = "breach" if breached else "recovery"
                event_id = traces.add_alert_event(rule.name, kind, value, message, rule.webhook)
                if rule.webhook and self.sender is not None:
                    self.sender.send(
                        event_id,
                        rule.webhook,
                        {
                            "text": message,  # Slack and Teams show `text`
                            "alert": rule.name,
                            "kind": kind,
                            "flow": rule.flow,
                            "metric": rule.metric,
                            "operator": rule.operator,
                            "threshold": rule.value,
                            "window": rule.window,
                            "value": value,
                        },
                    )
            checks.append(AlertCheck(rule, value, breached, changed))
        return checks


class AlertSchedule:
    """Evaluates the alerts every `interval` seconds on a background thread while serving."""

    def __init__(self, settings: Settings, interval: float) -> None:
        self.settings = settings
        self.interval = interval
        self.rules = alert_rules(settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="alert-schedule", daemon=True)
        self.sender: WebhookSender | None = None

    def start(self) -> None:
        """Start evaluating (nothing to do without rules)."""
        if self.rules:
            self.sender = WebhookSender(self.settings)
            self._thread.start()

    def stop(self) -> None:
        """Stop evaluating and sending."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self.sender is not None:
            self.sender.stop()

    def _loop(self) -> None:
        engine = AlertEngine(self.settings, self.rules, self.sender)
        while not self._stop.wait(self.interval):
            try:
                engine.evaluate()
            except Exception:  # a failing evaluation must not stop the schedule
                log.exception("Alert evaluation failed")
