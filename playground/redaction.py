"""Keep secrets and terminal codes out of every message: key values, token-like strings, ANSI.

Servers echo requests in their error bodies (some put the `Authorization` header there), and
messages travel to the store, exports, `--json` output and shared pages. Every PlaygroundError
passes its message through `redact`, and so does every unexpected error turned into text.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 8  # shorter values would blank ordinary words out of messages

_TOKEN_PATTERNS = [
    # Authorization: Bearer abc, in headers, JSON bodies or repr()s
    re.compile(r"(?i)\b(bearer)(?:\s+|%20)[A-Za-z0-9._~+/=-]{6,}"),
    # OpenAI-style keys (sk-..., sk-proj-...)
    re.compile(r"\b(sk)-[A-Za-z0-9_-]{12,}"),
    # api_key=..., "api-key": "...", x-api-key: ..., password=...
    re.compile(
        r"(?i)\b((?:x-)?(?:api[_-]?key|password|passwd|secret|access[_-]?token)[\"']?\s*[:=]\s*[\"']?)"
        r"[^\s\"',;}&]{4,}"
    ),
]
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values (API keys, passwords) so that no message ever shows them."""
    with _secrets_lock:
        _secrets.update(v for v in values if v and len(v) >= MIN_SECRET_LENGTH)


_TERMINAL_CODES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")


def plain_text(text: str) -> str:
    """The text without terminal colour codes or control characters (newlines and tabs stay).

    Messages are shown on pages, stored and printed as JSON; only the command line colours its
    own output, and only on a terminal.
    """
    return _TERMINAL_CODES.sub("", text)


def clean_message(text: str) -> str:
    """A message fit to show anywhere: plain text, secrets redacted."""
    return redact(plain_text(text))


def redact(text: str) -> str:
    """The text with every registered secret and every token-like string replaced."""
    if not text:
        return text
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)  # a longer secret may contain a shorter
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _URL_CREDENTIALS.sub(rf"\1{REDACTED}@", text)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(_keep_label, text)
    return text


def _keep_label(match: re.Match[str]) -> str:
    # keep "Bearer " / "api_key=" so the message still says what was there
    label = match.group(1)
    if match.re is _TOKEN_PATTERNS[0]:
        return f"{label} {REDACTED}"
    if match.re is _TOKEN_PATTERNS[1]:
        return REDACTED
    return f"{label}{REDACTED}"
