"""Reading a file someone named, bounded: a device or pipe (/dev/zero, a FIFO) may never end."""

from __future__ import annotations

from pathlib import Path


def read_bounded(path: Path, limit: int) -> bytes:
    """At most `limit + 1` bytes of `path`: enough to tell "over the limit" without reading on.

    The size on disk cannot be trusted for this (a device reports 0), so the read itself stops.
    """
    with path.open("rb") as file:
        return file.read(limit + 1)
