"""Keep Python's full garbage collections short in a long-lived app process.

A full (oldest-generation) collection walks every tracked object; with the openai SDK,
pydantic, SQLAlchemy and Streamlit loaded that is 0.10-0.15 s holding the GIL, and on the
Playground it fell inside the second in which 48 answers arrive and their grid is drawn
(bench/README.md, fan-out). Objects that are alive once a batch of imports is done are
mostly modules, classes and functions that live as long as the process: moved out of the
collector's sight with gc.freeze(), a full collection walks only what came after them.
"""

from __future__ import annotations

import gc
import sys
import threading

# Freeze again only after an import of at least this many modules (a library, not a helper),
# and at most this many times: what is alive at a freeze is never collected as a cycle, so a
# process that imports on and on (a test suite) must not freeze everything it ever held.
NEW_MODULES = 50
MAX_FREEZES = 4

_lock = threading.Lock()
_frozen_at = 0  # len(sys.modules) at the last freeze
_freezes = 0


def freeze_after_imports() -> bool:
    """Freeze what is alive if a library was imported since the last freeze; True if it did."""
    global _frozen_at, _freezes
    modules = len(sys.modules)
    if modules - _frozen_at < NEW_MODULES or _freezes >= MAX_FREEZES:
        return False
    with _lock:
        if modules - _frozen_at < NEW_MODULES or _freezes >= MAX_FREEZES:
            return False
        gc.collect()  # garbage is collected first, so only live objects are frozen
        gc.freeze()
        _frozen_at, _freezes = len(sys.modules), _freezes + 1
    return True
