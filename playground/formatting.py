"""Human-readable figures for results, shared by the app and the command line."""

from __future__ import annotations

from datetime import UTC, datetime

from playground.config import Price
from playground.moderation import verdict_label
from playground.records import Result

NONE_SHOWN = "—"  # what a table cell shows for "no value" instead of None


def duration(ms: float | None) -> str:
    """Milliseconds as '850 ms' or '1.32 s'; an em dash when unknown."""
    if ms is None:
        return "—"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def when(moment: datetime | str | None) -> str:
    """A time for people: '2 Dec 2026, 07:51 UTC' (ISO strings too); an em dash when unknown."""
    if moment is None or moment == "":
        return NONE_SHOWN
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the store keeps UTC
    moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def version_name(version: int | None) -> str:
    """A flow version as people write it: 'v3'; an em dash when there is none."""
    return NONE_SHOWN if version is None else f"v{version}"


PRICE_UNKNOWN = "price unknown"


def price_per_million(price: Price | None, local: bool) -> tuple[str, str]:
    """Input and output price per million tokens for people: '$0.15', 'free', 'price unknown'.

    A model without a configured price costs 0 in the figures, which is true only for the
    models that run on this machine; for the others it is unknown, and the page says so.
    """
    if price is None:
        return ("free", "free") if local else (PRICE_UNKNOWN, PRICE_UNKNOWN)
    return f"${price.input:g}", f"${price.output:g}"


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
    if result.moderation is not None:
        parts.append(f"moderation {verdict_label(result.moderation)}")
    return " · ".join(parts)
