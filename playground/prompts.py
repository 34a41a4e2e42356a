"""Prompt templates: sandboxed Jinja2, variable discovery, rendering to chat messages.

Rendering is bounded, because templates travel inside flow specs from elsewhere: a render
stops after RENDER_DEADLINE_S seconds (checked on every loop iteration and output chunk) or
when the text passes MAX_RENDERED_CHARS; operators, calls and filters that would build a
value larger than that (`'a' * 10**9`, `10 ** 10 ** 10`, `center(10**9)`) are refused before
they allocate it; templates longer than MAX_TEMPLATE_CHARS or nested too deeply are refused.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from playground.errors import TemplateError
from playground.models.base import Message

if TYPE_CHECKING:  # Jinja2 is imported only for a template that needs it (template_sandbox)
    from jinja2 import Template, nodes

MAX_TEMPLATE_CHARS = 200_000  # a prompt template is a few KB
MAX_RENDERED_CHARS = 1_000_000  # ~250k tokens: more than any model's context
RENDER_DEADLINE_S = 2.0  # a real template renders in well under a millisecond
_MAX_POWER_BITS = 4096  # `**` results beyond this are refused before they are computed
_GUARD = "_pp_bounded"  # the loop guard wrapped around every {% for %} iterable


class RenderLimitError(Exception):
    """A render went past its time or size bound (turned into a TemplateError by render)."""


class TemplateLimitError(TemplateError):
    """A template that is too big, too deep, too slow or renders too much: never worth running."""


_render_state = threading.local()  # the deadline of the render running on this thread


def _check_deadline() -> None:
    deadline = getattr(_render_state, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise RenderLimitError(f"took longer than {RENDER_DEADLINE_S:g} s")


def _too_big(what: str = "built a value") -> RenderLimitError:
    return RenderLimitError(f"{what} longer than {MAX_RENDERED_CHARS:,} characters")


def _check_size(value: object) -> object:
    if isinstance(value, str | list | tuple | bytes) and len(value) > MAX_RENDERED_CHARS:
        raise _too_big()
    return value


def _bounded(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every loop iteration checks the render deadline (nested loops cannot spin forever)."""
    for item in iterable:
        _check_deadline()
        yield item


def _sized(value: object) -> int:
    return len(value) if isinstance(value, str | list | tuple | bytes) else 0


def _too_big_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > MAX_RENDERED_CHARS


def _wide_format(text: str) -> bool:
    # A field width or precision of 7+ digits asks for a million characters or more.
    return re.search(r"[<>=^,.%\d]\d{7,}", text) is not None or "%*" in text


def _check_replace(text: str, old: object, new: object) -> None:
    if str(old) and len(str(new)) * (text.count(str(old)) + 1) + len(text) > MAX_RENDERED_CHARS:
        raise _too_big("would build a value")


def _guard_args(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    # A width, count or repeat above the size bound can only build a value beyond it.
    if any(_too_big_int(a) for a in args) or any(_too_big_int(v) for v in kwargs.values()):
        raise _too_big("asked for a size")
    _check_deadline()


def _guarded_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)  # keeps jinja_pass_arg (pass_context etc.)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _guard_args(args, kwargs)
        if function.__name__ == "do_replace" and len(args) >= 3:
            _check_replace(str(args[-3]), args[-2], args[-1])
        if function.__name__ == "do_format" and args and _wide_format(str(args[0])):
            raise _too_big("asked for a size")
        return _check_size(function(*args, **kwargs))

    return guarded


def _size_guard(value: object) -> object:
    _check_deadline()
    return _check_size(value if isinstance(value, str) else str(value))


def _where(name: str) -> str:
    return f" in the {name}" if name else ""


def _the(name: str) -> str:
    return f"the {name}" if name else "the template"


# Text with `{{ name }}` placeholders and no other tag reads the same to Jinja2 as to these two
# patterns: such a template is checked, listed and rendered without importing Jinja2 (about
# 40 ms, most of what `run`, `flow run` and `eval run` import before their first request).
_PLACEHOLDER = re.compile(r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}")
_TAG_START = re.compile(r"\{(?=[{%#])")
_NEWLINE = re.compile(r"\r\n|\r")  # Jinja2 reads every line break as \n
# Names Jinja2 reads as constants, operators or its own objects, not as variables.
_JINJA_NAMES = (
    "true false none True False None and or not in is if else elif for self loop super caller "
    "varargs kwargs namespace range dict lipsum cycler joiner"
)
_NOT_VARIABLES = frozenset(_JINJA_NAMES.split())


