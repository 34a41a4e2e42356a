"""Which key a spec's endpoint may use: only a key this machine declared for that very URL.

A spec travels; `model.endpoint.api_key_env` names any environment variable and `base_url` any
server. Sending the variable's value there as a bearer token would let a spec from elsewhere
read `AWS_SECRET_ACCESS_KEY` off this machine. So a key goes only to an endpoint declared in
playground.toml with the same scheme, host, port and path (that endpoint's own key is used), or
to the OpenAI/Azure endpoint the variable belongs to; anything else is refused before a call.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from playground.config import Settings
from playground.errors import SpecError
from playground.flows.spec import FlowSpec
from playground.models.providers import BUILT_IN

_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_identity(url: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) of a base URL, with default ports and trailing / normalised."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return (
        scheme,
        (parts.hostname or "").lower(),
        port or _DEFAULT_PORTS.get(scheme),
        parts.path.rstrip("/"),
    )


def same_endpoint(a: str, b: str) -> bool:
    """True when two base URLs name the same server and path."""
    return url_identity(a) == url_identity(b)


def has_credentials(url: str) -> bool:
    """True when a URL carries a user name or password (`http://user:pass@host/...`)."""
    parts = urlsplit(url.strip())
    return parts.username is not None or parts.password is not None


def url_without_credentials(url: str) -> str:
    """The URL with any user:password@ replaced by ***@, safe to print."""
    parts = urlsplit(url)
    if not has_credentials(url):
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


@dataclass(frozen=True)
class EndpointAccess:
    """How a spec's endpoint is called here: URL, the variable holding its key, limits."""

    base_url: str
    api_key_env: str | None
    timeout: float
    max_retries: int
    declared_as: str | None = None  # the [endpoints.NAME] it matched, if any


def _provider_urls(settings: Settings, variable: str) -> list[str]:
    # The endpoints a provider's own key variable is meant for.
    return [url for p in BUILT_IN.values() if p.key_env == variable for url in p.key_urls(settings)]


def _belongs_to(url: str, provider_url: str) -> bool:
    have, want = url_identity(url), url_identity(provider_url)
    return have[:3] == want[:3] and (have[3] + "/").startswith(want[3] + "/")


def endpoint_access(spec: FlowSpec, settings: Settings) -> EndpointAccess | None:
    """The checked way to call the spec's endpoint (None if it has none); SpecError if refused."""
    endpoint = spec.model.endpoint
    if endpoint is None:
        return None
    url = endpoint.base_url
    runner = settings.runner
    if has_credentials(url):
        raise SpecError(
            f"Flow {spec.name} has credentials inside its base_url "
            f"({url_without_credentials(url)}); remove them, put the key in an environment "
            "variable named by api_key_env and declare the endpoint in playground.toml."
        )
    for name, declared in settings.endpoints.items():
        if same_endpoint(declared.base_url, url):
            return EndpointAccess(
                declared.base_url,
                declared.api_key_env,
                declared.timeout,
                declared.max_retries,
                name,
            )
    variable = endpoint.api_key_env
    if variable is None:
        return EndpointAccess(url, None, runner.timeout, runner.max_retries)
    if any(_belongs_to(url, own) for own in _provider_urls(settings, variable)):
        return EndpointAccess(url, variable, runner.timeout, runner.max_retries)
    raise SpecError(
        f"Flow {spec.name} would send the key in ${variable} to {url}, which is not an endpoint "
        f'declared on this machine; to allow it, add [endpoints.NAME] with base_url = "{url}" '
        f'and api_key_env = "{variable}" to playground.toml.'
    )
