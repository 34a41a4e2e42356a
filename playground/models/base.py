"""The one contract every chat model implements, and the records that cross it."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from playground.errors import ParamError

Role = Literal["system", "user", "assistant"]


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    content: str


class ModelParams(BaseModel):
    """Sampling parameters shared by every provider; unknown names and nan/inf are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1, le=32768)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    stop: list[str] = Field(default_factory=list, max_length=4)

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, value: list[str]) -> list[str]:
        if any(s == "" for s in value):
            raise ValueError("stop sequences cannot be empty strings")
        return value

    @classmethod
    def parse(cls, data: dict[str, object], where: str = "") -> ModelParams:
        """Validate params, raising ParamError that names the field and the allowed range."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ParamError(param_error_message(exc, where)) from None


def param_error_message(exc: ValidationError, where: str = "") -> str:
    """One sentence for the first problem in a params ValidationError."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "params"
    place = f" for {where}" if where else ""
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(ModelParams.model_fields)
        return f"Unknown parameter '{field}'{place}; use one of {allowed}."
    value = err.get("input")
    shown = repr(value)
    if isinstance(value, str):
        try:
            float(value)  # a number typed on the command line reads best without quotes
            shown = value
        except ValueError:
            pass
    return f"Parameter '{field}'{place} is {shown}: {err['msg'].lower()}; change it and run again."


@dataclass
class Usage:
    """Token counts of one call; estimated when the server did not report them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False


# When the current call first sent its request. A context variable, not a thread-local: calls on
# one event loop (the served path) each run in their own task's context, calls on threads in
# their thread's, so two calls never read each other's clock.
_sent_at: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "playground_sent_at", default=None
)
# Set once any request has left this process: work that can wait (opening the store) waits for it.
request_sent = threading.Event()


def start_call() -> None:
    """The runner starts measuring a call in this thread or task: no request sent yet."""
    _sent_at.set(None)


def note_request_sent() -> None:
    """A provider's request (or its first retry) is leaving now; the clock starts here.

    Called on the thread (or in the task) that sends, so that importing an SDK, creating a
    client or building the request before it never counts as latency. Retries keep the first
    send's time.
    """
    if _sent_at.get() is None:
        _sent_at.set(time.perf_counter())
    request_sent.set()


def request_sent_at() -> float | None:
    """time.perf_counter() when the current call first sent, if its provider said so."""
    return _sent_at.get()


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: stream text chunks for messages and params, optionally ending with Usage.

    Providers only stream; timing, token fallback and cost are measured by playground.runner,
    from the moment the provider calls `note_request_sent` (or, if it never does, from when
    the stream is opened).
    A provider raises a PlaygroundError subclass (EndpointError, MissingKeyError) on failure.
    A provider that can constrain its answer sets `supports_response_format = True` and takes
    a keyword-only `response_format` (a playground.models.response_format.ResponseFormat);
    the runner passes it only for JSON runs, so text-only providers need neither.

    A provider that can answer on an event loop also has `astream` (see AsyncChatModel), with
    the same arguments, deltas, Usage and errors; the served API awaits it instead of giving
    each call a worker thread. Providers without it are run on threads.
    """

    model_id: str

    def stream(self, messages: Sequence[Message], params: ModelParams) -> Iterator[str | Usage]:
        """Yield text deltas, then at most one Usage."""
        ...


@runtime_checkable
class AsyncChatModel(ChatModel, Protocol):
    """A ChatModel that can also stream on an event loop (no thread per call)."""

    def astream(
        self, messages: Sequence[Message], params: ModelParams
    ) -> AsyncIterator[str | Usage]:
        """Yield text deltas, then at most one Usage, like `stream`, without blocking the loop."""
        ...
