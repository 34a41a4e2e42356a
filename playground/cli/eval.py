"""`playground eval`: run, resume, show, compare and export batches; manage datasets; `flow test`.

Exit codes: 0 every configuration met its gate, 1 one did not (or cells are missing), 2 bad
usage or an empty dataset.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import click

from playground.cli.common import (
    PlaygroundGroup,
    echo_json,
    output_file,
    sends_first,
    settings,
    start_remote_early,
    stderr,
    write_output,
)
from playground.errors import PlaygroundError
from playground.eval.datasets import DatasetError, Datasets

EXIT_GATE_FAILED = 1
EXIT_USAGE = 2


def _usage_exit(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(EXIT_USAGE)


class _Progress:
    """A progress line on stderr: redrawn in place on a terminal, every ~10% otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.counts = {"pass": 0, "fail": 0, "unmeasured": 0, "error": 0}
        self.last_step = -1
        self.start = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, done: int, total: int, outcome: object) -> None:
        with self.lock:
            self.counts[getattr(outcome, "status", "error")] += 1
            if not self.enabled:
                return
            step = int(done * 10 / max(total, 1))
            if not self.tty and step == self.last_step and done != total:
                return
            self.last_step = step
            c = self.counts
            line = (
                f"[{done}/{total}] {done * 100 // max(total, 1)}% · pass {c['pass']} · fail "
                f"{c['fail']} · unmeasured {c['unmeasured']} · errors {c['error']} · "
                f"{time.monotonic() - self.start:.0f} s"
            )
            click.echo(("\r" + line) if self.tty else line, err=True, nl=not self.tty)
            if self.tty and done == total:
                click.echo("", err=True)


def _print_report(report: object, as_json: bool, comparison: list | None = None) -> None:
    from playground.eval.results import BatchReport

    assert isinstance(report, BatchReport)
    from playground.eval.results import calibrate_judges

    judges = calibrate_judges(settings(), report)
    if as_json:
        document = report.to_json()
        document["judges"] = [j.to_json() for j in judges]
        if comparison is not None:
            document["baseline"] = [c.to_json() for c in comparison]
        echo_json(document)
        return
    record = report.record
    click.echo(
        f"batch {record.id} · {record.name} · dataset {record.dataset} · "
        f"{record.done_cells}/{record.total_cells} cells · {record.status}"
    )
    for c in report.configs:
        rate = "n/a" if c.pass_rate is None else f"{c.pass_rate:.0%}"
        ci = f" (95% CI {c.ci_low:.0%}–{c.ci_high:.0%})" if c.ci_low is not None else ""
        gate = "gate met" if c.gate_passed else f"gate NOT met (needs {c.gate_pass_rate:.0%})"
        latency = (
            f" · p50 {c.latency_p50_ms:.0f} ms · p95 {c.latency_p95_ms:.0f} ms"
            if c.latency_p50_ms is not None
            else ""
        )
        click.echo(
            f"  {c.label}: {rate}{ci} · pass {c.passed} · fail {c.failed} · unmeasured "
            f"{c.unmeasured} · errors {c.errors} · ${c.cost_usd:.4f}{latency} · {gate}"
        )
        for name, figures in c.scorers.items():
            pr = figures["pass_rate"]
            mean = figures["mean"]
            click.echo(
                f"      {name}: pass {'n/a' if pr is None else f'{pr:.0%}'}"
                f" · mean {'n/a' if mean is None else f'{mean:.2f}'}"
            )
    for judge in judges:
        click.echo(f"  judge {judge.sentence()}")
    for comp in comparison or []:
        p = "n/a" if comp.p_value is None else f"{comp.p_value:.3f}"
        click.echo(
            f"  vs baseline {comp.label}: pass->fail rows {comp.pass_to_fail or '-'} · "
            f"fail->pass rows {comp.fail_to_pass or '-'} · McNemar p={p}"
            f"{' (significant)' if comp.significant else ''}"
        )


