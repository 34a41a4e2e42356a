"""`playground flow` commands."""

from __future__ import annotations

import click

from playground.cli.common import PlaygroundGroup


@click.group(cls=PlaygroundGroup)
def flow() -> None:
    """flow commands (not built yet)."""
