"""`playground runs` commands."""

from __future__ import annotations

import click

from playground.cli.common import PlaygroundGroup


@click.group(cls=PlaygroundGroup)
def runs() -> None:
    """runs commands (not built yet)."""
