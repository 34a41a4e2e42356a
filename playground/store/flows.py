"""The SQL index of flow versions and labels (filled in by the flows issue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine


class FlowIndexMixin:
    """Flow index queries of the Store."""

    engine: Engine
