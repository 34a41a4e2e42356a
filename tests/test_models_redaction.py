"""No secret in any message: configured key values and token-shaped strings are redacted."""

from __future__ import annotations

from typing import Any

import pytest

from playground.config import load_settings
from playground.errors import EndpointError, PlaygroundError
from playground.redaction import REDACTED, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abcdef123456", f"Authorization: Bearer {REDACTED}"),
        ('{"authorization": "bearer x.y.z-123"}', f'{{"authorization": "bearer {REDACTED}"}}'),
        ("key sk-proj-AbCdEf0123456789xyz was refused", f"key {REDACTED} was refused"),
        ("GET /v1?api_key=hunter2hunter2&x=1", f"GET /v1?api_key={REDACTED}&x=1"),
        ('{"password": "s3cr3t-pw"}', f'{{"password": "{REDACTED}"}}'),
        (
            "cannot reach http://bob:pa55word@host:8000/v1",
            f"cannot reach http://{REDACTED}@host:8000/v1",
        ),
        # ordinary words stay: names of variables, token counts, short words
        ("set OPENAI_API_KEY and api_key_env", "set OPENAI_API_KEY and api_key_env"),
        (
            "cut off after 3 tokens; bearer token missing",
            "cut off after 3 tokens; bearer token missing",
        ),
    ],
)
def test_token_shaped_strings_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_every_configured_key_value_is_redacted_from_every_playground_error(
    write_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYSERVER_KEY", "plain-secret-value-42")
    monkeypatch.setenv("MOD_KEY", "moderation-secret-77")
    monkeypatch.setenv("OPENAI_API_KEY", "openai-key-without-prefix")
    write_config(
        '[endpoints.srv]\nbase_url = "http://127.0.0.1:1/v1"\napi_key_env = "MYSERVER_KEY"\n'
        '[moderation]\nbase_url = "http://127.0.0.1:1/v1"\napi_key_env = "MOD_KEY"\n'
    )
    load_settings()

    error = EndpointError(
        "server said: plain-secret-value-42 / moderation-secret-77 / openai-key-without-prefix"
    )

    assert str(error) == f"server said: {REDACTED} / {REDACTED} / {REDACTED}"
    assert str(PlaygroundError("nothing secret here")) == "nothing secret here"


def test_messages_are_plain_text_without_terminal_codes() -> None:
    error = EndpointError("base_url \x1b[4;94mftp://x\x1b[0m must start with http://\x07")

    assert str(error) == "base_url ftp://x must start with http://"
