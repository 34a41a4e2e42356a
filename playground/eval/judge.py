"""LLM judges beyond the rubric scorer: faithfulness per statement, and pairwise preference.

Every judge reply must be a JSON object; a reply that cannot be read is *unmeasured*, never a
pass. Pairwise judging asks twice with the answers swapped, so a judge that prefers whichever
answer comes first shows it as position bias instead of passing it off as a preference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from playground.config import Settings
from playground.models.base import Message, ModelParams

FAITHFULNESS_SYSTEM = (
    "You check one statement against a context. Reply with only a JSON object: "
    '{"supported": true or false, "reason": "<one short sentence>"}. '
    "supported is true only when the context states it; a statement the context contradicts "
    "or does not mention is not supported."
)
PAIRWISE_SYSTEM = (
    "You compare two answers to the same question. Reply with only a JSON object: "
    '{"winner": "A" or "B" or "tie", "reason": "<one short sentence>"}.'
)


def _json_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects in a reply (a ``` fence and chatter around them are allowed)."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    body = fenced.group(1) if fenced else text
    found = []
    for match in re.finditer(r"\{[^{}]*\}", body, re.DOTALL):
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            found.append(data)
    return found


def parse_supported(text: str) -> tuple[bool, str] | None:
    """(supported, reason) from a faithfulness reply, or None when it cannot be read."""
    for data in _json_objects(text):
        value = data.get("supported")
        if isinstance(value, str) and value.strip().lower() in {"true", "yes", "false", "no"}:
            value = value.strip().lower() in {"true", "yes"}
        if isinstance(value, bool):
            return value, str(data.get("reason") or "").strip()
    return None


def parse_winner(text: str) -> Literal["A", "B", "tie"] | None:
    """'A', 'B' or 'tie' from a pairwise reply, or None when it cannot be read."""
    for data in _json_objects(text):
        value = str(data.get("winner", "")).strip().upper()
        if value in {"A", "B"}:
            return value  # type: ignore[return-value]
        if value == "TIE":
            return "tie"
    return None


def faithfulness_messages(statement: str, context: str, question: str = "") -> list[Message]:
    """The judge's conversation for one statement."""
    parts = [f"Context:\n{context}"]
    if question:
        parts.append(f"Question: {question}")
    parts.append(f"Statement: {statement}")
    parts.append('Reply with JSON only, like {"supported": true, "reason": "..."}.')
    return [
        Message(role="system", content=FAITHFULNESS_SYSTEM),
        Message(role="user", content="\n\n".join(parts)),
    ]


@dataclass
class StatementVerdict:
    """The judge's verdict on one statement; supported is None when its reply was unreadable."""

    statement: str
    supported: bool | None
    reason: str


def check_statements(
    settings: Settings,
    model: str,
    statements: Sequence[str],
    context: str,
    question: str = "",
    max_tokens: int = 64,
) -> list[StatementVerdict]:
    """Ask the judge about each statement; a failed call or garbage reply leaves it None."""
    from playground.runner import complete

    params = ModelParams(temperature=0.0, max_tokens=max_tokens, seed=0)
    verdicts = []
    for statement in statements:
        reply = complete(
            model, faithfulness_messages(statement, context, question), params, settings
        )
        if reply.error:
            verdicts.append(StatementVerdict(statement, None, f"judge failed: {reply.error}"))
            continue
        parsed = parse_supported(reply.text)
        if parsed is None:
            verdicts.append(StatementVerdict(statement, None, f"unreadable reply: {reply.text}"))
        else:
            verdicts.append(StatementVerdict(statement, parsed[0], parsed[1]))
    return verdicts


def pairwise_messages(question: str, first: str, second: str, rubric: str) -> list[Message]:
    """The judge's conversation: answer A is `first`, answer B is `second`."""
    parts = [f"Rubric: {rubric}"] if rubric else []
    if question:
        parts.append(f"Question: {question}")
    parts += [f"Answer A: {first}", f"Answer B: {second}"]
    parts.append(
        'Which answer is better? Reply with JSON only, like {"winner": "A", "reason": "..."}.'
    )
    return [
        Message(role="system", content=PAIRWISE_SYSTEM),
        Message(role="user", content="\n\n".join(parts)),
    ]


Preference = Literal["first", "second", "tie", "inconsistent", "unmeasured"]


