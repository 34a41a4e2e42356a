"""Conversations: a follow-up turn that every model of a run answers in its own thread.

A turn is an ordinary run whose `parent_run_id` names the run it follows up; each of its
cells (variant x model) holds the earlier turns of *that* cell in its messages (the model's
own previous answer, never another column's) and `parent_id` names the answer it follows.
So History, permalinks, Compare and exports see every turn, and the last turn's messages
carry the whole conversation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from playground.errors import PlaygroundError
from playground.models.base import Message
from playground.records import Result, Run

MAX_FOLLOW_UP_CHARS = 100_000  # one message a person types; a document belongs in Knowledge


@dataclass
class Exchange:
    """One turn of a cell's thread: what the user said and what the model answered."""

    user: str
    answer: str


def check_follow_up(previous: Run | None, text: str) -> str:
    """The follow-up text, stripped; PlaygroundError in one sentence when it cannot be sent."""
    if previous is None:
        raise PlaygroundError(
            "Nothing has run yet, so there is no answer to follow up; press Run first."
        )
    message = text.strip()
    if not message:
        raise PlaygroundError("The follow-up is empty; write a message and send it again.")
    if len(message) > MAX_FOLLOW_UP_CHARS:
        raise PlaygroundError(
            f"The follow-up is {len(message):,} characters, more than the "
            f"{MAX_FOLLOW_UP_CHARS:,} a message may have; shorten it."
        )
    if not any(r.ok for r in previous.results):
        raise PlaygroundError(
            "No model answered the last turn, so there is no thread to continue; "
            "fix the error and press Run again."
        )
    return message


def plan_follow_up(previous: Run, text: str, source: str | None = None) -> Run:
    """The next turn: one cell per answered cell of `previous`, each with its own history.

    A cell that failed or was stopped has no answer to build on, so its thread ends there.
    The follow-up is sent as typed (not a template: the variables were filled in turn one).
    Raises PlaygroundError (see `check_follow_up`) before anything is sent.
    """
    message = check_follow_up(previous, text)
    run = Run(
        source=source or previous.source,
        variables=dict(previous.variables),
        retrieval=previous.retrieval,
        retrieved=list(previous.retrieved),  # the context of turn one grounds every turn
        session_id=previous.session_id,
        flow_name=previous.flow_name,
        flow_version=previous.flow_version,
        parent_run_id=previous.id,
    )
    for cell in previous.results:
        if not cell.ok:
            continue
        history = [
            *cell.messages,
            Message(role="assistant", content=cell.text),
            Message(role="user", content=message),
        ]
        run.results.append(
            Result(
                model_id=cell.model_id,
                messages=history,
                params=cell.params,
                variant_name=cell.variant_name,
                variant_note=cell.variant_note,
                system_template=cell.system_template,
                user_template=cell.user_template,
                examples=list(cell.examples),
                retrieval=cell.retrieval,
                response_format=cell.response_format,
                parent_id=cell.id,
            )
        )
    return run


def exchanges(result: Result) -> list[Exchange]:
    """The earlier turns of one cell's thread, oldest first (empty for a first turn)."""
    start = result.template_count - 1  # the first turn's rendered user message
    tail = result.messages[start:-1]
    return [
        Exchange(user=tail[i].content, answer=tail[i + 1].content)
        for i in range(0, len(tail) - 1, 2)
    ]


def latest_user_message(result: Result) -> str:
    """The user message this answer replies to."""
    return result.messages[-1].content if result.messages else ""


def few_shot(result: Result) -> list[Message]:
    """The rendered few-shot examples this answer was given (between system and user)."""
    first = int(result.messages[0].role == "system") if result.messages else 0
    return list(result.messages[first : first + len(result.examples)])


_JINJA_MARK = re.compile(r"\{[{%#]|[}%#]\}")


def literal_template(text: str) -> str:
    """`text` as a Jinja template that renders to exactly `text` (for answers put in specs)."""
    if not _JINJA_MARK.search(text):
        return text
    # {% raw %} cannot hold its own end tag: close it, emit the tag as a string, reopen
    pieces = re.split(r"(\{%-?\s*endraw\s*-?%\})", text)
    out = []
    for piece in pieces:
        if re.fullmatch(r"\{%-?\s*endraw\s*-?%\}", piece):
            out.append("{{ " + repr(piece) + " }}")
        elif piece:
            out.append("{% raw %}" + piece + "{% endraw %}")
    return "".join(out)
