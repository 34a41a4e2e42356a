"""The `playground` command line: parse, call the library, print."""

from __future__ import annotations

import click

from playground.cli.common import PlaygroundGroup
from playground.cli.core import register_core
from playground.cli.db import db
from playground.cli.eval import register_eval
from playground.cli.flow import flow
from playground.cli.rag import rag
from playground.cli.runs import runs
from playground.cli.serve import register_serve


@click.group(cls=PlaygroundGroup)
@click.version_option(package_name="prompt-playground")
def main() -> None:
    """Prompt Playground: try prompts across models, attach knowledge, rate, export flows."""


register_core(main)
main.add_command(rag)
main.add_command(flow)
main.add_command(runs)
main.add_command(db)
register_eval(main)
register_serve(main, flow)
