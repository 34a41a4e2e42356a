"""`[serve]` and `[[alerts]]` from playground.toml, validated when a flow is served or monitored.

```toml
[serve]
host = "127.0.0.1"            # loopback unless told otherwise
port = 8300
api_key_env = "SERVE_TOKEN"   # optional bearer token, read from this environment variable
max_body_kb = 64              # larger requests get 413
max_tokens = 1024             # a call may not ask for more (422); the spec's value is capped
cors_origins = []             # CORS stays off unless origins are listed
score_sample = 0.1            # share of calls scored online, off the request path
alert_interval_s = 60         # how often [[alerts]] are evaluated while serving
otlp_endpoint = ""            # optional OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (else
                              # OTEL_EXPORTER_OTLP_ENDPOINT); needs the `otel` extra

[[alerts]]
name = "errors"
flow = "gear-support"         # optional: one flow, else every served flow
metric = "error_rate"         # see METRICS
operator = ">"
value = 0.05
window = "15m"
webhook = "https://hooks.example.com/T000"
```
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from playground.config import Settings
from playground.errors import ConfigError

METRICS = (
    "requests",
    "error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "tokens",
    "cost_usd",
    "mean_stars",
    "online_score",
)
Operator = Literal[">", ">=", "<", "<="]
_WINDOW = re.compile(r"(?P<n>[1-9][0-9]*)(?P<unit>[smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def window_seconds(window: str) -> int:
    """'15m' -> 900; a window is a whole number of s, m, h or d."""
    match = _WINDOW.fullmatch(window.strip())
    if not match:
        raise ValueError(f"window {window!r} is not like 15m, 1h or 7d")
    return int(match["n"]) * _UNIT_S[match["unit"]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServeSettings(_Strict):
    """How `playground flow serve` listens, guards and samples."""

    host: str = "127.0.0.1"
    port: int = Field(8300, ge=1, le=65535)
    api_key_env: str | None = None
    max_body_kb: float = Field(64.0, gt=0)
    max_tokens: int = Field(1024, ge=1, le=32768)
    cors_origins: list[str] = Field(default_factory=list)
    score_sample: float = Field(0.1, ge=0.0, le=1.0)
    alert_interval_s: float = Field(60.0, gt=0)
    otlp_endpoint: str | None = None

    @property
    def max_body_bytes(self) -> int:
        """The request size limit in bytes."""
        return int(self.max_body_kb * 1024)

    def api_key(self) -> str | None:
        """The bearer token from the environment; ConfigError if the variable is named but empty."""
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env, "")
        if not value:
            raise ConfigError(
                f"[serve] api_key_env names {self.api_key_env}, which is not set; export it "
                "or remove api_key_env to serve without a token."
            )
        return value


class AlertRule(_Strict):
    """One `[[alerts]]` threshold: metric OPERATOR value over a window, posted to a webhook."""

    name: str = Field(min_length=1, max_length=100)
    metric: str
    operator: Operator
    value: float
    window: str = "15m"
    webhook: str | None = None
    flow: str | None = None
    min_requests: int = Field(1, ge=0)  # below this many calls a rate or percentile says nothing

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"metric {value!r} is not one of {', '.join(METRICS)}")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        window_seconds(value)
        return value

    @field_validator("webhook")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value or None

    @property
    def window_s(self) -> int:
        """The window in seconds."""
        return window_seconds(self.window)

    def breached(self, measured: float) -> bool:
        """True when the measured value crosses the threshold."""
        return {
            ">": measured > self.value,
            ">=": measured >= self.value,
            "<": measured < self.value,
            "<=": measured <= self.value,
        }[self.operator]


def _first_error(exc: ValidationError, table: str) -> str:
    err = exc.errors()[0]
    field = ".".join(str(part) for part in err["loc"])
    return f"Setting '{table}.{field}' in playground.toml is invalid: {err['msg']}; fix it."


def serve_settings(settings: Settings) -> ServeSettings:
    """The validated [serve] table (defaults when absent)."""
    try:
        return ServeSettings.model_validate(settings.serve)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc, "serve")) from None


def alert_rules(settings: Settings) -> list[AlertRule]:
    """The validated [[alerts]] tables, names unique."""
    rules: list[AlertRule] = []
    for index, raw in enumerate(settings.alerts):
        try:
            rules.append(AlertRule.model_validate(raw))
        except ValidationError as exc:
            raise ConfigError(_first_error(exc, f"alerts[{index}]")) from None
    names = [r.name for r in rules]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"Two [[alerts]] are named {duplicate!r}; give each a unique name.")
    return rules
