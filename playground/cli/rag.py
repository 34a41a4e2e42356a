"""`playground rag` commands."""

from __future__ import annotations

import click

from playground.cli.common import PlaygroundGroup


@click.group(cls=PlaygroundGroup)
def rag() -> None:
    """rag commands (not built yet)."""
