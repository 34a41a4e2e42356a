"""How a cell's conversation is drawn: its earlier turns above the answer, and the follow-up box.

Shared by the Playground grid and the read-only History / Shared run pages. Everything in a
thread came from people or models, so it is drawn through ui.answer_markdown.
"""

from __future__ import annotations

import streamlit as st

from playground.conversation import exchanges, few_shot, latest_user_message
from playground.records import Result, Run
from ui.answer_markdown import answer_markdown, plain_markdown


def turn_caption(run: Run, turn: int) -> str:
    """'Turn 2 · follow-up: …': what the run's heading adds for a conversation."""
    if run.parent_run_id is None or run.follow_up is None:
        return ""
    return f"Turn {turn} · follow-up: {plain_markdown(run.follow_up)}"


def thread(result: Result, expanded: bool = True) -> None:
    """A follow-up cell's earlier turns (its own question and answer pairs), oldest first."""
    earlier = exchanges(result)
    if not earlier:
        return
    count = len(earlier)
    with st.expander(
        f"Conversation so far · {count} earlier turn{'s' if count != 1 else ''}",
        expanded=expanded,
        icon=":material/forum:",
    ):
        for exchange in earlier:
            st.markdown(f":gray[**You:**] {plain_markdown(exchange.user)}")
            st.markdown(answer_markdown(exchange.answer))
        st.markdown(f":gray[**You:**] {plain_markdown(latest_user_message(result))}")


def examples_note(result: Result) -> None:
    """A caption naming the few-shot examples the answer was given, openable to read them."""
    shown = few_shot(result)
    if not shown:
        return
    with st.expander(f"Few-shot examples · {len(shown)} messages", icon=":material/school:"):
        for message in shown:
            st.markdown(f":gray[**{message.role}:**] {plain_markdown(message.content)}")
