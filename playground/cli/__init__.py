"""The `playground` command line: parse, call the library, print.

Commands are imported when they run (see LazyGroup): `playground run` must send its request
before the store, flows or evaluation code are even imported.
"""

from __future__ import annotations

import click

from playground.cli.common import LazyGroup

COMMANDS = {
    "app": "playground.cli.core:app",
    "models": "playground.cli.core:models",
    "run": "playground.cli.core:run",
    "serve-model": "playground.cli.core:serve_model",
    "rag": "playground.cli.rag:rag",
    "flow": "playground.cli.flow:flow",
    "runs": "playground.cli.runs:runs",
    "db": "playground.cli.db:db",
    "eval": "playground.cli.eval:eval_group",
    "monitor": "playground.cli.serve:monitor",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="prompt-playground")
def main() -> None:
    """Prompt Playground: try prompts across models, attach knowledge, rate, export flows."""
