"""The one lookup from a model id (`<provider>/<model>`) to a ChatModel, and the model list.

What each provider does lives in playground.models.providers; these are its entry points.
"""

from __future__ import annotations

import os

from playground.config import Settings
from playground.models.base import ChatModel
from playground.models.openai_compat import EndpointSpec, OpenAICompatModel
from playground.models.providers import (
    EndpointStatus,
    ModelInfo,
    all_providers,
    discover_endpoint,
    endpoint_spec,
    provider_for,
    provider_of,
    split_model_id,
)

__all__ = [
    "EndpointStatus",
    "ModelInfo",
    "discover_endpoint",
    "endpoint_spec",
    "get_model",
    "in_process",
    "list_models",
    "model_for_endpoint_url",
    "provider_for",
    "provider_of",
    "split_model_id",
]


def list_models(settings: Settings, discover: bool = True) -> list[ModelInfo]:
    """Every model the configuration names, with whether it is usable right now."""
    return [info for p in all_providers(settings) for info in p.models(settings, discover)]


def get_model(model_id: str, settings: Settings) -> ChatModel:
    """The ChatModel for an id; raises UnknownModelError or MissingKeyError before any call."""
    provider, name = split_model_id(model_id)
    return provider_for(provider, settings).get(model_id, name, settings)


def in_process(model_id: str, settings: Settings | None = None) -> bool:
    """Whether a model runs inside this process (free of charge, one call at a time)."""
    return provider_of(model_id, settings).in_process


def model_for_endpoint_url(
    model_id: str, base_url: str, api_key_env: str | None, timeout: float, max_retries: int
) -> ChatModel:
    """A model on an endpoint given by URL (as a flow spec carries it), not by config name."""
    _, name = split_model_id(model_id)
    spec = EndpointSpec(
        "compatible",
        base_url.rstrip("/"),
        os.environ.get(api_key_env) if api_key_env else None,
        api_key_env,
        timeout,
        max_retries,
    )
    return OpenAICompatModel(model_id, name, spec)
