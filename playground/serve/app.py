"""The served API: a FastAPI app over ServeService (see DESIGN.md, "Serving").

    POST /v1/flows/{name}/run     {"inputs": {...}, "stream": false, "max_tokens": null}
    POST /v1/chat/completions     OpenAI-compatible; model = flow name (streaming too)
    POST /v1/feedback             {"run_id", "stars" 1-5 | "thumbs" up/down, "comment"}
    GET  /health, /v1/flows, /metrics (Prometheus text), /openapi.json

Errors use OpenAI's envelope, `{"error": {"message", "type", "param", "code"}}`, with one
sentence and never a traceback or a secret. Chat completions map the last user message to
the flow's input: its only input, else the first input not given in `inputs` (send other
inputs with the SDK's `extra_body={"inputs": {...}}`); earlier turns and the client's
sampling settings are ignored, because the flow version fixes the prompt and parameters,
except `max_tokens`, which may lower the flow's.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from playground.config import Settings, load_settings
from playground.errors import NotFoundError, PlaygroundError
from playground.models.openai_compat import aclose_async_clients
from playground.records import Result
from playground.serve.metrics import CONTENT_TYPE, ServeMetrics
from playground.serve.service import (
    Call,
    FlowResolver,
    InputProblem,
    ServeService,
    run_id_of,
)
from playground.serve.settings import ServeSettings, serve_settings
from playground.serve.tracing import tracing_for

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/health"})  # load balancers probe without a token


# -- request and response bodies ----------------------------------------------------------


class RunRequest(BaseModel):
    """A call of one flow."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict, description="The flow's inputs.")
    stream: bool = Field(False, description="Stream server-sent events instead of one JSON.")
    max_tokens: int | None = Field(None, ge=1, description="Lower the flow's max_tokens.")


class UsageOut(BaseModel):
    """Token counts of a call."""

    prompt_tokens: int
    completion_tokens: int
    estimated: bool


class RunResponse(BaseModel):
    """The answer of a flow call and its measurements."""

    run_id: str
    result_id: str
    flow: str
    version: int | None
    label: str | None
    answer: str
    error: str | None
    usage: UsageOut
    ttft_ms: float | None
    latency_ms: float | None
    tokens_per_s: float | None
    cost_usd: float


class ChatMessageIn(BaseModel):
    """One message of an OpenAI chat request (text content only)."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """An OpenAI chat completions request; extra OpenAI fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description="The served flow's name.")
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="Other flow inputs (openai SDK: extra_body)."
    )


class FeedbackRequest(BaseModel):
    """Feedback on a served answer, stored as a rating like the app's."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(min_length=1, max_length=64, description="run_id or chat completion id.")
    stars: int | None = Field(None, ge=1, le=5)
    thumbs: Literal["up", "down"] | None = Field(None, description="up = 5 stars, down = 1.")
    comment: str | None = Field(None, max_length=4000)
    user: str | None = Field(None, max_length=64, description="Who gave it (one vote each).")


# -- errors -------------------------------------------------------------------------------


def error_response(
    status: int, message: str, kind: str, param: str | None = None, **extra: Any
) -> JSONResponse:
    """OpenAI's error envelope with one sentence (the openai SDK shows `message`)."""
    body: dict[str, Any] = {
        "error": {"message": message, "type": kind, "param": param, "code": status}
    }
    body.update(extra)
    return JSONResponse(body, status_code=status)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ()) if p != "body"]
    field = ".".join(loc) or None
    kind = err.get("type", "")
    if kind == "json_invalid":
        return "The request body is not valid JSON; send one JSON object.", None
    if kind == "extra_forbidden":
        return f"Unknown field '{field}' in the request; remove it.", field
    if kind == "missing":
        return f"Field '{field}' is required; add it to the request.", field
    msg = str(err.get("msg", "is invalid")).rstrip(".")
    return f"Field '{field or 'body'}' is invalid: {msg.lower()}.", field


# -- ASGI middleware: size limit, bearer token, HTTP counts --------------------------------