@dataclass
class PairVerdict:
    """One pair judged in both orders: who won each time and what that adds up to."""

    question: str
    forward: str | None  # winner with `first` shown as A: "A", "B", "tie" or None (unreadable)
    backward: str | None  # winner with `second` shown as A
    preference: Preference

    def to_json(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {
            "question": self.question,
            "forward": self.forward,
            "backward": self.backward,
            "preference": self.preference,
        }


def combine(forward: str | None, backward: str | None) -> Preference:
    """What two orders say together: a winner only when both orders pick the same answer."""
    if forward is None or backward is None:
        return "unmeasured"
    # in the backward order the labels are swapped: "B" there means `first`
    first_votes = {"A": 1, "B": -1, "tie": 0}[forward] + {"A": -1, "B": 1, "tie": 0}[backward]
    if first_votes > 0:
        return "first"
    if first_votes < 0:
        return "second"
    return "tie" if forward == backward == "tie" else "inconsistent"


@dataclass
class PairwiseReport:
    """Pairwise figures for a set of pairs: wins both ways, ties, and the judge's position bias."""

    model: str
    pairs: list[PairVerdict] = field(default_factory=list)

    def _count(self, preference: Preference) -> int:
        return sum(p.preference == preference for p in self.pairs)

    @property
    def position_bias(self) -> float | None:
        """Share of readable orders in which the judge picked whichever answer came first,
        minus one half: 0 is no bias, +0.5 always the first shown, -0.5 always the second."""
        picks = [w for p in self.pairs for w in (p.forward, p.backward) if w in {"A", "B"}]
        if not picks:
            return None
        return round(sum(w == "A" for w in picks) / len(picks) - 0.5, 4)

    def to_json(self) -> dict[str, Any]:
        """The --json shape: counts, position bias and every pair."""
        return {
            "judge": self.model,
            "pairs": len(self.pairs),
            "first_wins": self._count("first"),
            "second_wins": self._count("second"),
            "ties": self._count("tie"),
            "inconsistent": self._count("inconsistent"),
            "unmeasured": self._count("unmeasured"),
            "position_bias": self.position_bias,
            "rows": [p.to_json() for p in self.pairs],
        }

    def sentence(self) -> str:
        """One line for the CLI."""
        bias = "n/a" if self.position_bias is None else f"{self.position_bias:+.2f}"
        return (
            f"judge {self.model} over {len(self.pairs)} pairs, both orders: first wins "
            f"{self._count('first')}, second wins {self._count('second')}, ties "
            f"{self._count('tie')}, order-dependent {self._count('inconsistent')}, unmeasured "
            f"{self._count('unmeasured')}; position bias {bias} (0 = none, +0.5 = always the "
            "answer shown first)"
        )


def judge_pair(
    settings: Settings,
    model: str,
    question: str,
    first: str,
    second: str,
    rubric: str = "",
    max_tokens: int = 64,
) -> PairVerdict:
    """Judge one pair twice, with the answers swapped the second time."""
    from playground.runner import complete

    params = ModelParams(temperature=0.0, max_tokens=max_tokens, seed=0)
    winners = []
    for a, b in ((first, second), (second, first)):
        reply = complete(model, pairwise_messages(question, a, b, rubric), params, settings)
        winners.append(None if reply.error else parse_winner(reply.text))
    return PairVerdict(question, winners[0], winners[1], combine(winners[0], winners[1]))


def judge_pairs(
    settings: Settings,
    model: str,
    pairs: Sequence[tuple[str, str, str]],
    rubric: str = "",
    max_tokens: int = 64,
) -> PairwiseReport:
    """Judge (question, first, second) pairs in both orders."""
    report = PairwiseReport(model)
    for question, first, second in pairs:
        report.pairs.append(
            judge_pair(settings, model, question, first, second, rubric, max_tokens)
        )
    return report


def pairs_from_reports(current: Any, baseline: Any) -> list[tuple[str, str, str]]:
    """(question, current answer, baseline answer) for the cells both batches answered.

    Configurations pair by label (by position when the batches have the same shape, as in
    `eval compare`), cells by dataset row and repeat; errored cells are left out.
    """
    now, before = current.frame(), baseline.frame()
    if not len(now) or not len(before):
        return []
    base_by_label = {c.label: i for i, c in enumerate(baseline.plan.configs)}
    same_shape = len(baseline.plan.configs) == len(current.plan.configs)
    pairs = []
    for index, config in enumerate(current.plan.configs):
        base_index = base_by_label.get(config.label, index if same_shape else None)
        if base_index is None:
            continue
        a = now[(now["config_index"] == index) & now["error"].isna()]
        b = before[(before["config_index"] == base_index) & before["error"].isna()]
        joined = a.merge(b, on=["row", "repeat"], suffixes=("_now", "_before"))
        for _, cell in joined.iterrows():
            variables = cell["variables_now"] or {}
            question = str(variables.get("question") or next(iter(variables.values()), ""))
            pairs.append((question, str(cell["answer_now"]), str(cell["answer_before"])))
    return pairs
