"""`playground runs`: list, show and export stored runs with their ratings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from playground.cli.common import PlaygroundGroup, echo_json, output_file, settings, write_output
from playground.history import HistoryFilters, RatingSummary, excerpt, to_csv, to_json
from playground.records import Run
from playground.store import Store, open_store


@click.group(cls=PlaygroundGroup)
def runs() -> None:
    """List, show and export stored runs with their ratings."""


def _store() -> Store:
    return open_store(settings())


def _run_json(run: Run, store: Store) -> dict[str, Any]:
    ids = [r.id for r in run.results]
    rows = store.ratings.ratings_of(ids)
    summaries = store.ratings.rating_summaries(ids)
    answers = []
    for result in run.results:
        summary = summaries.get(result.id, RatingSummary())
        answers.append(
            {
                **result.to_json(),
                "ratings": rows.get(result.id, []),
                "rating": {"mean": summary.mean, "count": summary.count},
            }
        )
    return {
        "id": run.id,
        "created_at": run.created_at.isoformat(),
        "source": run.source,
        "variables": run.variables,
        "retrieval": run.retrieval.to_dict() if run.retrieval else None,
        "flow": {"name": run.flow_name, "version": run.flow_version} if run.flow_name else None,
        "parent_run_id": run.parent_run_id,
        "follow_ups": store.runs.follow_ups(run.id),
        "results": answers,
    }


def _echo_run(run: Run, summaries: dict[str, RatingSummary]) -> None:
    click.echo(f"{run.id}  {run.created_at:%Y-%m-%d %H:%M}  {run.source}")
    for result in run.results:
        rating = summaries.get(result.id, RatingSummary()).label()
        body = f"error: {result.error}" if result.error else excerpt(result.text, 60)
        click.echo(f"  {result.model_id}  {result.config_hash}  {rating}  {body}")


def _filters_text(search: str, model_id: str | None) -> str:
    parts = [f"--search {json.dumps(search, ensure_ascii=False)}"] if search else []
    return " and ".join(parts + ([f"--model {model_id}"] if model_id else []))


@runs.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many runs, newest first.")  # fmt: skip
@click.option("--model", "model_id", default=None, help="Only runs that used this model id.")
@click.option("--search", default="", help="Only runs whose prompt or answers contain this.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def list_runs(limit: int, model_id: str | None, search: str, as_json: bool) -> None:
    """Stored runs newest first, each with its results, ratings and configuration hash."""
    store = _store()
    page = store.history.history_page(HistoryFilters(text=search, model_id=model_id), 1, limit)
    if as_json:
        echo_json([_run_json(run, store) for run in page.runs])
        return
    if not page.runs:
        stored = store.runs.count_runs() if search or model_id else 0
        if stored:  # runs exist, the filters left none: say so, not "no runs yet"
            click.echo(
                f"No run matches {_filters_text(search, model_id)} "
                f"({stored} run{'s' if stored != 1 else ''} stored); try other filters."
            )
        else:
            click.echo("No runs stored yet; try `playground run --model ID --prompt TEXT`.")
        return
    for run in page.runs:
        _echo_run(run, page.ratings)
    if page.more or page.total > len(page.runs):
        of = f"{page.total}+" if page.more else str(page.total)
        click.echo(f"({len(page.runs)} of {of} runs; use --limit to see more)")


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def show_run(run_id: str, as_json: bool) -> None:
    """One run with its results and ratings (RUN_ID may be any unique prefix of the id)."""
    store = _store()
    run = store.runs.get_run(store.runs.resolve_id(run_id))
    if as_json:
        echo_json(_run_json(run, store))
        return
    _echo_run(run, store.ratings.rating_summaries([r.id for r in run.results]))


@runs.command("continue")
@click.argument("run_id")
@click.argument("message")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def continue_run(run_id: str, message: str, as_json: bool) -> None:
    """Send a follow-up MESSAGE that every answer of RUN_ID answers in its own thread.

    Each model gets its own earlier answers as history; the new turn is saved as a run that
    follows up RUN_ID (continue it in turn with the id it prints).
    """
    from playground.cli.core import execute_and_print
    from playground.conversation import plan_follow_up

    store = _store()
    previous = store.runs.get_run(store.runs.resolve_id(run_id))
    execute_and_print(settings(), plan_follow_up(previous, message, source="cli"), as_json)


@runs.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), required=True,
              help="Output format.")  # fmt: skip
@click.option("--what", type=click.Choice(["answers", "ratings", "preferences"]),
              default="answers", show_default=True,
              help="Answers (one row each, with stars), every rating, or every vote.")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of stdout.")  # fmt: skip
def export_runs(fmt: str, what: str, out: Path | None) -> None:
    """Export stored answers, ratings or pairwise votes as CSV or JSON."""
    out = output_file(out, "--out")  # before reading the store: a typo fails at once
    store = _store()
    if what == "answers":
        rows = store.exports.export_results()
    elif what == "ratings":
        rows = store.exports.export_ratings()
    else:
        rows = store.exports.export_preferences()
    text = to_csv(rows) if fmt == "csv" else to_json(rows) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    write_output(out, text, "--out")
    click.echo(f"Wrote {len(rows)} {what} to {out}.", err=True)