def _write_reports(report: object, junit: Path | None, html_path: Path | None) -> None:
    from playground.eval.export import to_html, to_junit

    if junit is not None:
        write_output(junit, to_junit(report), "--junit")  # type: ignore[arg-type]
    if html_path is not None:
        write_output(html_path, to_html(report), "--html")  # type: ignore[arg-type]


def _run_and_report(
    plan: object,
    concurrency: int,
    no_cache: bool,
    max_cost: float | None,
    baseline: str | None,
    junit: Path | None,
    html_path: Path | None,
    as_json: bool,
    resume: bool = False,
) -> None:
    from playground.eval.batch import BatchRunner, check_plan, estimate

    # a report folder that does not exist fails now, not after the whole batch has run
    output_file(junit, "--junit")
    output_file(html_path, "--html")
    config = settings()
    check_plan(config, plan)  # type: ignore[arg-type]
    show_progress = not as_json or sys.stderr.isatty()
    if not resume:
        figures = estimate(config, plan, concurrency)  # type: ignore[arg-type]
        if show_progress:
            stderr(f"estimate: {figures.sentence()}")
        if max_cost is not None and figures.cost_usd > max_cost:
            _usage_exit(
                f"The batch may cost up to ${figures.cost_usd:.4f}, over --max-cost "
                f"${max_cost:g}; lower max_tokens, use fewer rows, or raise --max-cost."
            )
    cancel = threading.Event()
    runner = BatchRunner(
        config,
        plan,  # type: ignore[arg-type]
        concurrency=concurrency,
        use_cache=not no_cache,
        max_cost=max_cost,
        on_progress=_Progress(show_progress),
        cancel=cancel,
        fresh=not resume,  # plan_from_paths gave it a new id
    )
    if show_progress:
        stderr(f"batch {plan.batch_id}")  # type: ignore[attr-defined]
    try:
        status = runner.run()
    except KeyboardInterrupt:
        cancel.set()
        raise
    from playground.eval.results import compare_reports, load_report

    report = load_report(config, plan.batch_id)  # type: ignore[attr-defined]
    comparison = None
    if baseline:
        comparison = compare_reports(report, load_report(config, baseline))
    _write_reports(report, junit, html_path)
    _print_report(report, as_json, comparison)
    if status == "stopped" and show_progress:
        stderr(f"stopped at the --max-cost cap; `playground eval resume {plan.batch_id}` goes on")
    if not report.gate_passed:
        raise SystemExit(EXIT_GATE_FAILED)


@click.group(cls=PlaygroundGroup, name="eval")
def eval_group() -> None:
    """Batch evaluation: datasets x configurations, automatic scorers, CI gates."""


_run_options = [
    click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True),
    click.option("--no-cache", is_flag=True, help="Call the models even for answers cached."),
    click.option("--max-cost", type=click.FloatRange(min=0), default=None, help="USD cap."),
    click.option("--baseline", default=None, help="Batch id to compare against."),
    click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None),
    click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path)),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON document."),
]


def _with_run_options(func: object) -> object:
    for option in reversed(_run_options):
        func = option(func)  # type: ignore[operator]
    return func


@sends_first
@eval_group.command("run")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--dataset", default=None, help="Dataset file or NAME[@VERSION] to use instead.")
@click.option("--model", "model_ids", multiple=True, help="Model id; several make a matrix.")
@click.option("--repeat", type=click.IntRange(1, 100), default=None, help="Runs per row.")
@_with_run_options  # type: ignore[misc]
def run_cmd(
    paths: tuple[str, ...],
    dataset: str | None,
    model_ids: tuple[str, ...],
    repeat: int | None,
    concurrency: int,
    no_cache: bool,
    max_cost: float | None,
    baseline: str | None,
    junit: Path | None,
    html_path: Path | None,
    as_json: bool,
) -> None:
    """Evaluate flow specs, name@label refs or eval files on their dataset."""
    start_remote_early(model_ids)
    from playground.eval.batch import plan_from_paths

    try:
        plan = plan_from_paths(settings(), paths, dataset, model_ids, repeat)
    except DatasetError as exc:
        _usage_exit(str(exc))
    plan.baseline = baseline
    try:
        _run_and_report(plan, concurrency, no_cache, max_cost, baseline, junit, html_path, as_json)
    except DatasetError as exc:
        _usage_exit(str(exc))


