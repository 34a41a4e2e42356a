"""The Playground's response-format picker and the structured view of a JSON answer.

The page draws `response_format_picker` in its side column and reads `format_from_state`
when Run is clicked; answer cards call `show_result_answer`, which falls back to the plain
Markdown view for text answers. The mapping to and from session state is plain functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any

import streamlit as st

from playground.models.response_format import ResponseFormat, parse_schema_text
from playground.records import Result
from ui.answer_markdown import show_answer

FORMAT = "pg_response_format"
SCHEMA = "pg_response_schema"
CHOICES = {"Text": "text", "JSON": "json", "JSON Schema": "json_schema"}
KEEP = "session"  # like the editor's other widgets: survives a visit to another page

# A small example that the embedded model fills in well within the default 256 tokens.
EXAMPLE_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 300},
        "confidence": {"type": "string", "enum": ["low", "medium", "high"]},
    },
    "required": ["answer", "confidence"],
    "additionalProperties": False,
}


def init_format_state(state: MutableMapping[str, Any]) -> None:
    """Text by default, with an example schema ready to edit."""
    state.setdefault(FORMAT, "Text")
    state.setdefault(SCHEMA, json.dumps(EXAMPLE_SCHEMA, indent=2))


def format_from_state(state: Mapping[str, Any]) -> ResponseFormat | None:
    """The picked format (None for text); ParamError in one sentence for a bad schema."""
    kind = CHOICES.get(str(state.get(FORMAT) or "Text"), "text")
    if kind == "text":
        return None
    if kind == "json":
        return ResponseFormat.any_json()
    return parse_schema_text(str(state.get(SCHEMA) or ""), "The JSON Schema under Response format")


def apply_format(state: MutableMapping[str, Any], fmt: ResponseFormat | None) -> None:
    """Load a run's or a flow's format into the picker (text when it has none)."""
    if fmt is None or not fmt.structured:
        state[FORMAT] = "Text"
        return
    state[FORMAT] = next(label for label, kind in CHOICES.items() if kind == fmt.type)
    if fmt.json_schema is not None:
        state[SCHEMA] = json.dumps(fmt.json_schema, indent=2, ensure_ascii=False)


def response_format_picker(state: MutableMapping[str, Any]) -> None:
    """Text, JSON or JSON Schema for every model of the next run; a bad schema says so here."""
    init_format_state(state)
    with st.expander("Response format", expanded=state.get(FORMAT) != "Text"):
        st.radio(
            "Answer as",
            list(CHOICES),
            key=FORMAT,
            persist_state=KEEP,
            horizontal=True,
            help="JSON constrains local models with a grammar and asks endpoints through "
            "response_format; every answer is checked and marked valid or invalid.",
        )
        if state.get(FORMAT) == "JSON Schema":
            st.text_area(
                "Schema", key=SCHEMA, height=180, persist_state=KEEP, help="A JSON Schema object."
            )
            try:
                format_from_state(state)
            except Exception as exc:  # ParamError: shown where the schema is typed
                st.error(str(exc), icon=":material/data_object:")
        elif state.get(FORMAT) == "JSON":
            st.caption("Say in the prompt what the JSON should hold; any JSON object is valid.")


def format_mark(result: Result) -> tuple[bool, str] | None:
    """(valid, 'Valid JSON matching schema ...') for a JSON answer; None for text."""
    check = result.format_check
    return None if check is None else (check.valid, check.reason)


def show_result_answer(result: Result, key: str) -> None:
    """An answer card's body: text as Markdown, JSON formatted with its valid/invalid mark."""
    check = result.format_check
    if check is None:
        show_answer(result.text, key=key)
        return
    if check.valid:
        st.badge("Valid", icon=":material/check_circle:", color="green")
    else:
        st.badge("Invalid", icon=":material/cancel:", color="red")
    st.caption(check.reason)
    pretty = check.pretty
    # a code block keeps the JSON exact and has a copy button; invalid text is shown as it came
    st.code(pretty if pretty is not None else result.text, language="json", wrap_lines=True)
