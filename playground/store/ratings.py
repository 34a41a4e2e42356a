"""Ratings, pairwise preferences and history queries (filled in by the ratings issue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine


class RatingsMixin:
    """Rating and history queries of the Store."""

    engine: Engine
