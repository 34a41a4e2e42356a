"""Every `playground` command has help text and a line in the README."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from playground.cli import main

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def commands(group: click.Group, prefix: str = "playground") -> list[tuple[str, click.Command]]:
    """Every leaf command under the group, with its full name."""
    found: list[tuple[str, click.Command]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # commands load lazily: ask the group, as help does
        command = group.get_command(ctx, name)
        assert command is not None, f"{prefix} {name} does not load"
        full = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found += commands(command, full)
        else:
            found.append((full, command))
    return found


@pytest.mark.parametrize(("name", "command"), commands(main), ids=lambda v: str(v))
def test_command_has_help_and_a_readme_entry(name: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"{name} has no help text"
    assert f"`{name}" in README, f"{name} is missing from README.md's command table"


def test_readme_quickstart_has_exactly_two_commands() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line for line in quickstart.splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == 2
    assert "make app" in lines[0] and "make test" in lines[1]
