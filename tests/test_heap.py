"""Freezing what a batch of imports left alive, so full collections stay short."""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Iterator

import pytest

from playground import heap


@pytest.fixture
def fresh_heap_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This test's own freeze count and module mark; the process heap unfrozen after."""
    monkeypatch.setattr(heap, "_frozen_at", len(sys.modules))
    monkeypatch.setattr(heap, "_freezes", 0)
    yield
    gc.unfreeze()


def _import_modules(count: int, monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    for i in range(count):
        monkeypatch.setitem(sys.modules, f"{prefix}{i}", types.ModuleType(f"{prefix}{i}"))


def test_a_library_import_freezes_what_is_alive_and_a_collection_then_skips_it(
    fresh_heap_state: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not heap.freeze_after_imports()  # nothing imported since the mark
    kept = [[object()] for _ in range(10_000)]  # like a library's functions and classes
    _import_modules(heap.NEW_MODULES, monkeypatch, "fake_library_")
    assert heap.freeze_after_imports()
    assert gc.get_freeze_count() >= len(kept)  # out of the collector's walk
    assert not heap.freeze_after_imports()  # no new import: no second freeze


def test_small_imports_do_not_freeze_and_freezes_stop_at_the_limit(
    fresh_heap_state: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _import_modules(heap.NEW_MODULES - 1, monkeypatch, "fake_helper_")
    assert not heap.freeze_after_imports()
    for n in range(heap.MAX_FREEZES):
        _import_modules(heap.NEW_MODULES, monkeypatch, f"fake_lib{n}_")
        assert heap.freeze_after_imports()
    _import_modules(heap.NEW_MODULES, monkeypatch, "fake_one_more_")
    assert not heap.freeze_after_imports()  # a process importing on and on stops freezing
