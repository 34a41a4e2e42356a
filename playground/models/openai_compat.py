"""OpenAI, Azure OpenAI and any OpenAI-compatible server, through the official openai SDK.

`stream` uses the SDK's sync client (threads: the app, the CLI, batches); `astream` its
`AsyncOpenAI` client on the running event loop (the served API), with the same retries,
timeouts, deadlines and error sentences.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import importlib
import inspect
import sys
import threading
import time
import types
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from playground.errors import EndpointError
from playground.models.base import Message, ModelParams, Usage, note_request_sent
from playground.models.response_format import (
    ResponseFormat,
    llama_response_format,
    openai_response_format,
)
from playground.redaction import register_secrets

NO_KEY = "not-needed"  # local servers accept any key; the SDK insists on one
DEFAULT_IDLE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class EndpointSpec:
    """Where a model lives and how patiently to call it.

    `timeout` bounds each attempt from sending the request to the last chunk; `idle_timeout`
    bounds the silence between two chunks once an answer has started (SSE comments and
    keep-alives do not count as chunks).
    """

    kind: str  # openai | azure | compatible
    base_url: str | None
    api_key: str | None
    api_key_env: str | None
    timeout: float
    max_retries: int
    api_version: str | None = None
    idle_timeout: float | None = None

    def __post_init__(self) -> None:
        register_secrets([self.api_key])  # a server may echo the key back in an error

    @property
    def label(self) -> str:
        """A human name of the endpoint for error messages."""
        return self.base_url or ("Azure OpenAI" if self.kind == "azure" else "OpenAI")

    @property
    def idle_limit(self) -> float:
        """Seconds of silence between chunks before a stream is given up."""
        return min(self.idle_timeout or DEFAULT_IDLE_TIMEOUT_S, self.timeout)


_clients: dict[EndpointSpec, Any] = {}
_clients_lock = threading.Lock()
# AsyncOpenAI clients per event loop, then per endpoint: an async client's connections belong
# to the loop that opened them (tests run servers on loops of their own, one after another).
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[EndpointSpec, Any]] = (
    weakref.WeakKeyDictionary()
)
# When the current call's latest attempt was sent (time.monotonic(); retries send again): the
# stream's total deadline counts from it. Per thread or per task, as base.note_request_sent.
_attempt_sent: contextvars.ContextVar[float] = contextvars.ContextVar("playground_attempt_sent")
# Endpoints that refused OpenAI's json_schema type but took llama.cpp's json_object + schema,
# and endpoints whose dialect is known (no need to probe them again).
_llama_dialect: set[EndpointSpec] = set()
_dialect_known: set[EndpointSpec] = set()


def _note_request_sent(request: Any) -> None:
    _attempt_sent.set(time.monotonic())
    note_request_sent()  # the runner's latency clock starts when the bytes go out


async def _anote_request_sent(request: Any) -> None:
    _note_request_sent(request)  # the async client awaits its hooks, in the sending task


_sdk_import: threading.Thread | None = None


def _import_sdk() -> None:
    with contextlib.suppress(Exception):  # a broken SDK is reported by the call, in its words
        importlib.import_module("openai")


def import_sdk_early() -> None:
    """Start importing the openai SDK on a thread (once), for a command that will call it.

    The import takes 0.6-1.2 s; started when a command begins, it runs alongside the reading
    of flows and datasets instead of between them and the first request. Not a daemon: the
    interpreter never exits in the middle of an import.
    """
    global _sdk_import
    with _clients_lock:
        if _sdk_import is None and "openai" not in sys.modules:
            _sdk_import = threading.Thread(target=_import_sdk, name="import-openai")
            _sdk_import.start()


_tls_early: threading.Thread | None = None
_tls_made: list[Any] = []  # at most one context built ahead, for the first client created


def _build_tls_context() -> None:
    # the SDK's HTTP library, with the defaults a client uses (verify=True, trust_env=True)
    with contextlib.suppress(Exception):  # the client then builds its own, and says what failed
        import httpx2

        _tls_made.append(httpx2.create_ssl_context())


def build_tls_early() -> None:
    """Build the first client's SSL context on a thread (once), for a command that will call.

    Loading the CA bundle takes 30-60 ms without holding the GIL: begun as the command starts,
    it runs on the other core while this thread imports the SDK and reads the input, instead
    of between the import and the first request. The context is the one the client would
    build (httpx's defaults), so certificates and SSL_CERT_FILE are honoured exactly as before.
    """
    global _tls_early
    with _clients_lock:
        if _tls_early is None and not _clients:
            _tls_early = threading.Thread(target=_build_tls_context, name="tls-context")
            _tls_early.start()


def _tls_kwargs() -> dict[str, Any]:
    """`verify=` the context built ahead (taken once), or nothing: httpx builds its own."""
    if _tls_early is None:
        return {}
    _tls_early.join()
    return {"verify": _tls_made.pop()} if _tls_made else {}


def client_for(spec: EndpointSpec) -> Any:
    """One openai client per endpoint, shared by every model on it (imported lazily)."""
    with _clients_lock:
        if spec not in _clients:
            import openai

            # the hook runs in the calling thread each time a request (or a retry) goes out
            http_client = openai.DefaultHttpxClient(
                timeout=spec.timeout,
                event_hooks={"request": [_note_request_sent]},
                **_tls_kwargs(),
            )
            if spec.kind == "azure":
                _clients[spec] = openai.AzureOpenAI(
                    azure_endpoint=spec.base_url or "",
                    api_key=spec.api_key,
                    api_version=spec.api_version,
                    timeout=spec.timeout,
                    max_retries=spec.max_retries,
                    http_client=http_client,
                )
            else:
                _clients[spec] = openai.OpenAI(
                    base_url=spec.base_url,
                    api_key=spec.api_key or NO_KEY,
                    timeout=spec.timeout,
                    max_retries=spec.max_retries,
                    http_client=http_client,
                )
        return _clients[spec]


def _async_http_client(spec: EndpointSpec) -> Any:
    """The SDK's aiohttp client (its `aiohttp` extra), else its httpx one; hooks as `client_for`.

    httpx's async pool checked every pooled connection through anyio on each request: with
    100 clients a served call took 4.6-7.7 ms of CPU, against 2.6-3.0 on aiohttp
    (bench/README.md).
    """
    import openai

    hooks = {"request": [_anote_request_sent]}
    try:
        return openai.DefaultAioHttpClient(timeout=spec.timeout, event_hooks=hooks)
    except RuntimeError:  # the SDK says aiohttp is not installed
        return openai.DefaultAsyncHttpxClient(timeout=spec.timeout, event_hooks=hooks)


def async_client_for(spec: EndpointSpec) -> Any:
    """One AsyncOpenAI client per endpoint on the running event loop (same retries, timeouts)."""
    import openai

    loop = asyncio.get_running_loop()
    clients = _async_clients.get(loop)
    if clients is None:
        # a client refers to its loop, so a closed loop's entry would never be let go
        for closed in [known for known in _async_clients if known.is_closed()]:
            del _async_clients[closed]
        clients = _async_clients[loop] = {}
    client = clients.get(spec)
    if client is None:  # no lock: one loop runs one task at a time, and this never awaits
        http_client = _async_http_client(spec)
        if spec.kind == "azure":
            client = openai.AsyncAzureOpenAI(
                azure_endpoint=spec.base_url or "",
                api_key=spec.api_key,
                api_version=spec.api_version,
                timeout=spec.timeout,
                max_retries=spec.max_retries,
                http_client=http_client,
            )
        else:
            client = openai.AsyncOpenAI(
                base_url=spec.base_url,
                api_key=spec.api_key or NO_KEY,
                timeout=spec.timeout,
                max_retries=spec.max_retries,
                http_client=http_client,
            )
        clients[spec] = client
    return client


async def aclose_async_clients() -> None:
    """Close the running loop's async clients and their connections (a server shutting down)."""
    clients = _async_clients.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        with contextlib.suppress(Exception):  # closing must not fail a shutdown
            await client.close()


class _Deadline:
    """Closes a stream that runs past its total deadline or goes quiet between two chunks.

    The SDK's timeout applies to each read, so a server that trickles SSE comments would keep
    a call open forever; one watcher thread (shared by every stream, so 48 streams do not
    start 48 more threads) cuts it at the deadline and says which one.
    """

    def __init__(self, total_at: float, idle_s: float, close: Callable[[], None]) -> None:
        self.total_at = total_at
        self.idle_s = idle_s
        self.expired: str | None = None  # "total" or "idle" once it fired
        self._close = close
        self._last_chunk: float | None = None  # idle time counts once the answer started
        _watcher.add(self)

    def due(self) -> tuple[float, str]:
        """When this stream is given up, and why."""
        last = self._last_chunk
        if last is not None and last + self.idle_s < self.total_at:
            return last + self.idle_s, "idle"
        return self.total_at, "total"

    def chunk_arrived(self) -> None:
        """Note a chunk: the idle clock starts again."""
        first = self._last_chunk is None
        self._last_chunk = time.monotonic()
        if first:  # later chunks only move the idle deadline later: no need to wake the watcher
            _watcher.wake(self.due()[0])

    def stop(self) -> None:
        """The stream ended: stop watching."""
        _watcher.remove(self)

    def fire(self, kind: str) -> None:
        """The deadline passed: say which, and close the stream."""
        self.expired = kind
        with contextlib.suppress(Exception):
            self._close()


class _Watcher:
    """The one thread that watches every open stream's deadline."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._open: set[_Deadline] = set()
        self._thread: threading.Thread | None = None
        # When the watcher's wait ends (inf: no deadline; -inf: it is looking now). A deadline
        # due later needs no wake-up: waking the thread for every call cost a GIL hand-off.
        self._wakes_at = float("-inf")

    def add(self, deadline: _Deadline) -> None:
        """Watch a new stream."""
        with self._changed:
            self._open.add(deadline)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._watch, name="stream-deadlines", daemon=True
                )
                self._thread.start()
            self._nudge(deadline.due()[0])

    def remove(self, deadline: _Deadline) -> None:
        """Stop watching a stream (its watcher need not wake for it)."""
        with self._changed:
            self._open.discard(deadline)

    def wake(self, due: float) -> None:
        """A deadline moved earlier, to `due`: look again if the watcher would wake later."""
        with self._changed:
            self._nudge(due)

    def _nudge(self, due: float) -> None:
        if due < self._wakes_at:  # (called with the lock held)
            self._changed.notify()

    def _watch(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                expired = []
                soonest: float | None = None
                for deadline in list(self._open):
                    due, kind = deadline.due()
                    if due <= now:
                        self._open.discard(deadline)
                        expired.append((deadline, kind))
                    elif soonest is None or due < soonest:
                        soonest = due
                if not expired:
                    self._wakes_at = float("inf") if soonest is None else soonest
                    self._changed.wait(None if soonest is None else soonest - now)
                    self._wakes_at = float("-inf")
                    continue
            for deadline, kind in expired:  # closing may block: never under the lock
                deadline.fire(kind)


_watcher = _Watcher()


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", exc))


def _timed_out(exc: Exception) -> bool:
    """True for an SDK timeout that is one: the SDK's aiohttp transport files a refused or
    dropped connection (aiohttp's ClientConnectionError) as a connect timeout too."""
    import openai

    if not isinstance(exc, openai.APITimeoutError):
        return False
    aiohttp = sys.modules.get("aiohttp")
    cause = exc.__cause__
    while cause is not None:
        if (
            aiohttp is not None
            and isinstance(cause, aiohttp.ClientConnectionError)
            and not isinstance(cause, aiohttp.ServerTimeoutError)
        ):
            return False  # then an APIConnectionError, as the httpx transport says
        cause = cause.__cause__
    return True


def explain(exc: Exception, model_id: str, spec: EndpointSpec) -> EndpointError:
    """Turn an openai SDK exception into one sentence that says what to do."""
    import openai

    where = spec.label
    plural = "retry" if spec.max_retries == 1 else "retries"
    retries = f" after {spec.max_retries} {plural}" if spec.max_retries else ""
    if _timed_out(exc):
        return EndpointError(
            f"{model_id} did not answer within {spec.timeout:g} s{retries}; "
            "try again or raise the timeout in playground.toml."
        )
    if isinstance(exc, openai.APIConnectionError):
        return EndpointError(
            f"Cannot reach {where} for {model_id}; check that the server is running "
            "and its base_url in playground.toml."
        )
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        key = spec.api_key_env or "its API key"
        return EndpointError(
            f"{where} refused the API key for {model_id} ({exc.status_code}); check {key}."
        )
    if isinstance(exc, openai.RateLimitError):
        return EndpointError(
            f"{model_id} is rate-limited by {where} (429){retries}; wait a minute and run again."
        )
    if isinstance(exc, openai.NotFoundError):
        return EndpointError(
            f"{where} does not serve {model_id} (404); pick a model it lists on the Settings page."
        )
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        detail = _server_message(exc)
        if "context" in detail.lower() or "too long" in detail.lower():
            return EndpointError(
                f"The prompt is longer than {model_id}'s context window ({detail}); "
                "shorten the prompt or lower max_tokens."
            )
        return EndpointError(f"{where} rejected the request for {model_id}: {detail}")
    if isinstance(exc, openai.InternalServerError):
        return EndpointError(
            f"{model_id} failed with a server error ({exc.status_code}) at {where}{retries}; "
            "try again later."
        )
    if isinstance(exc, openai.APIStatusError):
        return EndpointError(
            f"{where} answered {exc.status_code} for {model_id}: {_server_message(exc)}"
        )
    return EndpointError(
        f"{where} sent a response for {model_id} that is not valid OpenAI JSON "
        f"({type(exc).__name__}); check that base_url points at an OpenAI-compatible /v1 API."
    )


def _sdk_instrumented(asynchronous: bool = False) -> bool:
    """True when an instrumentor (OpenTelemetry's openai-v2) has wrapped the SDK's create."""
    from openai.resources.chat.completions import AsyncCompletions, Completions

    resource = AsyncCompletions if asynchronous else Completions
    # the SDK's own is a plain function; instrumentors put a wrapt proxy in its place, which
    # passes isinstance checks (it forwards __class__), so the type itself is compared. Read
    # from the class's own dict, where both live: inspect.getattr_static walked the MRO on
    # every call (6% of a served call's CPU, bench/README.md).
    create = vars(resource).get("create")
    if create is None:  # a future SDK defining it on a base class
        create = inspect.getattr_static(resource, "create")
    return type(create) is not types.FunctionType


def _send_chat(client: Any, kwargs: dict[str, Any]) -> Any:
    """Send a streaming chat request; its chunks are plain dicts unless the SDK is traced.

    `chat.completions.create` builds a pydantic chunk per SSE event and walks the request
    through its TypedDict transforms: a third of a served call's CPU (bench/README.md). The
    client's own `post` keeps its retries, headers, errors and SSE parsing without those. An
    instrumented SDK goes through `create`, so its spans exist.
    """
    if _sdk_instrumented():
        return client.chat.completions.create(**kwargs)
    import openai

    return client.post(
        "/chat/completions",
        body=kwargs,
        cast_to=object,
        stream=True,
        stream_cls=openai.Stream[object],
    )


async def _asend_chat(client: Any, kwargs: dict[str, Any]) -> Any:
    """`_send_chat` on an AsyncOpenAI client: chunks as dicts unless the SDK is traced.

    The async SDK reads the body's end after `data: [DONE]` itself, so its connections are
    reused without `_reusable`.
    """
    if _sdk_instrumented(asynchronous=True):
        return await client.chat.completions.create(**kwargs)
    import openai

    return await client.post(
        "/chat/completions",
        body=kwargs,
        cast_to=object,
        stream=True,
        stream_cls=openai.AsyncStream[object],
    )


async def _aclose_stream(response: Any) -> None:
    """Close an async chat stream: the SDK's own, or an instrumentor's wrapper around one.

    OpenTelemetry's wrapper closes synchronously and leaves the SDK's async close un-awaited
    (the connection would stay open): its inner stream is closed here, then its span ended.
    """
    inner = getattr(response, "stream", None)
    cleanup = getattr(response, "cleanup", None)
    if inner is not None and callable(cleanup):
        await inner.close()
        cleanup()
        return
    await response.close()


def _refusals() -> tuple[type[Exception], ...]:
    """The SDK errors a server answers a response format it does not know with."""
    import openai

    return (openai.BadRequestError, openai.UnprocessableEntityError, openai.InternalServerError)


class _Answer:
    """What a chat stream's chunks add up to (deltas, finish reason, usage); sync and async."""

    def __init__(self, spec: EndpointSpec, model_id: str, body: Any = None) -> None:
        self.spec = spec
        self.model_id = model_id
        self.body = body  # the draining HTTP body of a sync stream, if any
        self.usage: Usage | None = None
        self.chunks = 0
        self.tokens = 0
        self.finish_reason: str | None = None

    def take(self, chunk: Any) -> str | None:
        """Read one chunk; the text delta it carries, if any."""
        self.chunks += 1
        data = _as_dict(chunk)
        counts = data.get("usage")
        if counts:
            self.usage = Usage(
                prompt_tokens=counts.get("prompt_tokens") or 0,
                completion_tokens=counts.get("completion_tokens") or 0,
            )
        if data.get("choices"):
            choice = data["choices"][0]
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
            if self.finish_reason is not None and self.body is not None:
                self.body.finished = True  # only usage and [DONE] are left to read
            delta = (choice.get("delta") or {}).get("content")
            if delta:
                self.tokens += 1
                return str(delta)
        return None

    def end(self) -> Usage | None:
        """The stream ended: its usage, or EndpointError for an answer that is not whole."""
        label, model_id, tokens = self.spec.label, self.model_id, self.tokens
        if self.chunks == 0:  # even an empty answer streams a chunk (llama.cpp's server sends
            # none when the prompt overflows its context; a non-OpenAI body parses to none)
            raise EndpointError(
                f"{label} sent no answer for {model_id}; check that base_url points "
                "at an OpenAI-compatible /v1 API and that the prompt fits the context window."
            )
        if self.finish_reason is None:
            if tokens == 0:  # llama.cpp's server ends an interrupted request this way
                raise EndpointError(
                    f"{label} ended the stream for {model_id} with no answer and "
                    "no finish reason (the server stopped the request, often to serve another "
                    "one); run again, and serve llama.cpp without interrupting requests."
                )
            raise EndpointError(
                f"The answer from {model_id} was cut off after {_tokens(tokens)}: "
                f"{label} ended the stream without a finish reason; the partial "
                "answer is kept, run again for a full one."
            )
        return self.usage


def _as_dict(chunk: Any) -> Any:
    """A chunk as the server sent it: a dict (SDK objects only when the SDK is traced)."""
    dump = getattr(chunk, "model_dump", None)
    return dump() if dump is not None else chunk


MAX_DRAIN_BYTES = 65536  # what is left after [DONE]: a few bytes on every server seen


@functools.cache
def _draining_type(base: type) -> type:
    """A subclass of the HTTP library's SyncByteStream (its isinstance checks) that drains."""

    class Draining(base):  # type: ignore[valid-type,misc]
        """Reads the rest of a finished answer's body on close, so the connection is reused.

        The SDK stops reading at `data: [DONE]` and closes the response before the body's
        end has been read, and httpcore then drops the connection: every call paid a new TCP
        (or TLS) connection. Once the finish reason was seen, close reads what is left first.
        """

        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.finished = False  # set once the answer's finish reason arrived
            self._parts: Any = None
            self._closed = False

        def __iter__(self) -> Any:
            self._parts = iter(self.inner)
            return self._parts

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)  # e.g. `elapsed`

        def abort(self) -> None:
            """Close without draining (a deadline passed, or the reader went away)."""
            self.finished = False
            self.close()

        def close(self) -> None:
            if self._closed:
                self.inner.close()  # e.g. a deadline firing during a drain: stop its read
                return
            self._closed = True
            if self.finished and self._parts is not None:
                with contextlib.suppress(Exception):  # the answer is complete: never an error
                    left = MAX_DRAIN_BYTES
                    for part in self._parts:
                        left -= len(part)
                        if left < 0 or not self.finished:
                            break
            self.inner.close()

    return Draining


def _reusable(response: Any) -> Any:
    """Wrap the SDK stream's HTTP body so a finished answer leaves its connection pooled."""
    http = getattr(response, "response", None)
    inner = getattr(http, "stream", None)
    if http is None or inner is None:
        return None
    base = getattr(sys.modules.get(type(http).__module__.partition(".")[0]), "SyncByteStream", None)
    if base is None or not isinstance(inner, base):
        return None
    wrapper = _draining_type(base)(inner)
    http.stream = wrapper
    return wrapper


def _retrying(client: Any, retries: bool) -> Any:
    """The client itself, or a copy that sends once (the first probe of a JSON dialect)."""
    return client if retries else client.with_options(max_retries=0)


class _Outcome:
    """What one send gave a `_sends` plan: its response, or the exception it raised."""

    def __init__(self, response: Any = None, failure: Exception | None = None) -> None:
        self.response = response
        self.failure = failure
        self.result: Any = None

    def next_send(
        self, sends: Generator[tuple[dict[str, Any], bool], Any, Any]
    ) -> tuple[dict[str, Any], bool] | None:
        """Hand this outcome to the plan: its next request, or None once it has returned."""
        try:
            if self.failure is not None:
                return sends.throw(self.failure)
            return sends.send(self.response)
        except StopIteration as done:
            self.result = done.value
            return None


class OpenAICompatModel:
    """A model behind an OpenAI-style chat completions API."""

    supports_response_format = True  # sent as `response_format`; the server constrains it

    def __init__(
        self,
        model_id: str,
        api_model: str,
        spec: EndpointSpec,
        client_factory: Callable[[EndpointSpec], Any] = client_for,
    ) -> None:
        self.model_id = model_id
        self.api_model = api_model
        self.spec = spec
        self._client_factory = client_factory

    def _request(self, messages: Sequence[Message], params: ModelParams) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.api_model,
            "messages": [m.model_dump() for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        # OpenAI's newer models only take max_completion_tokens; other servers know max_tokens
        if self.spec.kind == "compatible":
            kwargs["max_tokens"] = params.max_tokens
        else:
            kwargs["max_completion_tokens"] = params.max_tokens
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if params.stop:
            kwargs["stop"] = params.stop
        return kwargs

    def prepare(self) -> None:
        """Import the SDK and create the client now, so that the request leaves sooner."""
        client = self._client_factory(self.spec)
        # The SDK imports its resource modules on first use: do that before the send too.
        _ = client.chat.completions

    def _format_request(
        self, messages: Sequence[Message], params: ModelParams, fmt: ResponseFormat | None
    ) -> tuple[dict[str, Any], bool]:
        """The request, a JSON format in the endpoint's known dialect; True: probe it first.

        OpenAI, vLLM and llama.cpp's C++ server take `json_schema`; llama-cpp-python's server
        only knows `json_object` with a `schema` and refuses the other (with a 500 naming
        response_format), so a compatible endpoint is first asked once without retries, then
        in that dialect, and the answer is remembered per endpoint.
        """
        kwargs = self._request(messages, params)
        if fmt is None or not fmt.structured:
            return kwargs, False
        if self.spec in _llama_dialect:
            kwargs["response_format"] = llama_response_format(fmt)
            return kwargs, False
        kwargs["response_format"] = openai_response_format(fmt)
        probe = (
            fmt.type == "json_schema"
            and self.spec.kind == "compatible"
            and self.spec not in _dialect_known
        )
        return kwargs, probe

    def _sends(
        self, messages: Sequence[Message], params: ModelParams, fmt: ResponseFormat | None
    ) -> Generator[tuple[dict[str, Any], bool], Any, Any]:
        """The sends of one call, in order, for the sync and the async client alike.

        Each yield is one request and whether the client may retry it; the response comes
        back (or the send's exception is thrown in here). A JSON format goes as
        `response_format` in the server's dialect; the generator returns the response.
        """
        kwargs, probe = self._format_request(messages, params, fmt)
        if fmt is None or not fmt.structured:
            return (yield kwargs, True)
        refused = _refusals()
        if probe:
            try:
                response = yield kwargs, False
            except refused as exc:
                if not _about_format(exc):
                    return (yield kwargs, True)  # a real 500: retry
                kwargs["response_format"] = llama_response_format(fmt)
                try:
                    response = yield kwargs, True
                except refused as again:
                    raise self._cannot_honour(again, fmt) from None
                _llama_dialect.add(self.spec)
            _dialect_known.add(self.spec)
            return response
        try:
            return (yield kwargs, True)
        except refused as exc:
            raise self._cannot_honour(exc, fmt) from None

    def _create(
        self,
        client: Any,
        messages: Sequence[Message],
        params: ModelParams,
        fmt: ResponseFormat | None,
    ) -> Any:
        """Send the request (and, for a JSON format, whatever `_sends` asks next)."""
        sends, outcome = self._sends(messages, params, fmt), _Outcome()
        while (request := outcome.next_send(sends)) is not None:
            kwargs, retries = request
            try:
                outcome = _Outcome(_send_chat(_retrying(client, retries), kwargs))
            except Exception as exc:
                outcome = _Outcome(failure=exc)
        return outcome.result

    async def _acreate(
        self,
        client: Any,
        messages: Sequence[Message],
        params: ModelParams,
        fmt: ResponseFormat | None,
    ) -> Any:
        """`_create` on the event loop, with an AsyncOpenAI client."""
        sends, outcome = self._sends(messages, params, fmt), _Outcome()
        while (request := outcome.next_send(sends)) is not None:
            kwargs, retries = request
            try:
                outcome = _Outcome(await _asend_chat(_retrying(client, retries), kwargs))
            except Exception as exc:
                outcome = _Outcome(failure=exc)
        return outcome.result

    def _cannot_honour(self, exc: Exception, fmt: ResponseFormat) -> EndpointError:
        """One sentence for a server that refused the response format (others: `explain`)."""
        if not _about_format(exc):
            return explain(exc, self.model_id, self.spec)
        detail = _server_message(exc)
        return EndpointError(
            f"{self.spec.label} cannot honour the {fmt.label} response format for "
            f"{self.model_id} ({' '.join(detail.split())[:160]}); pick Text, or a model or "
            "server that supports structured output."
        )

    def stream(
        self,
        messages: Sequence[Message],
        params: ModelParams,
        *,
        response_format: ResponseFormat | None = None,
    ) -> Iterator[str | Usage]:
        """Stream deltas; end with the server's usage when it reports one.

        Raises EndpointError when the call fails, passes its deadline, or the stream is cut
        off or ends without a finish reason (the deltas already yielded are the partial answer).
        """
        import openai

        client = self._client_factory(self.spec)
        answer: _Answer | None = None
        deadline: _Deadline | None = None
        _attempt_sent.set(time.monotonic())
        try:
            response = self._create(client, messages, params, response_format)
            body = _reusable(response)
            answer = _Answer(self.spec, self.model_id, body)

            def close() -> None:
                if body is not None:
                    body.abort()  # cut off: no draining
                response.close()

            started = _attempt_sent.get()
            deadline = _Deadline(started + self.spec.timeout, self.spec.idle_limit, close)
            try:
                for chunk in response:
                    deadline.chunk_arrived()
                    delta = answer.take(chunk)
                    if delta:
                        yield delta
            finally:
                deadline.stop()
                if body is not None and answer.finish_reason is None:
                    body.abort()
                response.close()  # stop the HTTP stream when the reader goes away
        except (openai.OpenAIError, ValueError, KeyError, AttributeError, TypeError) as exc:
            if deadline is not None and answer is not None:  # the answer had started streaming
                raise self._broken_stream(exc, deadline.expired, answer.tokens) from None
            raise explain(exc, self.model_id, self.spec) from None
        usage = answer.end()
        if usage is not None:
            yield usage

    async def astream(
        self,
        messages: Sequence[Message],
        params: ModelParams,
        *,
        response_format: ResponseFormat | None = None,
    ) -> AsyncIterator[str | Usage]:
        """`stream` on the running event loop, through the endpoint's AsyncOpenAI client.

        The same deadlines: the total one from the latest attempt's send, the idle one between
        chunks once the answer started; cancelling the task stops the model's HTTP stream.
        """
        import openai

        loop = asyncio.get_running_loop()
        answer: _Answer | None = None
        expired: str | None = None
        _attempt_sent.set(time.monotonic())
        try:
            client = async_client_for(self.spec)
            response = await self._acreate(client, messages, params, response_format)
            answer = _Answer(self.spec, self.model_id)
            # the loop's clock may not be time.monotonic() (uvloop): convert the send time
            total_at = loop.time() + _attempt_sent.get() + self.spec.timeout - time.monotonic()
            idle_s = self.spec.idle_limit
            last: float | None = None
            chunks = response.__aiter__()
            try:
                while True:
                    due, kind = total_at, "total"
                    if last is not None and last + idle_s < total_at:
                        due, kind = last + idle_s, "idle"
                    try:
                        async with asyncio.timeout_at(due):  # not across the yield below
                            chunk = await anext(chunks)
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        expired = kind
                        raise
                    last = loop.time()
                    delta = answer.take(chunk)
                    if delta:
                        yield delta
            finally:
                await _aclose_stream(response)  # stop the HTTP stream when the reader goes away
        except (
            openai.OpenAIError,
            TimeoutError,
            ValueError,
            KeyError,
            AttributeError,
            TypeError,
        ) as exc:
            if answer is not None:  # the answer had started streaming
                raise self._broken_stream(exc, expired, answer.tokens) from None
            raise explain(exc, self.model_id, self.spec) from None
        usage = answer.end()
        if usage is not None:
            yield usage

    def _broken_stream(self, exc: Exception, expired: str | None, tokens: int) -> EndpointError:
        """One sentence for a stream that failed after the server had started answering.

        `expired` says which of our deadlines cut it ("total" or "idle"), if one did.
        """
        import openai

        spec = self.spec
        kept = "the partial answer is kept; " if tokens else ""
        if expired == "total" or (_timed_out(exc) and not tokens):
            sent = f"after {_tokens(tokens)}" if tokens else "without sending a token"
            return EndpointError(
                f"{self.model_id} did not finish within its {spec.timeout:g} s timeout: "
                f"{spec.label} kept the stream open {sent}; {kept}raise timeout in "
                "playground.toml or check the server."
            )
        if expired == "idle" or _timed_out(exc):
            return EndpointError(
                f"{self.model_id} stopped answering after {_tokens(tokens)}: {spec.label} sent "
                f"nothing for {spec.idle_limit:g} s; {kept}run again or raise idle_timeout in "
                "playground.toml."
            )
        if isinstance(exc, openai.APIConnectionError):
            return EndpointError(
                f"The answer from {self.model_id} was cut off after {_tokens(tokens)}: "
                f"{spec.label} closed the connection mid-stream; the partial answer is kept, "
                "run again for a full one."
            )
        return explain(exc, self.model_id, spec)


def _about_format(exc: Exception) -> bool:
    """True when a refusal names the response format (not the prompt, key or context)."""
    words = _server_message(exc).lower()
    return any(w in words for w in ("response_format", "json_schema", "json schema", "grammar"))


def _tokens(count: int) -> str:
    return f"{count} token" if count == 1 else f"{count} tokens"
