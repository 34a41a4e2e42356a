"""Prometheus metrics of one served app: its own registry, so two apps in a process never mix.

With `--workers N` every worker counts its own calls; `flow serve` then sets
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode: each process writes its values
to files there), and /metrics, whichever worker answers, sums every worker's files.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from playground.records import Result

if TYPE_CHECKING:
    from playground.serve.service import ServedFlow

# Seconds; a served call is dominated by the model, so the buckets span 10 ms to 2 minutes.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def outcome_of(result: Result) -> str:
    """ok, cut_off or error: what the Monitor and the error counter distinguish."""
    if result.error is None:
        return "ok"
    return "cut_off" if result.error.startswith("Cut off") else "error"


class ServeMetrics:
    """Request count, errors, a latency histogram, tokens and cost, per flow and version."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http = Counter(
            "playground_serve_http_responses",
            "HTTP responses by route and status (every request, including refused ones).",
            ["route", "status"],
            registry=self.registry,
        )
        self.calls = Counter(
            "playground_serve_calls",
            "Served flow calls by flow, version and outcome (ok, error, cut_off).",
            ["flow", "version", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "playground_serve_errors",
            "Served calls whose model failed or whose client disconnected.",
            ["flow", "version", "kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "playground_serve_call_latency_seconds",
            "Model latency of served calls (as the runner measures it).",
            ["flow", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "playground_serve_tokens",
            "Tokens of served calls by kind (prompt, completion).",
            ["flow", "version", "kind"],
            registry=self.registry,
        )
        self.unrecorded = Counter(
            "playground_serve_unrecorded_calls",
            "Served calls answered but not stored (the store refused them; see the log).",
            ["flow", "version"],
            registry=self.registry,
        )
        self.cost = Counter(
            "playground_serve_cost_usd",
            "Cost of served calls in USD at the configured prices.",
            ["flow", "version"],
            registry=self.registry,
        )

    def observe_call(self, served: ServedFlow, result: Result, route: str) -> None:
        """Count one finished call."""
        del route  # per-route counts are in the HTTP counter
        flow, version = served.name, str(served.version or 0)
        outcome = outcome_of(result)
        self.calls.labels(flow, version, outcome).inc()
        if outcome != "ok":
            self.errors.labels(flow, version, outcome).inc()
        if result.latency_ms is not None:
            self.latency.labels(flow, version).observe(result.latency_ms / 1000)
        self.tokens.labels(flow, version, "prompt").inc(result.usage.prompt_tokens)
        self.tokens.labels(flow, version, "completion").inc(result.usage.completion_tokens)
        self.cost.labels(flow, version).inc(result.cost_usd)

    def render(self) -> bytes:
        """The Prometheus text exposition (of every worker, in multiprocess mode)."""
        if os.environ.get(MULTIPROCESS_ENV):
            from prometheus_client import multiprocess

            summed = CollectorRegistry()
            multiprocess.MultiProcessCollector(summed)
            return generate_latest(summed)
        return generate_latest(self.registry)
