"""The few errors Prompt Playground raises on purpose; each message says what to do."""

from __future__ import annotations

from playground.redaction import clean_message


class PlaygroundError(Exception):
    """An error meant for the user: its message is one sentence that names the fix.

    The message is cleaned when the error is made (secrets redacted, terminal codes removed),
    so no key and no colour code reaches a store, a page, JSON or stderr.
    """

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(clean_message(str(message)), *args)


class UnknownModelError(PlaygroundError):
    """A model id that no provider serves."""

    def __init__(self, model_id: str, hint: str = "") -> None:
        self.model_id = model_id
        message = f"Unknown model '{model_id}'; run `playground models` to see the ids you can use."
        if hint:
            message = f"Unknown model '{model_id}'; {hint}"
        super().__init__(message)


class MissingKeyError(PlaygroundError):
    """A provider that needs an API key found none."""


class EndpointError(PlaygroundError):
    """A model endpoint failed: unreachable, refused, timed out or rejected the request."""


class ParamError(PlaygroundError):
    """A model parameter is missing, of the wrong type or out of range."""


class TemplateError(PlaygroundError):
    """A prompt template does not parse, needs a variable nobody gave, or broke the sandbox."""


class ConfigError(PlaygroundError):
    """playground.toml or an environment variable holds something we cannot use."""


class SpecError(PlaygroundError):
    """A flow spec fails validation; the message names the field."""


class StoreNotFoundError(PlaygroundError):
    """A knowledge store that does not exist."""


class IngestError(PlaygroundError):
    """A document could not be ingested into a knowledge store."""


class NotFoundError(PlaygroundError):
    """A run, result, flow or version that does not exist."""


class AmbiguousIdError(PlaygroundError):
    """A shortened id (a prefix) that matches more than one record."""


class StoreError(PlaygroundError):
    """The run store (SQLite or PostgreSQL) failed: unreachable, refused, corrupt or too new."""
