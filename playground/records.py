"""Plain records of runs and results, shared by the runner, the store, the app and the CLI."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from playground.models.base import Message, ModelParams, Usage
from playground.models.response_format import FormatCheck, ResponseFormat, check_answer


def new_id() -> str:
    """A fresh 32-hex-digit id for runs and results."""
    return uuid.uuid4().hex


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


@dataclass
class RetrievalSettings:
    """How a run retrieves context from a knowledge store."""

    store: str
    top_k: int = 4
    query: str = "{{ question }}"
    context_variable: str = "context"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "store": self.store,
            "top_k": self.top_k,
            "query": self.query,
            "context_variable": self.context_variable,
        }


@dataclass(frozen=True)
class RetrievedChunk:
    """One chunk a run retrieved, as saved with the run: where it came from and its score."""

    id: str
    text: str = ""
    source: str = ""
    page: int | None = None  # text files have no pages
    score: float | None = None  # similarity to the query; None when not scored

    def to_json(self) -> dict[str, Any]:
        """The dict saved in a run's retrieval JSON (and printed by `rag query --json`)."""
        # Field order is the stored key order: rows written before this type stay byte-equal.
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RetrievedChunk:
        """A chunk from its saved dict; missing or mistyped keys read as empty."""
        page, score = data.get("page"), data.get("score")
        return cls(
            id="" if data.get("id") is None else str(data["id"]),
            text=str(data.get("text") or ""),
            source=str(data.get("source") or ""),
            page=page if isinstance(page, int) and not isinstance(page, bool) else None,
            score=(
                float(score)
                if isinstance(score, int | float) and not isinstance(score, bool)
                else None
            ),
        )


