"""Where an exported flow sends its call: API kind, model name, base URL and key variable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from playground.config import Settings
from playground.errors import SpecError
from playground.flows.endpoints import url_without_credentials
from playground.flows.spec import FlowSpec
from playground.models.registry import split_model_id

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


def llm_params(spec: FlowSpec) -> dict[str, object]:
    """The sampling parameters PromptFlow and Prompty pass to the chat API."""
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
    return values
