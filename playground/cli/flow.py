"""`playground flow`: validate, run, export, save, list, label and diff flow specs.

Every command that takes a spec takes a file path or a registry reference:
`name` (newest), `name@3`, `name@latest` or `name@production`.
"""

from __future__ import annotations

from pathlib import Path

import click

from playground.cli.common import (
    LazyGroup,
    echo_format_check,
    echo_json,
    open_store_once_sent,
    parse_pairs,
    sends_first,
    settings,
    start_remote_early,
)
from playground.flows.loader import dump_spec, read_spec_file
from playground.flows.registry import FlowRegistry
from playground.flows.run import Flow, run_and_record
from playground.flows.spec import FlowSpec

SPEC_ARG = "PATH|REF"
# playground.flows.exporters.FORMATS, spelled out: importing the exporters (and their sandbox)
# for --help or `flow run` cost more than the request itself (tests keep the two equal).
EXPORT_FORMATS = ("promptflow", "prompty", "python")


def _registry() -> FlowRegistry:
    return FlowRegistry(settings())


def _load(path_or_ref: str) -> tuple[FlowSpec, str]:
    return _registry().resolve(path_or_ref)


@click.group(
    cls=LazyGroup,
    lazy_commands={
        "serve": "playground.cli.serve:serve_flow",
        "build": "playground.cli.serve:build_flow",
        "test": "playground.cli.eval:flow_test",
    },
)
def flow() -> None:
    """Versioned flow specs: validate, run headless, export, save, label and diff."""


@flow.command()
@click.argument("spec_ref", metavar=SPEC_ARG)
def validate(spec_ref: str) -> None:
    """Check a flow spec: schema, fields, templates and sandbox; exit 1 naming the problem."""
    spec, source = _load(spec_ref)
    Flow(spec, settings(), source).check()
    inputs = len(spec.inputs)
    click.echo(
        f"ok: {source} is a valid {spec.name} spec ({spec.model.id}, "
        f"{inputs} input{'s' if inputs != 1 else ''})"
    )


@sends_first
@flow.command("run")
@click.argument("spec_ref", metavar=SPEC_ARG)
@click.option("--input", "input_pairs", multiple=True, help="Input k=v; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--no-save", is_flag=True, help="Do not record the run in the run store.")
def run_flow(spec_ref: str, input_pairs: tuple[str, ...], as_json: bool, no_save: bool) -> None:
    """Run a flow headless with its inputs (defaults fill the rest) and save the run."""
    inputs = parse_pairs(input_pairs, "--input")
    start_remote_early(())
    spec, source = _load(spec_ref)
    the_flow = Flow(spec, settings(), source)
    the_flow.check()
    if not no_save:  # only a successful run is saved: import the store, create nothing yet
        open_store_once_sent(the_flow.settings, create=False)
    the_run = run_and_record(the_flow, inputs, source="flow", save=False)
    result = the_run.results[0]
    if result.error is None and not no_save:
        from playground.store import open_store

        open_store(the_flow.settings).runs.save_run(the_run)
    if as_json:
        echo_json({**result.to_json(), "flow": spec.ref, "run_id": the_run.id})
    elif result.error is None:
        click.echo(result.text)
        echo_format_check(result)
    if result.error is not None:
        raise click.ClickException(result.error)


@flow.command()
@click.argument("spec_ref", metavar=SPEC_ARG)
@click.option(
    "--format", "fmt", type=click.Choice(EXPORT_FORMATS), required=True, help="Export format."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the export into (created if needed).",
)
def export(spec_ref: str, fmt: str, out_dir: Path) -> None:
    """Export a flow for PromptFlow (DAG flow), Prompty, or as a standalone openai script."""
    spec, source = _load(spec_ref)
    Flow(spec, settings(), source).check()
    from playground.flows.exporters import export_flow

    for path in export_flow(spec, fmt, out_dir, settings()):
        click.echo(str(path))


@flow.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Save under this flow name instead of the file's.")
def save(path: Path, name: str | None) -> None:
    """Import a spec file as a new flow or the next version of its name."""
    spec = read_spec_file(path)
    registry = _registry()
    Flow(spec, registry.settings, str(path)).check()
    saved = registry.import_spec(spec, name)
    parent = f" (parent v{saved.parent})" if saved.parent else ""
    click.echo(f"saved {saved.name} v{saved.version}{parent}")


@flow.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def list_flows(as_json: bool) -> None:
    """List saved flows with their versions and labels."""
    summaries = _registry().list()
    if as_json:
        echo_json(
            [
                {
                    "name": s.name,
                    "latest": s.latest,
                    "labels": s.labels,
                    "versions": [
                        {
                            "version": v.version,
                            "parent": v.parent,
                            "created_at": v.created_at.isoformat(),
                            "model": v.model_id,
                            "description": v.description,
                        }
                        for v in s.versions
                    ],
                }
                for s in summaries
            ]
        )
        return
    if not summaries:
        click.echo("No saved flows yet; save one with `playground flow save FILE`.")
        return
    for s in summaries:
        labels = ", ".join(f"{k}=v{v}" for k, v in s.labels.items())
        latest = s.versions[-1]
        click.echo(
            f"{s.name}  v{s.latest}  ({len(s.versions)} version"
            f"{'s' if len(s.versions) != 1 else ''})  {latest.model_id}"
            + (f"  [{labels}]" if labels else "")
        )


@flow.command()
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.argument("label")
def label(name: str, version: int, label: str) -> None:
    """Point LABEL (e.g. production) at VERSION of flow NAME; every move is kept."""
    previous = _registry().set_label(name, label, version)
    moved = f" (was v{previous})" if previous is not None else ""
    click.echo(f"{name}@{label} -> v{version}{moved}")


@flow.command()
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
def diff(a: str, b: str) -> None:
    """Show what changed from spec A to spec B: a summary line, then a unified YAML diff."""
    spec_a, source_a = _load(a)
    spec_b, source_b = _load(b)
    from playground.flows.diff import diff_specs

    result = diff_specs(spec_a, spec_b, source_a, source_b)
    click.echo(result.summary)
    if result.unified:
        click.echo(result.unified, nl=False)


@flow.command()
@click.argument("spec_ref", metavar=SPEC_ARG)
def show(spec_ref: str) -> None:
    """Print a flow spec's YAML."""
    spec, _ = _load(spec_ref)
    click.echo(dump_spec(spec), nl=False)