@lru_cache(maxsize=1024)
def _plain(source: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(text pieces, placeholder names) of a text-and-`{{ name }}` template, else None."""
    if len(source) > MAX_TEMPLATE_CHARS:
        return None
    pieces: list[str] = []
    names: list[str] = []
    starts: set[int] = set()
    pos = 0
    for match in _PLACEHOLDER.finditer(source):
        if match.group(1) in _NOT_VARIABLES:
            return None
        pieces.append(source[pos : match.start()])
        names.append(match.group(1))
        starts.add(match.start())
        pos = match.end()
    pieces.append(source[pos:])
    # every `{{`, `{%` or `{#` Jinja2 would see must open one of the placeholders
    if any(tag.start() not in starts for tag in _TAG_START.finditer(source)):
        return None
    return tuple(_NEWLINE.sub("\n", piece) for piece in pieces), tuple(names)


def lex(source: str) -> Iterator[tuple[int, str, str]]:
    """The template's tokens (line, kind, text), as the renderer reads them."""
    from playground.template_sandbox import env

    return env().lex(source)


@lru_cache(maxsize=1024)  # a batch renders the same few templates thousands of times
def _parse(source: str, name: str = "") -> nodes.Template:
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateLimitError(
            f"The template{_where(name)} is {len(source):,} characters long, more than the "
            f"{MAX_TEMPLATE_CHARS:,} a prompt may have; shorten it."
        )
    from playground.template_sandbox import env

    try:
        return env().parse(source)
    except RecursionError:
        raise TemplateLimitError(
            f"The template{_where(name)} is nested too deeply to parse (too many brackets or "
            "blocks inside each other); simplify it."
        ) from None


def find_variables(*templates: str) -> list[str]:
    """Variables the templates use, in order of first appearance; unparsable templates add none."""
    found: list[str] = []
    for source in templates:
        for name in _variables_of(source):
            if name not in found:
                found.append(name)
    return found


@lru_cache(maxsize=1024)
def _variables_of(source: str) -> tuple[str, ...]:
    plain = _plain(source)
    if plain is not None:
        return tuple(dict.fromkeys(plain[1]))
    from jinja2 import TemplateSyntaxError, meta

    try:
        names = meta.find_undeclared_variables(_parse(source))
    except (TemplateSyntaxError, TemplateError, RecursionError):
        return ()
    # order by first use inside {{ }} / {% %}, not by the same word in the prose around them
    positions: dict[str, int] = {}
    for index, (_, kind, value) in enumerate(lex(source)):
        if kind == "name" and value in names:
            positions.setdefault(value, index)
    return tuple(sorted(names, key=lambda n: positions.get(n, len(source))))


def check_syntax(source: str, name: str = "") -> None:
    """Raise TemplateError naming the line if the template does not parse (or is too big)."""
    if _plain(source) is not None:
        return
    from jinja2 import TemplateSyntaxError

    try:
        _parse(source, name)
    except TemplateSyntaxError as exc:
        unclosed = _unclosed_tag(source)
        if unclosed is not None:  # Jinja says "expected 'end of print statement'" here
            line, opener, closer = unclosed
            raise TemplateError(
                f"Template syntax error{_where(name)} on line {line}: `{opener}` is never "
                f"closed with `{closer}`; fix the template and run again."
            ) from None
        raise TemplateError(
            f"Template syntax error{_where(name)} on line {exc.lineno}: "
            f"{(exc.message or 'invalid syntax').rstrip('.')}; "
            "fix the template and run again."
        ) from None


_TAGS = {"{{": "}}", "{%": "%}", "{#": "#}"}


def _unclosed_tag(source: str) -> tuple[int, str, str] | None:
    """The line and pair of the first `{{`, `{%` or `{#` with no closing mark after it."""
    pos = 0
    while (found := re.search(r"\{[{%#]", source[pos:])) is not None:
        start = pos + found.start()
        opener = found.group()
        end = source.find(_TAGS[opener], start + 2)
        if end < 0:
            return source.count("\n", 0, start) + 1, opener, _TAGS[opener]
        pos = end + 2
    return None


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Template:
    from playground.template_sandbox import render_env

    return render_env().from_string(source)


def _bounded_render(source: str, variables: Mapping[str, object]) -> str:
    plain = _plain(source)
    if plain is not None:
        pieces, names = plain
        parts = [pieces[0]]
        for name, piece in zip(names, pieces[1:], strict=True):
            parts += [str(variables[name]), piece]  # what Jinja2 prints for `{{ name }}`
        text = "".join(parts)
        if len(text) > MAX_RENDERED_CHARS:
            raise _too_big("rendered text")
        return text
    template = _compiled(source)
    _render_state.deadline = time.monotonic() + RENDER_DEADLINE_S
    try:
        chunks: list[str] = []
        size = 0
        for chunk in template.generate(**variables):
            size += len(chunk)
            if size > MAX_RENDERED_CHARS:
                raise _too_big("rendered text")
            _check_deadline()
            chunks.append(chunk)
        return "".join(chunks)
    finally:
        _render_state.deadline = None


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
        return _bounded_render(source, variables)
    except RenderLimitError as exc:
        raise TemplateLimitError(
            f"Rendering {_the(name)} stopped: it {exc}; a prompt template must stay small "
            "and quick, so remove the loop or expression that grows it."
        ) from None
    except RecursionError:
        raise TemplateError(
            f"The template{_where(name)} is nested too deeply to render; simplify it."
        ) from None
    except MemoryError:
        raise TemplateLimitError(
            f"Rendering {_the(name)} ran out of memory; remove the expression that grows it."
        ) from None
    except Exception as exc:
        raise _render_error(exc, name) from None


def _render_error(exc: Exception, name: str) -> TemplateError:
    """The sentence for a render that raised: the sandbox, an undefined value, or a failure."""
    from jinja2.exceptions import SecurityError, UndefinedError

    if isinstance(exc, SecurityError):
        return TemplateError(
            f"The template{_where(name)} tried something the sandbox forbids ({exc}); "
            "use only variables and filters."
        )
    if isinstance(exc, UndefinedError):
        return TemplateError(
            f"The template{_where(name)} uses something undefined ({exc.message}); "
            "check the variable names."
        )
    # a filter or expression failed at render time
    return TemplateError(
        f"The template{_where(name)} failed to render ({type(exc).__name__}: {exc}); "
        "fix the expression."
    )


def check_examples(examples: Sequence[Message], variant: str = "") -> None:
    """Raise TemplateError unless few-shot examples alternate user, assistant, ... assistant."""
    prefix = f"variant '{variant}' " if variant and variant != "default" else ""
    for index, message in enumerate(examples):
        expected = "user" if index % 2 == 0 else "assistant"
        if message.role != expected:
            raise TemplateError(
                f"Few-shot message {index + 1} of the {prefix}prompt is a {message.role} "
                f"message where a {expected} message belongs; examples alternate user and "
                "assistant, so change its role or remove it."
            )
        if not message.content.strip():
            raise TemplateError(
                f"Few-shot message {index + 1} of the {prefix}prompt is empty; write it "
                "or remove it."
            )
    if examples and len(examples) % 2:
        raise TemplateError(
            f"The last few-shot message of the {prefix}prompt is a user message with no "
            "assistant answer after it; add the answer or remove the message."
        )


def render_messages(
    system: str,
    user: str,
    variables: Mapping[str, object],
    variant: str = "",
    examples: Sequence[Message] = (),
) -> list[Message]:
    """Render a system template, few-shot examples and a user template into chat messages
    (an empty system is skipped)."""
    prefix = f"variant '{variant}' " if variant and variant != "default" else ""
    check_examples(examples, variant)
    messages: list[Message] = []
    if system.strip():
        messages.append(
            Message(role="system", content=render(system, variables, f"{prefix}system message"))
        )
    for index, example in enumerate(examples, start=1):
        where = f"{prefix}few-shot message {index} ({example.role})"
        content = render(example.content, variables, where)
        messages.append(Message(role=example.role, content=content))
    if not user.strip():
        raise TemplateError(f"The {prefix}user message is empty; write a prompt and run again.")
    messages.append(Message(role="user", content=render(user, variables, f"{prefix}user message")))
    return messages