class Guard:
    """Refuses oversized bodies (413) and missing or wrong bearer tokens (401); counts replies."""

    def __init__(
        self, app: ASGIApp, max_body: int, token: str | None, metrics: ServeMetrics
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.token = token.encode() if token else None
        self.metrics = metrics

    async def _reply(self, send: Send, status: int, message: str, kind: str) -> None:
        response = error_response(status, message, kind)
        headers = [(k.encode(), v.encode()) for k, v in response.headers.items()]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    def _authorized(self, scope: Scope) -> bool:
        if self.token is None or scope["path"] in OPEN_PATHS:
            return True
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    given.strip(), self.token
                )
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status_seen: list[int] = []

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen.append(int(message["status"]))
            await send(message)

        try:
            await self._guarded(scope, receive, counting_send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.http.labels(path, str(status_seen[0] if status_seen else 0)).inc()

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._authorized(scope):
            await self._reply(
                send,
                401,
                "Missing or wrong bearer token; send Authorization: Bearer <token>.",
                "authentication_error",
            )
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > self.max_body:
                await self._reply(send, 413, self._too_large(), "request_too_large")
                return
        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        started = False

        async def replacing_send(message: Message) -> None:
            nonlocal started
            if too_large:  # a chunked body went over the limit: answer 413 instead
                if not started:
                    started = True
                    await self._reply(send, 413, self._too_large(), "request_too_large")
                return
            started = True
            await send(message)

        await self.app(scope, limited_receive, replacing_send)

    def _too_large(self) -> str:
        return (
            f"The request body is larger than this server's limit of {self.max_body} bytes; "
            "send less, or raise [serve] max_body_kb."
        )


# -- the app ------------------------------------------------------------------------------


def _result_json(call: Call) -> dict[str, Any]:
    result = call.result
    return RunResponse(
        run_id=call.run.id,
        result_id=result.id,
        flow=call.served.name,
        version=call.served.version,
        label=call.served.label,
        answer=result.text,
        error=result.error,
        usage=UsageOut(
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            estimated=result.usage.estimated,
        ),
        ttft_ms=result.ttft_ms,
        latency_ms=result.latency_ms,
        tokens_per_s=result.tokens_per_s,
        cost_usd=result.cost_usd,
    ).model_dump()


def _sse(data: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _model_down(call: Call) -> JSONResponse:
    return error_response(
        502, call.result.error or "The model failed.", "model_error", run_id=call.run.id
    )


def _chat_text(message: ChatMessageIn) -> str:
    if isinstance(message.content, str):
        return message.content
    if isinstance(message.content, list):
        return "".join(
            str(part.get("text", "")) for part in message.content if part.get("type") == "text"
        )
    return ""


def chat_inputs(spec_inputs: Sequence[str], request: ChatRequest) -> dict[str, Any]:
    """The flow inputs of a chat request: `inputs`, plus the last user message (see above)."""
    users = [m for m in request.messages if m.role == "user"]
    if not users:
        raise InputProblem("messages", "The messages hold no user message; add one.")
    inputs = dict(request.inputs)
    if len(spec_inputs) == 1:
        inputs[spec_inputs[0]] = _chat_text(users[-1])
        return inputs
    free = [name for name in spec_inputs if name not in inputs]
    if not free:
        raise InputProblem(
            "messages", "Every flow input is given in inputs; the user message has nowhere to go."
        )
    inputs[free[0]] = _chat_text(users[-1])
    return inputs


def _chat_usage(result: Result) -> dict[str, int]:
    return {
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "total_tokens": result.usage.prompt_tokens + result.usage.completion_tokens,
    }


def _finish_reason(result: Result) -> str:
    done = result.usage.completion_tokens >= result.params.max_tokens
    return "length" if done else "stop"


def create_app(
    refs: Sequence[str],
    settings: Settings | None = None,
    serve: ServeSettings | None = None,
    background: bool = True,
) -> FastAPI:
    """The served API for these flow refs (NAME@LABEL, NAME@N, NAME or spec paths).

    `background` starts the online scorer and the alert schedule with the app.
    """
    settings = settings or load_settings()
    serve = serve or serve_settings(settings)
    token = serve.api_key()  # a named but unset variable fails here, before listening
    metrics = ServeMetrics()
    resolver = FlowResolver(settings, refs)
    workers: list[Any] = []
    scorer = None
    if background:
        from playground.serve.scoring import OnlineScorer

        scorer = OnlineScorer(settings, serve.score_sample)
        workers.append(scorer)
    tracing = tracing_for(serve)  # a bad endpoint or missing package fails here, at start
    service = ServeService(
        settings,
        serve,
        resolver,
        metrics,
        scorer.offer if scorer is not None else None,
        tracing,
    )
    if background:
        from playground.serve.alerts import AlertSchedule

        workers.append(AlertSchedule(settings, serve.alert_interval_s))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for worker in workers:
            worker.start()
        try:
            yield
        finally:
            service.close()
            await aclose_async_clients()  # the model connections this loop opened
            for worker in workers:
                worker.stop()
            if tracing is not None:
                tracing.close()  # exports the spans still buffered

    app = FastAPI(
        title="Prompt Playground: served flows",
        version="1",
        description=__doc__,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.metrics = metrics
    app.state.scorer = scorer
    app.state.tracing = tracing

    if serve.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=serve.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(Guard, max_body=serve.max_body_bytes, token=token, metrics=metrics)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, field = _validation_message(exc)
        return error_response(422, message, "invalid_request_error", field)

    @app.exception_handler(InputProblem)
    async def _bad_input(_: Request, exc: InputProblem) -> JSONResponse:
        return error_response(422, str(exc), "invalid_request_error", exc.field)

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return error_response(404, str(exc), "not_found_error")

    @app.exception_handler(PlaygroundError)
    async def _playground(_: Request, exc: PlaygroundError) -> JSONResponse:
        # Retrieval or configuration trouble on the server's side, before any model call.
        return error_response(503, str(exc), "server_error")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("Unexpected error while serving")
        return error_response(
            500, "The server failed unexpectedly; its log has the details.", "server_error"
        )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness for load balancers (no token needed)."""
        return {"status": "ok", "flows": resolver.names}

    @app.get("/v1/flows")
    async def flows() -> dict[str, Any]:
        """What is served: each flow's answering version, label and inputs."""
        data = []
        for name in resolver.names:
            served = resolver.resolve(name)
            spec = served.flow.spec
            data.append(
                {
                    "name": name,
                    "ref": served.ref,
                    "version": served.version,
                    "label": served.label,
                    "model": spec.model.id,
                    "description": spec.description,
                    "inputs": {
                        k: {"type": v.type, "required": v.default is None}
                        for k, v in spec.inputs.items()
                    },
                }
            )
        return {"object": "list", "data": data}

    @app.get("/metrics")
    async def prometheus() -> Response:
        """Prometheus text: HTTP responses, calls, errors, latency histogram, tokens, cost."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        """The served flows as OpenAI models, so OpenAI clients can list them."""
        return {
            "object": "list",
            "data": [
                {"id": n, "object": "model", "owned_by": "playground"} for n in resolver.names
            ],
        }

    @app.post("/v1/flows/{name}/run", response_model=RunResponse)
    async def run_flow(name: str, body: RunRequest) -> Any:
        """Run a served flow once; with "stream": true, server-sent events."""
        call, stream = service.prepare(name, body.inputs, body.max_tokens, "run")
        if not body.stream:
            result = await service.complete(call, stream)
            if result.error is not None:
                return _model_down(call)
            return _result_json(call)
        service.start_stream(call, stream)
        events = service.events(call)
        first = await anext(events)
        if first[0] != "delta" and call.result.error is not None:
            await events.aclose()
            return _model_down(call)

        async def body_events() -> AsyncIterator[str]:
            try:
                yield _sse(
                    {"run_id": call.run.id, "flow": name, "version": call.served.version},
                    "start",
                )
                kind, value = first
                while True:
                    if kind == "delta":
                        yield _sse({"delta": value})
                    elif kind == "failed":
                        yield _sse({"message": value}, "error")
                        return
                    else:
                        if call.result.error is not None:
                            yield _sse(
                                {"message": call.result.error, **_result_json(call)}, "error"
                            )
                        else:
                            yield _sse(_result_json(call), "done")
                        return
                    kind, value = await anext(events)
            finally:
                await events.aclose()

        return StreamingResponse(body_events(), media_type="text/event-stream")

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest) -> Any:
        """OpenAI-compatible: `model` names the flow; streaming and usage as OpenAI sends them."""
        served = resolver.resolve(body.model)
        inputs = chat_inputs(list(served.flow.spec.inputs), body)
        call, stream = service.prepare(
            body.model, inputs, body.max_completion_tokens or body.max_tokens, "chat"
        )
        completion_id = f"chatcmpl-{call.run.id}"
        created = int(time.time())
        extra = {"run_id": call.run.id, "version": call.served.version}
        if not body.stream:
            result = await service.complete(call, stream)
            if result.error is not None:
                return _model_down(call)
            return {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": body.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": result.text},
                        "finish_reason": _finish_reason(result),
                    }
                ],
                "usage": _chat_usage(result),
                "playground": extra,
            }
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        service.start_stream(call, stream)
        events = service.events(call)
        first = await anext(events)
        if first[0] != "delta" and call.result.error is not None:
            await events.aclose()
            return _model_down(call)

        def chunk(delta: dict[str, Any], finish: str | None, **more: Any) -> str:
            data = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **more,
            }
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        async def body_chunks() -> AsyncIterator[str]:
            try:
                yield chunk({"role": "assistant", "content": ""}, None, playground=extra)
                kind, value = first
                while kind == "delta":
                    yield chunk({"content": value}, None)
                    kind, value = await anext(events)
                result = call.result
                if kind == "failed" or result.error is not None:
                    message = value if kind == "failed" else result.error
                    err = {"error": {"message": message, "type": "model_error", "code": 502}}
                    yield f"data: {json.dumps(err)}\n\n"
                    return
                yield chunk({}, _finish_reason(result))
                if include_usage:
                    data = {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": body.model,
                        "choices": [],
                        "usage": _chat_usage(result),
                    }
                    yield f"data: {json.dumps(data)}\n\n"
                yield "data: [DONE]\n\n"
            finally:
                await events.aclose()

        return StreamingResponse(body_chunks(), media_type="text/event-stream")

    @app.post("/v1/feedback", status_code=201)
    async def feedback(body: FeedbackRequest) -> dict[str, Any]:
        """Stars (1-5) or thumbs (up = 5, down = 1) and a comment on a served answer."""
        if body.stars is not None and body.thumbs is not None:
            raise InputProblem("thumbs", "Give stars or thumbs, not both.")
        stars = body.stars
        if body.thumbs is not None:
            stars = 5 if body.thumbs == "up" else 1
        if stars is None and not (body.comment or "").strip():
            raise InputProblem("stars", "Give stars (1-5), thumbs (up or down) or a comment.")
        run_id = run_id_of(body.run_id)

        def save() -> int:
            from playground.store import open_store

            service.recorder.wait_stored(run_id)  # a run id just handed out may still be queued
            store = open_store(settings)
            run = store.runs.get_run(run_id)
            if run.source != "serve" or not run.results:
                raise NotFoundError(f"No served call with run id {run_id}.")
            return store.ratings.add_rating(
                run.results[0].id, stars, body.comment, body.user or "serve"
            )

        rating_id = await asyncio.get_running_loop().run_in_executor(service.executor, save)
        return {"rating_id": rating_id, "run_id": run_id, "stars": stars}

    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for `--workers N`: the refs come in $PLAYGROUND_SERVE_REFS (JSON list)."""
    import os

    refs = json.loads(os.environ.get("PLAYGROUND_SERVE_REFS", "[]"))
    return create_app(refs)
