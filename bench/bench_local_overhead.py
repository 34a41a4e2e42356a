"""Local provider overhead: tokens/s through the playground vs raw llama-cpp-python.

Same loaded GGUF, same prompt and settings, alternating repetitions in one process.
Goal: playground tokens/s / raw tokens/s >= 0.95. Run: python bench/bench_local_overhead.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playground.config import Settings  # noqa: E402
from playground.models.base import Message, ModelParams  # noqa: E402
from playground.models.local import DEFAULT_MODEL_ID, embedded_gguf_path, load_llama  # noqa: E402
from playground.runner import complete  # noqa: E402

REPEATS = 7
PARAMS = ModelParams(temperature=0.0, seed=7, max_tokens=128)
MESSAGES = [
    Message(role="system", content="You are a helpful assistant."),
    Message(role="user", content="Explain how a tent keeps rain out, step by step."),
]


def raw_tokens_per_s() -> float:
    """Raw llama-cpp-python streaming, timed the same way the runner times it."""
    llm, lock = load_llama(embedded_gguf_path())
    with lock:
        start = time.perf_counter()
        first = None
        count = 0
        for chunk in llm.create_chat_completion(
            messages=[m.model_dump() for m in MESSAGES],
            stream=True,
            temperature=PARAMS.temperature,
            top_p=PARAMS.top_p,
            max_tokens=PARAMS.max_tokens,
            seed=PARAMS.seed,
        ):
            if chunk["choices"][0]["delta"].get("content"):
                if first is None:
                    first = time.perf_counter()
                count += 1
        end = time.perf_counter()
    assert first is not None and start <= first
    return count / (end - first)


def playground_tokens_per_s(settings: Settings) -> float:
    """The playground's local model through runner.complete (MeasuredStream)."""
    result = complete(DEFAULT_MODEL_ID, MESSAGES, PARAMS, settings)
    assert result.ok and result.tokens_per_s, result.error
    return result.tokens_per_s


def main() -> None:
    """Print median tokens/s of both and their ratio."""
    settings = Settings()
    raw_tokens_per_s()  # warm up: load weights, fill caches
    playground_tokens_per_s(settings)
    raws, ours = [], []
    for _ in range(REPEATS):
        raws.append(raw_tokens_per_s())
        ours.append(playground_tokens_per_s(settings))
    raw, our = statistics.median(raws), statistics.median(ours)
    print(
        f"raw llama-cpp-python {raw:.1f} tok/s  playground {our:.1f} tok/s  "
        f"ratio {our / raw:.3f}  (goal >= 0.95, {REPEATS} alternating runs, medians)"
    )


if __name__ == "__main__":
    main()
