"""Settings from playground.toml, the environment and (in the app) st.secrets."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from playground.errors import ConfigError
from playground.files import read_bounded
from playground.redaction import register_secrets

CONFIG_FILE = "playground.toml"
DEFAULT_HOME = ".playground"
MAX_CONFIG_BYTES = 1_000_000  # a config is a few KB; /dev/zero must not fill memory
# An endpoint's name is the provider part of its model ids (`NAME/model`): the same characters
# a flow spec accepts there (playground.flows.spec.MODEL_ID_PATTERN), short enough for the store.
ENDPOINT_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_USER_ERROR = "playground"  # pydantic error type whose message is already a whole sentence


class _Strict(BaseModel):
    # TOML reads 1e309 as inf: a timeout or price must be a real number (and JSON-safe)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class EndpointConfig(_Strict):
    """An OpenAI-compatible server declared under [endpoints.NAME]."""

    base_url: str
    api_key_env: str | None = None
    models: list[str] | None = None
    timeout: float = Field(60.0, gt=0)
    idle_timeout: float | None = Field(None, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    max_concurrency: int | None = Field(None, ge=1, le=256)  # batch calls in flight at once

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class LocalModelConfig(_Strict):
    """A GGUF file on disk declared under [local.NAME]."""

    path: Path
    n_ctx: int = Field(2048, ge=128)


class Price(_Strict):
    """USD per million tokens."""

    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)


class StorageConfig(_Strict):
    """Where runs, knowledge stores and flows live."""

    home: Path | None = None
    database_url: str | None = None
    password_env: str | None = None  # the variable holding database_url's password


class VectorStoreConfig(_Strict):
    """An optional Chroma server instead of the embedded store."""

    url: str | None = None


class KnowledgeConfig(_Strict):
    """Limits for documents uploaded to knowledge stores."""

    max_file_mb: float = Field(20.0, gt=0)


class ModerationConfig(_Strict):
    """A moderation endpoint for the Harm metric: OpenAI's by default, or any compatible one."""

    base_url: str | None = None
    api_key_env: str | None = None
    model: str = "omni-moderation-latest"
    timeout: float = Field(20.0, gt=0)
    max_retries: int = Field(1, ge=0, le=10)


class RunnerConfig(_Strict):
    """Timeouts and retries for remote models.

    `timeout` bounds a whole call (each attempt, from sending the request to the last chunk);
    `idle_timeout` bounds the silence between two chunks of an answer (default: 30 s, at most
    the timeout).
    """

    timeout: float = Field(60.0, gt=0)
    idle_timeout: float | None = Field(None, gt=0)
    max_retries: int = Field(2, ge=0, le=10)


class ProviderKeys(_Strict):
    """Keys and endpoints for OpenAI and Azure OpenAI, resolved from env or st.secrets."""

    openai_api_key: str | None = None
    openai_base_url: str | None = None
    azure_api_key: str | None = None
    azure_endpoint: str | None = None
    azure_api_version: str | None = None
    azure_deployments: list[str] = Field(default_factory=list)


