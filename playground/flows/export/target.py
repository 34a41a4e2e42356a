"""Where an exported flow sends its call: API kind, model name, base URL and key variable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from playground.config import Settings
from playground.errors import SpecError
from playground.flows.endpoints import url_without_credentials
from playground.flows.spec import FlowSpec
from playground.models.registry import split_model_id
from playground.models.response_format import llama_response_format, openai_response_format

SERVE_MODEL_URL = "http://127.0.0.1:8000/v1"  # where `playground serve-model` listens by default
NO_KEY = "not-needed"  # local servers accept any key; clients insist on one


@dataclass(frozen=True)
class Target:
    """Where the exported call goes: the API kind, the model name it expects, and its URL."""

    kind: Literal["openai", "azure", "compatible"]
    model: str
    base_url: str | None
    api_key_env: str | None
    note: str = ""


def target_for(spec: FlowSpec, settings: Settings | None = None) -> Target:
    """The server an export calls for this spec's model id and endpoint."""
    provider, name = split_model_id(spec.model.id)
    endpoint = spec.model.endpoint
    if endpoint is not None:
        return Target("compatible", name, endpoint.base_url, endpoint.api_key_env)
    if provider == "local":
        note = (
            f"{spec.model.id} runs inside Prompt Playground; serve it with "
            f"`playground serve-model` (listens on {SERVE_MODEL_URL}) or change base_url."
        )
        return Target("compatible", name, SERVE_MODEL_URL, None, note)
    if provider == "openai":
        return Target("openai", name, None, "OPENAI_API_KEY")
    if provider == "azure":
        return Target("azure", name, None, "AZURE_OPENAI_API_KEY")
    configured = settings.endpoints.get(provider) if settings else None
    if configured is not None:
        if url_without_credentials(configured.base_url) != configured.base_url:
            raise SpecError(
                f"Endpoint '{provider}' in playground.toml has credentials in its base_url "
                f"({url_without_credentials(configured.base_url)}); an export never carries "
                "them: move the key into an environment variable named by api_key_env."
            )
        return Target("compatible", name, configured.base_url, configured.api_key_env)
    return Target(
        "compatible",
        name,
        SERVE_MODEL_URL,
        None,
        f"the spec does not say where endpoint '{provider}' lives; set base_url.",
    )


def response_format_for(spec: FlowSpec, target: Target) -> dict[str, object] | None:
    """The `response_format` an export sends, in the dialect of the server it calls.

    A local model is served by `playground serve-model` (llama-cpp-python's server), which
    takes json_object + schema; everything else gets OpenAI's json_object / json_schema.
    """
    fmt = spec.model.structured_format
    if fmt is None:
        return None
    provider, _ = split_model_id(spec.model.id)
    if provider == "local" and target.base_url == SERVE_MODEL_URL:
        return llama_response_format(fmt)
    return openai_response_format(fmt)


def llm_params(spec: FlowSpec, target: Target | None = None) -> dict[str, object]:
    """The parameters PromptFlow and Prompty pass to the chat API (response format included)."""
    params = spec.model.params
    values: dict[str, object] = {
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
    }
    if params.seed is not None:
        values["seed"] = params.seed
    if params.stop:
        values["stop"] = list(params.stop)
    response_format = response_format_for(spec, target or target_for(spec))
    if response_format is not None:
        if _holds_reference(response_format):
            raise SpecError(
                "Field 'model.response_format' holds '${', which PromptFlow and Prompty read as "
                "a reference to an input or environment variable; remove it from the schema."
            )
        values["response_format"] = response_format
    return values


def _holds_reference(value: object) -> bool:
    # PromptFlow and Prompty substitute ${inputs.x} / ${env:X} in any string of their YAML.
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, dict):
        return any(_holds_reference(k) or _holds_reference(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_reference(v) for v in value)
    return False
