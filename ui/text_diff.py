"""A word-level diff of two texts (two answers, two prompts) as Markdown people can read.

Removed words are struck through in red, added words are green, unchanged words plain; every
word is escaped, so a diff of model output can neither format itself nor link anywhere.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

import streamlit as st

from ui.answer_markdown import plain_markdown

_TOKENS = re.compile(r"\s+|[^\s]+")


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """(kind, text) pieces from `old` to `new`: kind is 'same', 'removed' or 'added'."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    pieces: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            pieces.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            pieces.append(("removed", "".join(a[i1:i2])))
        if j2 > j1:
            pieces.append(("added", "".join(b[j1:j2])))
    return pieces


def diff_markdown(old: str, new: str) -> str:
    """The word diff as Markdown: :red[~~removed~~], :green[added], the rest as it was."""
    if old == new:
        return "_(identical)_"
    out: list[str] = []
    for kind, text in word_diff(old, new):
        shown = plain_markdown(text)  # flattens whitespace: the diff reads as one paragraph
        lead = " " if text[:1].isspace() else ""
        trail = " " if text[-1:].isspace() and shown else ""
        if not shown:
            out.append(" ")
        elif kind == "removed":
            out.append(f"{lead}:red[~~{shown}~~]{trail}")
        elif kind == "added":
            out.append(f"{lead}:green[**{shown}**]{trail}")
        else:
            out.append(f"{lead}{shown}{trail}")
    joined = "".join(out)
    # a change right after a word (or another change) still needs a space to be styled
    joined = re.sub(r"(?<=\S)(:(?:red|green)\[)", r" \1", joined)
    return re.sub(r" {2,}", " ", joined).strip()


def diff_picker(texts: dict[str, str], key: str, title: str) -> None:
    """Two selectboxes over labelled texts and the word diff between the chosen two."""
    labels = list(texts)
    if len(labels) < 2:
        return
    with st.expander(title, icon=":material/difference:"):
        left, right = st.columns(2)
        old = left.selectbox("From", labels, index=0, key=f"{key}_from")
        new = right.selectbox("To", labels, index=1, key=f"{key}_to")
        st.caption(":red[~~struck red~~] only in the first · :green[**green**] only in the second")
        st.markdown(diff_markdown(texts[old], texts[new]))
