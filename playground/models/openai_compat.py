"""OpenAI, Azure OpenAI and any OpenAI-compatible server, through the official openai SDK."""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
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
_attempt = threading.local()  # when this thread last sent a request (retries send again)
# Endpoints that refused OpenAI's json_schema type but took llama.cpp's json_object + schema,
# and endpoints whose dialect is known (no need to probe them again).
_llama_dialect: set[EndpointSpec] = set()
_dialect_known: set[EndpointSpec] = set()


def _note_request_sent(request: Any) -> None:
    _attempt.sent_at = time.monotonic()
    note_request_sent()  # the runner's latency clock starts when the bytes go out


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


def explain(exc: Exception, model_id: str, spec: EndpointSpec) -> EndpointError:
    """Turn an openai SDK exception into one sentence that says what to do."""
    import openai

    where = spec.label
    plural = "retry" if spec.max_retries == 1 else "retries"
    retries = f" after {spec.max_retries} {plural}" if spec.max_retries else ""
    if isinstance(exc, openai.APITimeoutError):
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


def _sdk_instrumented() -> bool:
    """True when an instrumentor (OpenTelemetry's openai-v2) has wrapped the SDK's create."""
    from openai.resources.chat.completions import Completions

    # the SDK's own is a plain function; instrumentors put a wrapt proxy in its place, which
    # passes isinstance checks (it forwards __class__), so the type itself is compared
    return type(inspect.getattr_static(Completions, "create")) is not types.FunctionType


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

    def _create(
        self,
        client: Any,
        messages: Sequence[Message],
        params: ModelParams,
        fmt: ResponseFormat | None,
    ) -> Any:
        """Send the request; a JSON format goes as `response_format` in the server's dialect.

        OpenAI, vLLM and llama.cpp's C++ server take `json_schema`; llama-cpp-python's server
        only knows `json_object` with a `schema` and refuses the other (with a 500 naming
        response_format), so a compatible endpoint is first asked once without retries, then
        in that dialect, and the answer is remembered per endpoint.
        """
        import openai

        kwargs = self._request(messages, params)
        if fmt is None or not fmt.structured:
            return _send_chat(client, kwargs)
        refused = (
            openai.BadRequestError,
            openai.UnprocessableEntityError,
            openai.InternalServerError,
        )
        probe = (
            fmt.type == "json_schema"
            and self.spec.kind == "compatible"
            and self.spec not in _dialect_known
        )
        if self.spec in _llama_dialect:
            kwargs["response_format"] = llama_response_format(fmt)
        else:
            kwargs["response_format"] = openai_response_format(fmt)
            if probe:
                try:
                    response = _send_chat(client.with_options(max_retries=0), kwargs)
                except refused as exc:
                    if not _about_format(exc):
                        return _send_chat(client, kwargs)  # a real 500: retry
                    kwargs["response_format"] = llama_response_format(fmt)
                    try:
                        response = _send_chat(client, kwargs)
                    except refused as again:
                        raise self._cannot_honour(again, fmt) from None
                    _llama_dialect.add(self.spec)
                _dialect_known.add(self.spec)
                return response
        try:
            return _send_chat(client, kwargs)
        except refused as exc:
            raise self._cannot_honour(exc, fmt) from None

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
        usage: Usage | None = None
        chunks = tokens = 0
        finish_reason: str | None = None
        deadline: _Deadline | None = None
        _attempt.sent_at = time.monotonic()
        try:
            response = self._create(client, messages, params, response_format)
            body = _reusable(response)

            def close() -> None:
                if body is not None:
                    body.abort()  # cut off: no draining
                response.close()

            deadline = _Deadline(_attempt.sent_at + self.spec.timeout, self.spec.idle_limit, close)
            try:
                for chunk in response:
                    deadline.chunk_arrived()
                    chunks += 1
                    data = _as_dict(chunk)
                    counts = data.get("usage")
                    if counts:
                        usage = Usage(
                            prompt_tokens=counts.get("prompt_tokens") or 0,
                            completion_tokens=counts.get("completion_tokens") or 0,
                        )
                    if data.get("choices"):
                        choice = data["choices"][0]
                        finish_reason = choice.get("finish_reason") or finish_reason
                        if finish_reason is not None and body is not None:
                            body.finished = True  # only usage and [DONE] are left to read
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            tokens += 1
                            yield delta
            finally:
                deadline.stop()
                if body is not None and finish_reason is None:
                    body.abort()
                response.close()  # stop the HTTP stream when the reader goes away
        except (openai.OpenAIError, ValueError, KeyError, AttributeError, TypeError) as exc:
            if deadline is not None:  # the answer had started streaming
                raise self._broken_stream(exc, deadline, tokens) from None
            raise explain(exc, self.model_id, self.spec) from None
        if chunks == 0:  # even an empty answer streams a chunk (llama.cpp's server sends none
            # when the prompt overflows its context; a non-OpenAI body parses to none either)
            raise EndpointError(
                f"{self.spec.label} sent no answer for {self.model_id}; check that base_url points "
                "at an OpenAI-compatible /v1 API and that the prompt fits the context window."
            )
        if finish_reason is None:
            if tokens == 0:  # llama.cpp's server ends an interrupted request this way
                raise EndpointError(
                    f"{self.spec.label} ended the stream for {self.model_id} with no answer and "
                    "no finish reason (the server stopped the request, often to serve another "
                    "one); run again, and serve llama.cpp without interrupting requests."
                )
            raise EndpointError(
                f"The answer from {self.model_id} was cut off after {_tokens(tokens)}: "
                f"{self.spec.label} ended the stream without a finish reason; the partial "
                "answer is kept, run again for a full one."
            )
        if usage is not None:
            yield usage

    def _broken_stream(self, exc: Exception, deadline: _Deadline, tokens: int) -> EndpointError:
        """One sentence for a stream that failed after the server had started answering."""
        import openai

        spec = self.spec
        kept = "the partial answer is kept; " if tokens else ""
        if deadline.expired == "total" or (isinstance(exc, openai.APITimeoutError) and not tokens):
            sent = f"after {_tokens(tokens)}" if tokens else "without sending a token"
            return EndpointError(
                f"{self.model_id} did not finish within its {spec.timeout:g} s timeout: "
                f"{spec.label} kept the stream open {sent}; {kept}raise timeout in "
                "playground.toml or check the server."
            )
        if deadline.expired == "idle" or isinstance(exc, openai.APITimeoutError):
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