@eval_group.command("resume")
@click.argument("batch_id")
@click.option("--rerun-errors", is_flag=True, help="Also run again the cells whose call failed.")
@click.option(
    "--rerun-failed", is_flag=True, help="Also run again failed, unmeasured and errored cells."
)
@_with_run_options  # type: ignore[misc]
def resume_cmd(
    batch_id: str,
    rerun_errors: bool,
    rerun_failed: bool,
    concurrency: int,
    no_cache: bool,
    max_cost: float | None,
    baseline: str | None,
    junit: Path | None,
    html_path: Path | None,
    as_json: bool,
) -> None:
    """Run the cells of a batch that have not finished (after a crash, cancel or cost cap)."""
    from playground.eval.batch import BatchPlan
    from playground.store import open_store

    config = settings()
    batches = open_store(config).batches
    record = batches.get(batch_id)
    # the old runs stay in History; the batch forgets the cells so that they run again
    if rerun_failed:
        batches.delete_cells(record.id, {"error", "fail", "unmeasured"})
    elif rerun_errors:
        batches.delete_cells(record.id, {"error"})
    plan = BatchPlan.from_record(config, record)
    _run_and_report(
        plan,
        concurrency,
        no_cache,
        max_cost,
        baseline or plan.baseline,
        junit,
        html_path,
        as_json,
        resume=True,
    )


@eval_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def list_cmd(as_json: bool) -> None:
    """Batches, newest first."""
    from playground.store import open_store

    records = open_store(settings()).batches.list()
    if as_json:
        echo_json(
            [
                {
                    "batch_id": r.id,
                    "name": r.name,
                    "dataset": r.dataset,
                    "status": r.status,
                    "cells": r.total_cells,
                    "done": r.done_cells,
                    "created_at": r.created_at.isoformat(),
                }
                for r in records
            ]
        )
        return
    if not records:
        click.echo("No batches yet; run `playground eval run FLOW.yaml`.")
    for r in records:
        click.echo(
            f"{r.id[:12]}  {r.created_at:%Y-%m-%d %H:%M}  {r.name}  {r.dataset}  "
            f"{r.done_cells}/{r.total_cells}  {r.status}"
        )


@eval_group.command("show")
@click.argument("batch_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def show_cmd(batch_id: str, as_json: bool) -> None:
    """Figures of one batch; exit 1 when a gate is not met."""
    from playground.eval.results import load_report

    report = load_report(settings(), batch_id)
    _print_report(report, as_json)
    if not report.gate_passed:
        raise SystemExit(EXIT_GATE_FAILED)


@eval_group.command("compare")
@click.argument("batch_a")
@click.argument("baseline_b")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--judge",
    "judge_model",
    default=None,
    help="Also judge A's and B's answers pairwise with this model, both orders, "
    "and report its position bias.",
)
@click.option("--rubric", default="", help="What the pairwise judge should prefer.")
def compare_cmd(
    batch_a: str, baseline_b: str, as_json: bool, judge_model: str | None, rubric: str
) -> None:
    """Rows that went pass->fail and fail->pass from baseline B to A, with McNemar's test."""
    from playground.eval.results import compare_reports, load_report

    config = settings()
    current, baseline = load_report(config, batch_a), load_report(config, baseline_b)
    comparison = compare_reports(current, baseline)
    pairwise = None
    if judge_model is not None:
        from playground.eval.judge import judge_pairs, pairs_from_reports
        from playground.models.registry import get_model

        get_model(judge_model, config)  # an unknown judge fails before any call
        pairwise = judge_pairs(config, judge_model, pairs_from_reports(current, baseline), rubric)
    if as_json:
        rows = [c.to_json() for c in comparison]
        if pairwise is None:
            echo_json(rows)
        else:
            echo_json({"comparisons": rows, "pairwise": pairwise.to_json()})
        return
    if pairwise is not None:
        click.echo(f"pairwise (A first, B second): {pairwise.sentence()}")
    for comp in comparison:
        p = "n/a" if comp.p_value is None else f"{comp.p_value:.3f}"
        click.echo(
            f"{comp.label}: {comp.baseline_pass_rate} -> {comp.pass_rate} over {comp.paired} "
            f"rows · pass->fail {comp.pass_to_fail or '-'} · fail->pass "
            f"{comp.fail_to_pass or '-'} · McNemar p={p}"
            f"{' (significant)' if comp.significant else ''}"
        )


