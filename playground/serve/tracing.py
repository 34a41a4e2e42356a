"""Optional OpenTelemetry export of served calls: OTLP over HTTP, GenAI semantic conventions.

On when `[serve] otlp_endpoint` is set, or the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
`OTEL_EXPORTER_OTLP_ENDPOINT` variables are. Each served call is one span named
`chat <flow>` carrying the `gen_ai.*` attributes (system, request model and parameters, usage
tokens) and the playground's own (flow, version, run id, latency, cost). The openai SDK is
instrumented with `opentelemetry-instrumentation-openai-v2` where installed, so the SDK's own
`chat <model>` span is a child of the call's span. Message text is not exported unless the
instrumentation's own switch (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT) says so.
Needs the `otel` extra: `pip install prompt-playground[otel]`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from playground.errors import ConfigError
from playground.models.providers import provider_of, split_model_id
from playground.serve.settings import ServeSettings

if TYPE_CHECKING:
    from playground.serve.service import Call

log = logging.getLogger(__name__)

SERVICE_NAME = "playground-serve"
TRACES_PATH = "/v1/traces"
_instrumented_lock = threading.Lock()
_instrumented_by: Tracing | None = None  # the SDK patch is process-wide: one owner at a time


def otlp_traces_url(serve: ServeSettings) -> str | None:
    """Where spans go: [serve] otlp_endpoint, else the standard OTEL_EXPORTER_OTLP_* variables."""
    if serve.otlp_endpoint:
        url = serve.otlp_endpoint.rstrip("/")
        return url if url.endswith(TRACES_PATH) else url + TRACES_PATH
    full = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if full:
        return full  # the standard says this one is used as given
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return base.rstrip("/") + TRACES_PATH if base else None


def gen_ai_system(model_id: str) -> str:
    """The gen_ai.system value of a model id: openai, az.ai.openai or llama_cpp."""
    # an endpoint's is openai: a server speaking OpenAI's API, called through the openai SDK
    return provider_of(model_id).gen_ai_system


class Tracing:
    """A tracer provider exporting to one OTLP/HTTP endpoint, and the openai SDK instrumented."""

    def __init__(self, url: str, service_name: str = SERVICE_NAME) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise ConfigError(
                "OpenTelemetry export is configured but its packages are missing; install them "
                "with `pip install prompt-playground[otel]` or unset otlp_endpoint."
            ) from None
        self.url = url
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        # Batching exports on the SDK's own thread keeps the collector off the request path.
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        self.tracer = self.provider.get_tracer("playground.serve")
        self.sdk_spans = self._instrument_openai()

    def _instrument_openai(self) -> bool:
        global _instrumented_by
        try:
            from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
        except ImportError:
            log.info("opentelemetry-instrumentation-openai-v2 is not installed: no SDK spans")
            return False
        with _instrumented_lock:
            instrumentor = OpenAIInstrumentor()
            if _instrumented_by is not None:
                instrumentor.uninstrument()
            instrumentor.instrument(tracer_provider=self.provider)
            _instrumented_by = self
        return True

    @contextlib.contextmanager
    def call_span(self, call: Call) -> Iterator[Any]:
        """The span of one served call; current while the model runs, so SDK spans nest in it."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        result = call.result
        params = result.params
        _, api_model = split_model_id(result.model_id)
        system = gen_ai_system(result.model_id)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": system,
            "gen_ai.provider.name": system,
            "gen_ai.request.model": api_model,
            "gen_ai.request.max_tokens": params.max_tokens,
            "gen_ai.request.temperature": params.temperature,
            "gen_ai.request.top_p": params.top_p,
            "playground.model_id": result.model_id,
            "playground.flow.name": call.served.name,
            "playground.flow.version": call.served.version or 0,
            "playground.run_id": call.run.id,
            "playground.route": call.route,
        }
        if params.seed is not None:
            attributes["gen_ai.request.seed"] = params.seed
        if call.served.label:
            attributes["playground.flow.label"] = call.served.label
        name = f"chat {call.served.name}"
        with self.tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            yield span
            span.set_attribute("gen_ai.usage.input_tokens", result.usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", result.usage.completion_tokens)
            span.set_attribute("playground.usage.estimated", result.usage.estimated)
            span.set_attribute("playground.cost_usd", result.cost_usd)
            if result.latency_ms is not None:
                span.set_attribute("playground.latency_ms", result.latency_ms)
            if result.ttft_ms is not None:
                span.set_attribute("playground.ttft_ms", result.ttft_ms)
            if result.error is not None:
                kind = "cut_off" if result.error.startswith("Cut off") else "model_error"
                span.set_attribute("error.type", kind)
                span.set_status(Status(StatusCode.ERROR, result.error))

    def close(self) -> None:
        """Export what is buffered and undo the SDK instrumentation this tracer owns."""
        global _instrumented_by
        with _instrumented_lock:
            if self.sdk_spans and _instrumented_by is self:
                from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

                OpenAIInstrumentor().uninstrument()
                _instrumented_by = None
        self.provider.shutdown()  # flushes the batch processor


def tracing_for(serve: ServeSettings) -> Tracing | None:
    """The app's tracer when an OTLP endpoint is configured, else None (no cost per call)."""
    url = otlp_traces_url(serve)
    if url is None:
        return None
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"The OTLP endpoint {url!r} is not an http(s) URL; set [serve] otlp_endpoint to "
            "something like http://127.0.0.1:4318."
        )
    return Tracing(url)