class Settings(_Strict):
    """Everything the library needs to know about this installation."""

    storage: StorageConfig = Field(default_factory=StorageConfig)
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    local: dict[str, LocalModelConfig] = Field(default_factory=dict)
    prices: dict[str, Price] = Field(default_factory=dict)
    vector_store: VectorStoreConfig = Field(default_factory=VectorStoreConfig)
    knowledge: KnowledgeConfig = Field(default_factory=KnowledgeConfig)
    moderation: ModerationConfig | None = None
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    # [serve] and [[alerts]]: raw tables, validated by playground.serve.settings when serving
    serve: dict[str, Any] = Field(default_factory=dict)
    alerts: list[dict[str, Any]] = Field(default_factory=list)
    keys: ProviderKeys = Field(default_factory=ProviderKeys, exclude=True)
    config_path: Path | None = Field(default=None, exclude=True)

    @field_validator("endpoints")
    @classmethod
    def _endpoint_names(cls, value: dict[str, EndpointConfig]) -> dict[str, EndpointConfig]:
        # Refused here, not when a model is looked up: `[endpoints.local]` would be shadowed by
        # the embedded model and `[endpoints."a/b"]` makes ids that split in the wrong place.
        # The built-in providers' table imports this module: read it only when validating.
        from playground.models.providers import is_reserved

        for name in value:
            if is_reserved(name):
                raise PydanticCustomError(
                    _USER_ERROR,
                    f"[endpoints.{name}] clashes with the built-in provider '{name.lower()}' "
                    f"(model ids {name.lower()}/...); rename it, e.g. [endpoints.{name}-server]",
                )
            if re.fullmatch(ENDPOINT_NAME_PATTERN, name) is None:
                raise PydanticCustomError(
                    _USER_ERROR,
                    f"endpoint name {json.dumps(name)} cannot form a model id (ids are "
                    "NAME/MODEL); use up to 64 letters, digits, '.', '_' or '-', starting "
                    "with a letter or digit, e.g. [endpoints.myserver]",
                )
        return value

    @property
    def home(self) -> Path:
        """The data directory: $PLAYGROUND_HOME, else [storage] home, else ./.playground."""
        env_home = os.environ.get("PLAYGROUND_HOME")
        if env_home:
            return Path(env_home)
        if self.storage.home is not None:
            home = self.storage.home
            if not home.is_absolute() and self.config_path is not None:
                home = self.config_path.parent / home
            return home
        return Path(DEFAULT_HOME)

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the run store."""
        return self.storage.database_url or f"sqlite:///{self.home / 'playground.db'}"

    def secret_values(self) -> list[str]:
        """Every key value this configuration can send: provider keys and each `*_env` variable."""
        values = [self.keys.openai_api_key, self.keys.azure_api_key]
        values += [os.environ.get(name) for name in _env_names(self)]
        return [v for v in values if v]

    def price_for(self, model_id: str) -> Price:
        """The configured price of a model; local models and unpriced ones cost 0."""
        return self.prices.get(model_id, Price())


def _env_names(model: BaseModel) -> list[str]:
    # every field named *_env holds the name of a variable with a secret (api_key_env,
    # password_env, ...), at any depth, so a new one is redacted without being listed here
    names: list[str] = []
    for field_name in type(model).model_fields:
        value = getattr(model, field_name)
        children = value.values() if isinstance(value, dict) else [value]
        for child in children:
            if isinstance(child, BaseModel):
                names += _env_names(child)
            elif field_name.endswith("_env") and isinstance(child, str):
                names.append(child)
    return names


def find_config_file() -> Path | None:
    """$PLAYGROUND_CONFIG if set, else ./playground.toml if it exists."""
    env_path = os.environ.get("PLAYGROUND_CONFIG")
    if env_path:
        return Path(env_path)
    candidate = Path.cwd() / CONFIG_FILE
    return candidate if candidate.exists() else None


def _first_error(exc: ValidationError, where: Path | None) -> str:
    err = exc.errors()[0]
    if err["type"] == _USER_ERROR:
        message = str(err["msg"])
        return f"In {where}: {message}." if where else f"{message[0].upper()}{message[1:]}."
    field = ".".join(str(part) for part in err["loc"])
    place = f" in {where}" if where else ""
    return f"Setting '{field}'{place} is invalid: {err['msg']}; fix it and try again."


def _keys_from(env: Mapping[str, str], secrets: Mapping[str, Any] | None) -> ProviderKeys:
    def pick(name: str) -> str | None:
        if secrets is not None and secrets.get(name):
            return str(secrets[name])
        return env.get(name) or None

    deployments = pick("AZURE_OPENAI_DEPLOYMENTS") or ""
    return ProviderKeys(
        openai_api_key=pick("OPENAI_API_KEY"),
        openai_base_url=pick("OPENAI_BASE_URL"),
        azure_api_key=pick("AZURE_OPENAI_API_KEY"),
        azure_endpoint=pick("AZURE_OPENAI_ENDPOINT"),
        azure_api_version=pick("OPENAI_API_VERSION") or pick("AZURE_OPENAI_API_VERSION"),
        azure_deployments=[d.strip() for d in deployments.split(",") if d.strip()],
    )


def _read_config(path: Path) -> str:
    if path.is_dir():  # opening a directory works on some systems; reading it does not
        raise IsADirectoryError(path)
    data = read_bounded(path, MAX_CONFIG_BYTES)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"Config file {path} is larger than {MAX_CONFIG_BYTES // 1_000_000} MB; a "
            f"{CONFIG_FILE} holds a few settings, so point PLAYGROUND_CONFIG at the right file."
        )
    return data.decode("utf-8")


def load_settings(path: Path | None = None, secrets: Mapping[str, Any] | None = None) -> Settings:
    """Read playground.toml (if any), then keys from st.secrets (if given) or the environment."""
    path = path or find_config_file()
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(_read_config(Path(path)))
        except FileNotFoundError:
            raise ConfigError(
                f"Config file {path} does not exist; create it or unset PLAYGROUND_CONFIG."
            ) from None
        except IsADirectoryError:
            raise ConfigError(
                f"Config file {path} is a directory, not a TOML file; point PLAYGROUND_CONFIG "
                f"at a {CONFIG_FILE} file."
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"Cannot read config file {path} ({exc.strerror or exc}); check that it is a "
                "readable file."
            ) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file {path} is not valid TOML ({exc}); fix it.") from None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc, path)) from None
    settings.config_path = Path(path).resolve() if path else None
    settings.keys = _keys_from(os.environ, secrets)
    register_secrets(settings.secret_values())
    return settings
