"""OpenAI, Azure OpenAI and any OpenAI-compatible server, through the official openai SDK."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from playground.errors import EndpointError
from playground.models.base import Message, ModelParams, Usage

NO_KEY = "not-needed"  # local servers accept any key; the SDK insists on one


@dataclass(frozen=True)
class EndpointSpec:
    """Where a model lives and how patiently to call it."""

    kind: str  # openai | azure | compatible
    base_url: str | None
    api_key: str | None
    api_key_env: str | None
    timeout: float
    max_retries: int
    api_version: str | None = None

    @property
    def label(self) -> str:
        """A human name of the endpoint for error messages."""
        return self.base_url or ("Azure OpenAI" if self.kind == "azure" else "OpenAI")


_clients: dict[EndpointSpec, Any] = {}
_clients_lock = threading.Lock()


def client_for(spec: EndpointSpec) -> Any:
    """One openai client per endpoint, shared by every model on it (imported lazily)."""
    with _clients_lock:
        if spec not in _clients:
            import openai

            if spec.kind == "azure":
                _clients[spec] = openai.AzureOpenAI(
                    azure_endpoint=spec.base_url or "",
                    api_key=spec.api_key,
                    api_version=spec.api_version,
                    timeout=spec.timeout,
                    max_retries=spec.max_retries,
                )
            else:
                _clients[spec] = openai.OpenAI(
                    base_url=spec.base_url,
                    api_key=spec.api_key or NO_KEY,
                    timeout=spec.timeout,
                    max_retries=spec.max_retries,
                )
        return _clients[spec]


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


class OpenAICompatModel:
    """A model behind an OpenAI-style chat completions API."""

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

    def stream(self, messages: Sequence[Message], params: ModelParams) -> Iterator[str | Usage]:
        """Stream deltas; end with the server's usage when it reports one."""
        import openai

        client = self._client_factory(self.spec)
        usage: Usage | None = None
        chunks = 0
        try:
            response = client.chat.completions.create(**self._request(messages, params))
            try:
                for chunk in response:
                    chunks += 1
                    if getattr(chunk, "usage", None):
                        usage = Usage(
                            prompt_tokens=chunk.usage.prompt_tokens or 0,
                            completion_tokens=chunk.usage.completion_tokens or 0,
                        )
                    if chunk.choices:
                        delta = chunk.choices[0].delta.content
                        if delta:
                            yield delta
            finally:
                response.close()  # stop the HTTP stream when the reader goes away
        except openai.OpenAIError as exc:
            raise explain(exc, self.model_id, self.spec) from None
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            raise explain(exc, self.model_id, self.spec) from None
        if chunks == 0:  # even an empty answer streams a chunk (llama.cpp's server sends none
            # when the prompt overflows its context; a non-OpenAI body parses to none either)
            raise EndpointError(
                f"{self.spec.label} sent no answer for {self.model_id}; check that base_url points "
                "at an OpenAI-compatible /v1 API and that the prompt fits the context window."
            )
        if usage is not None:
            yield usage
