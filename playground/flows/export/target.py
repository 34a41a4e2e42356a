"""Where an exported flow sends its call: API kind, model name, base URL and key variable."""

from __future__ import annotations

from playground.config import Settings
from playground.errors import SpecError
from playground.flows.spec import FlowSpec
from playground.models.providers import SERVE_MODEL_URL, Target, provider_for, split_model_id
from playground.models.response_format import llama_response_format, openai_response_format

__all__ = ["NO_KEY", "SERVE_MODEL_URL", "Target", "llm_params", "response_format_for", "target_for"]

NO_KEY = "not-needed"  # local servers accept any key; clients insist on one


def target_for(spec: FlowSpec, settings: Settings | None = None) -> Target:
    """The server an export calls for this spec's model id and endpoint."""
    provider, name = split_model_id(spec.model.id)
    endpoint = spec.model.endpoint
    if endpoint is not None:
        return Target("compatible", name, endpoint.base_url, endpoint.api_key_env)
    return provider_for(provider, settings).export_target(spec.model.id, name)


def response_format_for(spec: FlowSpec, target: Target) -> dict[str, object] | None:
    """The `response_format` an export sends, in the dialect of the server it calls.

    A local model is served by `playground serve-model` (llama-cpp-python's server), which
    takes json_object + schema; everything else gets OpenAI's json_object / json_schema.
    """
    fmt = spec.model.structured_format
    if fmt is None:
        return None
    provider, _ = split_model_id(spec.model.id)
    if provider_for(provider).llama_dialect(target):
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
