"""The answer cache on both backends: many keys looked up in one query, measurements kept."""

from __future__ import annotations

from playground.models.base import ModelParams, Usage
from playground.records import Result
from playground.store import Store


def _answer(i: int) -> Result:
    return Result(
        model_id="stub/m1",
        messages=[],
        params=ModelParams(),
        text=f"answer {i}",
        usage=Usage(prompt_tokens=10 + i, completion_tokens=3),
        latency_ms=1000.0 + i,
        ttft_ms=200.0,
        cost_usd=0.001 * i,
    )


def test_cached_answers_finds_many_keys_at_once_and_leaves_out_the_missing(
    backend_store: Store,
) -> None:
    batches = backend_store.batches
    keys = [f"{i:064x}" for i in range(1200)]  # more than one query's worth of parameters
    for i in range(0, 1200, 7):
        batches.cache_answer(keys[i], _answer(i))
    found = batches.cached_answers(keys + keys[:14])  # duplicates asked twice come back once
    assert sorted(found) == [keys[i] for i in range(0, 1200, 7)]
    hit = found[keys[1197]]
    assert (hit.text, hit.prompt_tokens, hit.latency_ms) == ("answer 1197", 1207, 2197.0)
    assert batches.cached_answers([keys[1197]]) == {keys[1197]: hit}
    assert batches.cached_answers([keys[1]]) == {}  # never cached