@dataclass(frozen=True)
class Moderation:
    """One answer's moderation verdict."""

    flagged: bool
    categories: list[str] = field(default_factory=list)
    model: str = ""

    def to_data(self) -> dict[str, Any]:
        """The verdict as a plain dict (the CLI's `moderation` field)."""
        return {"flagged": self.flagged, "categories": list(self.categories), "model": self.model}

    def to_json(self) -> str:
        """The JSON text the store keeps in the results' moderation column."""
        return json.dumps(self.to_data())

    @classmethod
    def from_json(cls, text: str) -> Moderation:
        """A verdict from its stored JSON; ValueError when it is not a JSON object."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a moderation verdict is a JSON object")
        return cls(
            flagged=bool(data.get("flagged")),
            categories=[str(c) for c in data.get("categories") or []],
            model=str(data.get("model") or ""),
        )

    @property
    def label(self) -> str:
        """'ok' or 'flagged: hate, violence'."""
        if not self.flagged:
            return "ok"
        return "flagged: " + ", ".join(self.categories or ["unspecified"])


@dataclass
class PromptVariant:
    """A named phrasing of the prompt: system and user templates plus an optional note."""

    name: str = "default"
    system: str = ""
    user: str = ""
    note: str = ""
    # Few-shot turns between the system and the user message: user, assistant, user, ...,
    # assistant (templates too); checked to alternate when rendered.
    examples: list[Message] = field(default_factory=list)


def config_hash(
    model_id: str,
    params: ModelParams,
    system_template: str,
    user_template: str,
    retrieval: RetrievalSettings | None = None,
    response_format: ResponseFormat | None = None,
    examples: list[Message] | None = None,
    history: list[Message] | None = None,
) -> str:
    """Stable id of a configuration: model + params + templates + retrieval + response format
    (+ few-shot examples and, for a follow-up turn, the conversation before it)."""
    payload: dict[str, Any] = {
        "model": model_id,
        "params": params.model_dump(mode="json"),
        "system": system_template,
        "user": user_template,
        "retrieval": retrieval.to_dict() if retrieval else None,
    }
    if response_format is not None and response_format.structured:
        # only when set: text configurations keep the hashes they were saved (and rated) under
        payload["response_format"] = response_format.to_data()
    # Like the response format, only when present: single-turn hashes stay as they were.
    if examples:
        payload["examples"] = [m.model_dump() for m in examples]
    if history:
        payload["history"] = [m.model_dump() for m in history]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class Result:
    """One model's answer to one prompt variant, with its measurements."""

    model_id: str
    messages: list[Message]
    params: ModelParams
    variant_name: str = "default"
    variant_note: str = ""
    system_template: str = ""
    user_template: str = ""
    text: str = ""
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    ttft_ms: float | None = None
    latency_ms: float | None = None
    tokens_per_s: float | None = None
    cost_usd: float = 0.0
    groundedness: float | None = None
    chunk_ids: list[str] | None = None
    moderation: Moderation | None = None  # the moderation endpoint's verdict, when checked
    retrieval: RetrievalSettings | None = None
    response_format: ResponseFormat | None = None  # None: plain text
    examples: list[Message] = field(default_factory=list)  # few-shot templates of the variant
    parent_id: str | None = None  # the answer this one follows up (same model, same variant)
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)

    @property
    def config_hash(self) -> str:
        """The hash of the configuration that produced this result."""
        return config_hash(
            self.model_id,
            self.params,
            self.system_template,
            self.user_template,
            self.retrieval,
            self.response_format,
            self.examples,
            self.history if self.parent_id else None,
        )

    @property
    def template_count(self) -> int:
        """How many of `messages` come from the variant's templates (the first turn)."""
        if not self.user_template.strip():
            return len(self.messages)
        return int(bool(self.system_template.strip())) + len(self.examples) + 1

    @property
    def history(self) -> list[Message]:
        """The earlier turns of a follow-up: what came after the templates, but the last message."""
        return list(self.messages[self.template_count : -1])

    @property
    def turn(self) -> int:
        """1 for a first answer, 2 for the answer to the first follow-up, and so on."""
        return 1 + max(0, len(self.messages) - self.template_count) // 2

    @property
    def format_check(self) -> FormatCheck | None:
        """Valid or invalid against the response format (None for text answers)."""
        return check_answer(self.text, self.response_format)

    @property
    def ok(self) -> bool:
        """True when the model answered without error."""
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON shape of a result (see DESIGN.md)."""
        return {
            "id": self.id,
            "model": self.model_id,
            "variant": self.variant_name,
            "text": self.text,
            "error": self.error,
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "estimated": self.usage.estimated,
            },
            "ttft_ms": self.ttft_ms,
            "latency_ms": self.latency_ms,
            "tokens_per_s": self.tokens_per_s,
            "cost_usd": self.cost_usd,
            "groundedness": self.groundedness,
            "chunk_ids": self.chunk_ids,
            "moderation": self.moderation.to_data() if self.moderation is not None else None,
            "config_hash": self.config_hash,
            "params": self.params.model_dump(mode="json"),
            "messages": [m.model_dump() for m in self.messages],
            "examples": [m.model_dump() for m in self.examples],
            "parent_id": self.parent_id,
            "turn": self.turn,
            "response_format": self.response_format.to_data() if self.response_format else None,
            "format_check": check.to_json() if (check := self.format_check) else None,
        }


@dataclass
class Run:
    """One click of Run: its inputs and one result per variant x model cell."""

    source: str = "app"
    variables: dict[str, str] = field(default_factory=dict)
    retrieval: RetrievalSettings | None = None
    retrieved: list[RetrievedChunk] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    batch_id: str | None = None
    batch_row: int | None = None
    flow_name: str | None = None
    flow_version: int | None = None
    session_id: str | None = None
    parent_run_id: str | None = None  # the run this one follows up (a conversation's last turn)
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)

    @property
    def follow_up(self) -> str | None:
        """The follow-up message this run answers (None for a conversation's first turn)."""
        if self.parent_run_id is None or not self.results:
            return None
        return self.results[0].messages[-1].content


@dataclass
class Draft:
    """Everything the Playground editor holds; other pages load runs and flows through it."""

    variants: list[PromptVariant] = field(default_factory=lambda: [PromptVariant()])
    model_ids: list[str] = field(default_factory=list)
    params: dict[str, ModelParams] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    retrieval: RetrievalSettings | None = None
    response_format: ResponseFormat | None = None
    note: str = ""  # e.g. "loaded from run abc" or "model X is no longer available"

    @classmethod
    def from_run(cls, run: Run) -> Draft:
        """The editor state that reproduces a stored run."""
        variants: list[PromptVariant] = []
        models: list[str] = []
        params: dict[str, ModelParams] = {}
        for result in run.results:
            if all(v.name != result.variant_name for v in variants):
                variants.append(
                    PromptVariant(
                        result.variant_name,
                        result.system_template,
                        result.user_template,
                        result.variant_note,
                        list(result.examples),
                    )
                )
            if result.model_id not in models:
                models.append(result.model_id)
                params[result.model_id] = result.params
        return cls(
            variants=variants or [PromptVariant()],
            model_ids=models,
            params=params,
            variables={k: str(v) for k, v in run.variables.items()},
            retrieval=run.retrieval,
            response_format=next((r.response_format for r in run.results), None),
            note=f"Loaded run {run.id[:8]} from {run.created_at:%Y-%m-%d %H:%M}."
            + (
                " It is a follow-up turn: the editor holds the conversation's first prompt."
                if run.parent_run_id
                else ""
            ),
        )
