"""Prompt templates: sandboxed Jinja2, variable discovery, rendering to chat messages."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from playground.errors import TemplateError
from playground.models.base import Message


@lru_cache(maxsize=1)
def _env() -> ImmutableSandboxedEnvironment:
    # Immutable sandbox: templates cannot reach Python internals nor mutate the values they get.
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


@lru_cache(maxsize=512)
def _parsed(source: str) -> Any:
    # Served flows render the same templates on every call: parse and compile each once.
    return _env().parse(source)


@lru_cache(maxsize=512)
def _compiled(source: str) -> Any:
    return _env().from_string(source)


def _where(name: str) -> str:
    return f" in the {name}" if name else ""


def find_variables(*templates: str) -> list[str]:
    """Variables the templates use, in order of first appearance; unparsable templates add none."""
    found: list[str] = []
    for source in templates:
        try:
            names = meta.find_undeclared_variables(_parsed(source))
        except TemplateSyntaxError:
            continue
        # order by first use inside {{ }} / {% %}, not by the same word in the prose around them
        positions: dict[str, int] = {}
        for index, (_, kind, value) in enumerate(_env().lex(source)):
            if kind == "name" and value in names:
                positions.setdefault(value, index)
        for name in sorted(names, key=lambda n: positions.get(n, len(source))):
            if name not in found:
                found.append(name)
    return found


def check_syntax(source: str, name: str = "") -> None:
    """Raise TemplateError naming the line if the template does not parse."""
    try:
        _parsed(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"Template syntax error{_where(name)} on line {exc.lineno}: "
            f"{(exc.message or 'invalid syntax').rstrip('.')}; "
            "fix the template and run again."
        ) from None


def render(source: str, variables: Mapping[str, object], name: str = "") -> str:
    """Render one template in the sandbox; every problem becomes one TemplateError sentence."""
    check_syntax(source, name)
    for var in find_variables(source):
        value = variables.get(var)
        if value is None:
            raise TemplateError(
                f"Variable '{var}'{_where(name)} has no value; give it one "
                f"(--var {var}=... on the command line) and run again."
            )
        if isinstance(value, str) and not value.strip():
            raise TemplateError(
                f"Variable '{var}'{_where(name)} is empty; fill it in and run again."
            )
    try:
        return _compiled(source).render(**variables)
    except SecurityError as exc:
        raise TemplateError(
            f"The template{_where(name)} tried something the sandbox forbids ({exc}); "
            "use only variables and filters."
        ) from None
    except UndefinedError as exc:
        raise TemplateError(
            f"The template{_where(name)} uses something undefined ({exc.message}); "
            "check the variable names."
        ) from None
    except Exception as exc:  # a filter or expression failed at render time
        raise TemplateError(
            f"The template{_where(name)} failed to render ({type(exc).__name__}: {exc}); "
            "fix the expression."
        ) from None


def render_messages(
    system: str, user: str, variables: Mapping[str, object], variant: str = ""
) -> list[Message]:
    """Render a system and a user template into chat messages (an empty system is skipped)."""
    prefix = f"variant '{variant}' " if variant and variant != "default" else ""
    messages: list[Message] = []
    if system.strip():
        messages.append(
            Message(role="system", content=render(system, variables, f"{prefix}system message"))
        )
    if not user.strip():
        raise TemplateError(f"The {prefix}user message is empty; write a prompt and run again.")
    messages.append(Message(role="user", content=render(user, variables, f"{prefix}user message")))
    return messages