@eval_group.command("export")
@click.argument("batch_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "junit", "html", "promptfoo"]),
    required=True,
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def export_cmd(batch_id: str, fmt: str, out: Path | None) -> None:
    """Write a batch as CSV, JSONL, JUnit XML, HTML or a promptfooconfig.yaml."""
    from playground.eval.export import export_report
    from playground.eval.results import load_report

    out = output_file(out, "--out")
    config = settings()
    text = export_report(load_report(config, batch_id), fmt, config)
    if out is None:
        click.echo(text, nl=False)
    else:
        write_output(out, text, "--out")
        stderr(f"wrote {out}")


@eval_group.group("dataset", cls=PlaygroundGroup)
def dataset_group() -> None:
    """Evaluation datasets stored under the data home (NAME@VERSION by content hash)."""


@dataset_group.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="Dataset name (default: from the file name).")
@click.option("--encoding", default="utf-8", show_default=True)
def dataset_import(path: Path, name: str | None, encoding: str) -> None:
    """Store a CSV or JSONL file as a dataset version."""
    try:
        info = Datasets(settings()).import_file(path, name, encoding)
    except DatasetError as exc:
        _usage_exit(str(exc))
    click.echo(f"{info.ref}: {info.rows} rows, columns {', '.join(info.columns)}")


@dataset_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def dataset_list(as_json: bool) -> None:
    """Stored datasets and versions."""
    infos = Datasets(settings()).list()
    if as_json:
        echo_json([i.to_json() for i in infos])
        return
    for info in infos:
        click.echo(f"{info.ref}  {info.rows} rows  {', '.join(info.columns)}  {info.created_at}")


@dataset_group.command("preview")
@click.argument("ref")
@click.option("--rows", type=click.IntRange(1, 1000), default=10, show_default=True)
def dataset_preview(ref: str, rows: int) -> None:
    """The first rows of a dataset."""
    frame = Datasets(settings()).preview(ref, rows)
    click.echo(frame.to_string(index=False, max_colwidth=60))


@dataset_group.command("delete")
@click.argument("ref")
def dataset_delete(ref: str) -> None:
    """Delete NAME (every version) or NAME@VERSION."""
    count = Datasets(settings()).delete(ref)
    click.echo(f"deleted {count} version{'s' if count != 1 else ''} of {ref}")


@sends_first
@click.command("test")
@click.argument("spec_ref", metavar="NAME@LABEL|PATH")
@click.option("--model", "model_ids", multiple=True, help="Model id; several make a matrix.")
@_with_run_options  # type: ignore[misc]
def flow_test(
    spec_ref: str,
    model_ids: tuple[str, ...],
    concurrency: int,
    no_cache: bool,
    max_cost: float | None,
    baseline: str | None,
    junit: Path | None,
    html_path: Path | None,
    as_json: bool,
) -> None:
    """Run a flow's own evaluation block: the CI gate (exit 0 met, 1 not met)."""
    start_remote_early(model_ids)
    from playground.eval.batch import plan_from_paths

    try:
        plan = plan_from_paths(settings(), [spec_ref], None, model_ids)
        _run_and_report(plan, concurrency, no_cache, max_cost, baseline, junit, html_path, as_json)
    except DatasetError as exc:
        _usage_exit(str(exc))


__all__ = ["PlaygroundError", "eval_group", "flow_test"]
