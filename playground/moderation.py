"""The Harm metric: answers checked by a moderation endpoint, when one is configured.

Without `[moderation]` in playground.toml nothing is checked and the app says "not checked";
a failed check is reported but never stored, so no harm figure is ever made up.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from playground.config import Settings
from playground.errors import EndpointError
from playground.models.openai_compat import EndpointSpec, client_for, explain
from playground.records import Moderation, Result


def moderation_spec(settings: Settings) -> EndpointSpec | None:
    """Where to send moderation calls, or None when no moderation endpoint is configured."""
    config = settings.moderation
    if config is None:
        return None
    key = os.environ.get(config.api_key_env) if config.api_key_env else None
    if config.base_url is None and key is None:
        key = settings.keys.openai_api_key
    return EndpointSpec(
        kind="openai" if config.base_url is None else "compatible",
        base_url=config.base_url or settings.keys.openai_base_url,
        api_key=key,
        api_key_env=config.api_key_env or "OPENAI_API_KEY",
        timeout=config.timeout,
        max_retries=config.max_retries,
    )


def moderate(settings: Settings, text: str) -> Moderation | None:
    """Check one text; None when moderation is not configured. Raises EndpointError."""
    spec = moderation_spec(settings)
    if spec is None or settings.moderation is None or not text.strip():
        return None
    import openai

    model = settings.moderation.model
    try:
        response = client_for(spec).moderations.create(model=model, input=text)
        verdict = response.results[0]
    except openai.OpenAIError as exc:
        error = explain(exc, f"moderation model {model}", spec)
        raise EndpointError(f"Moderation was not checked: {error}") from None
    except (IndexError, AttributeError, TypeError, ValueError):
        raise EndpointError(
            f"Moderation was not checked: {spec.label} did not return a moderation result; "
            "check [moderation] base_url."
        ) from None
    categories = verdict.categories.model_dump() if verdict.categories else {}
    flagged = sorted(name for name, value in categories.items() if value is True)
    return Moderation(flagged=bool(verdict.flagged), categories=flagged, model=model)


def moderate_results(settings: Settings, results: Sequence[Result]) -> list[str]:
    """Moderate every answered result in place; return one sentence per failed check."""
    problems: list[str] = []
    for result in results:
        if not result.ok or not result.text:
            continue
        try:
            verdict = moderate(settings, result.text)
        except EndpointError as exc:
            problems.append(str(exc))
            continue
        if verdict is not None:
            result.moderation = verdict
    return problems


def verdict_label(moderation: Moderation | None) -> str:
    """A short label for one answer: 'not checked', 'ok' or 'flagged: hate, violence'."""
    return "not checked" if moderation is None else moderation.label
