"""Serializers for generated files: Python literals and docstrings, and chat templates.

Each serializer checks its own output (a literal must read back as the value it came from; a
template must hold no line the target would read as structure), so that a spec field can never
become code, a new message or front matter in an export.
"""

from __future__ import annotations

import ast
import keyword
import math
import pprint
import re

from jinja2 import TemplateSyntaxError

from playground.errors import SpecError
from playground.flows.spec import FlowSpec
from playground.prompts import lex

# PromptFlow's and Prompty's role separator (promptflow parse_chat): such a line starts a message.
ROLE_LINE = re.compile(r"(?im)^\s*#?\s*(system|user|assistant|function|tool)\s*:\s*\n")
# Prompty splits front matter from the template at the last run of 3+ dashes before a newline.
FRONT_MATTER_FENCE = re.compile(r"-{3,}\n")


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(k) and _finite(v) for k, v in value.items())
    return True


def py_literal(value: object, what: str) -> str:
    """Python source for plain data that reads back (ast.literal_eval) as exactly that value."""
    if not _finite(value):
        raise SpecError(f"The {what} holds a number that is not finite; use a finite number.")
    text = pprint.pformat(value, width=96, sort_dicts=False)
    if ast.literal_eval(text) != value:  # pragma: no cover - pprint of plain data round-trips
        raise SpecError(f"The {what} cannot be written as Python source; report it.")
    return text


def py_docstring(text: str) -> str:
    """A triple-quoted Python literal holding text verbatim (escapes, quotes, control chars)."""
    out = []
    for char in text.replace("\r\n", "\n"):
        if char == "\\":
            out.append("\\\\")
        elif char == "\n" or char == "\t" or (char.isprintable() and char != '"'):
            out.append(char)
        elif char == '"':
            out.append('\\"')
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    literal = '"""' + "".join(out) + '"""'
    if ast.literal_eval(literal) != text.replace("\r\n", "\n"):  # pragma: no cover
        raise SpecError("The description cannot be written as a Python docstring; report it.")
    return literal


def _export_template(template: str, field: str, target: str) -> str:
    """The template as PromptFlow/Prompty must see it to render like the Playground.

    Block tags end in `+%}` (PromptFlow renders with trim_blocks=True); a dash run ending a line
    in plain text is split with `{{ "-" }}` so Prompty cannot take it for the front matter fence.
    """
    # Jinja reads \r\n and \r as \n (in the Playground and in the targets alike), so a template
    # typed with Windows line endings exports as the same template with \n.
    template = re.sub(r"\r\n?", "\n", template)
    try:
        tokens = list(lex(template))
    except TemplateSyntaxError:  # the schema already refused it; be safe anyway
        raise SpecError(f"Field '{field}' does not parse as a Jinja2 template; fix it.") from None
    if "".join(value for _, _, value in tokens) != template:
        raise SpecError(
            f"Field '{field}' cannot be exported to {target} unchanged; simplify its whitespace "
            "control."
        )
    parts: list[str] = []
    in_raw = False
    for _, kind, value in tokens:
        if kind == "raw_begin":
            in_raw = True
        elif kind == "raw_end":
            in_raw = False
        elif kind == "block_end" and value.startswith("%}"):
            value = "+" + value
        elif kind == "data" and not in_raw:
            value = re.sub(r"(?<=--)-(?=\n)", '{{ "-" }}', value)
        parts.append(value)
    exported = "".join(parts)
    line = ROLE_LINE.search(exported + "\n")
    if line:
        raise SpecError(
            f"Field '{field}' has the line {line.group(0).strip()!r}, which {target} would read "
            "as the start of a new message; reword that line (e.g. 'User said:') to export it."
        )
    if FRONT_MATTER_FENCE.search(exported):
        raise SpecError(
            f"Field '{field}' has a line ending in '---' inside {{% raw %}} or an expression, "
            f"which {target} would read as the front matter fence; reword it to export."
        )
    return exported


def chat_template(spec: FlowSpec, marker: str, target: str) -> str:
    """The messages as one PromptFlow/Prompty chat template: a role line, then the content."""
    blocks = []
    for index, message in enumerate(spec.prompt.messages):
        content = _export_template(message.content, f"prompt.messages[{index}].content", target)
        blocks.append(f"{marker}{message.role}:\n{content}\n")
    return "\n".join(blocks)


def py_identifier(name: str, field: str) -> str:
    """A name used as a Python parameter in generated code: an identifier, not a keyword."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise SpecError(f"Field '{field}' uses {name!r}, which cannot be a Python name; rename it.")
    return name
