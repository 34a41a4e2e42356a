"""Stored runs built directly (no model needed), for history, rating and compare tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playground.models.base import Message, ModelParams, Usage
from playground.records import Result, RetrievalSettings, Run
from playground.store import Store

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def make_result(
    model_id: str = "local/smollm2-135m-instruct",
    text: str = "The trail tent is waterproof to 3000 mm.",
    prompt: str = "Is the trail tent waterproof?",
    temperature: float = 0.7,
    system: str = "",
    variant: str = "default",
    error: str | None = None,
    latency_ms: float | None = 800.0,
    ttft_ms: float | None = 120.0,
    cost_usd: float = 0.0,
    groundedness: float | None = None,
    created_at: datetime = T0,
    retrieval: RetrievalSettings | None = None,
) -> Result:
    """One answer as the runner would have saved it."""
    return Result(
        model_id=model_id,
        messages=[Message(role="user", content=prompt)],
        params=ModelParams(temperature=temperature, max_tokens=128),
        variant_name=variant,
        system_template=system,
        user_template=prompt,
        text="" if error else text,
        error=error,
        usage=Usage(12, 20),
        ttft_ms=None if error else ttft_ms,
        latency_ms=None if error else latency_ms,
        tokens_per_s=None if error else 25.0,
        cost_usd=cost_usd,
        groundedness=groundedness,
        retrieval=retrieval,
        created_at=created_at,
    )


def make_run(
    models: tuple[str, ...] = ("local/smollm2-135m-instruct", "openai/gpt-4o-mini"),
    prompt: str = "Is the trail tent waterproof?",
    texts: tuple[str, ...] | None = None,
    temperature: float = 0.7,
    system: str = "",
    created_at: datetime = T0,
    source: str = "app",
    variables: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    retrieval: RetrievalSettings | None = None,
    session_id: str | None = None,
) -> Run:
    """A run with one answer per model."""
    texts = texts or tuple(f"Answer from {m}: yes, it is waterproof." for m in models)
    errors = errors or {}
    run = Run(
        source=source,
        variables=variables or {},
        retrieval=retrieval,
        created_at=created_at,
        session_id=session_id,
    )
    run.results = [
        make_result(
            model_id=m,
            text=t,
            prompt=prompt,
            temperature=temperature,
            system=system,
            error=errors.get(m),
            created_at=created_at,
            retrieval=retrieval,
        )
        for m, t in zip(models, texts, strict=True)
    ]
    return run


def seed_runs(store: Store, count: int, start: datetime = T0, **kwargs: object) -> list[Run]:
    """Save `count` runs one minute apart (oldest first) and return them."""
    saved = []
    for i in range(count):
        run = make_run(created_at=start + timedelta(minutes=i), **kwargs)  # type: ignore[arg-type]
        store.runs.save_run(run)
        saved.append(run)
    return saved
