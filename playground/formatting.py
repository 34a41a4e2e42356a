"""Human-readable figures for results, shared by the app and the command line."""

from __future__ import annotations

from playground.moderation import verdict_label
from playground.records import Result


def duration(ms: float | None) -> str:
    """Milliseconds as '850 ms' or '1.32 s'; an em dash when unknown."""
    if ms is None:
        return "—"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def usd(amount: float) -> str:
    """A cost in USD with enough digits for sub-cent calls."""
    if amount == 0:
        return "$0"
    return f"${amount:.6f}" if amount < 0.01 else f"${amount:.4f}"


def metrics_line(result: Result) -> str:
    """One line of a result's latency, speed, tokens and cost."""
    speed = f"{result.tokens_per_s:.1f} tok/s" if result.tokens_per_s else "— tok/s"
    approx = "~" if result.usage.estimated else ""
    parts = [
        f"TTFT {duration(result.ttft_ms)}",
        f"total {duration(result.latency_ms)}",
        speed,
        f"{approx}{result.usage.prompt_tokens} in / {approx}{result.usage.completion_tokens} out",
        usd(result.cost_usd),
    ]
    if result.groundedness is not None:
        parts.append(f"grounded {result.groundedness:.0%}")
    if result.moderation:
        parts.append(f"moderation {verdict_label(result.moderation)}")
    return " · ".join(parts)
