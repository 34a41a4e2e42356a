"""'Save as flow' from a batch: one configuration as a flow spec, its evaluation block and figures.

The saved version carries the batch's evaluation block (dataset pinned to NAME@VERSION, so
`playground flow test` reruns exactly those rows) and, under `evidence.batch`, the figures it
earned there: pass rate with its interval, counts, per-scorer rates, cost and latency.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from playground.config import Settings
from playground.errors import PlaygroundError, SpecError
from playground.eval.results import BatchReport
from playground.flows.loader import validation_message
from playground.flows.registry import FlowRegistry
from playground.flows.spec import Evidence, FlowSpec
from playground.records import Run

MAX_EVIDENCE_RUNS = 50  # the spec names a sample of the runs; evidence.batch.id finds the rest


def batch_evidence(report: BatchReport, config_index: int) -> dict[str, Any]:
    """The `evidence.batch` figures of one configuration in a batch."""
    summary = report.configs[config_index]
    return {
        "id": report.record.id,
        "dataset": report.record.dataset,
        "cells": summary.cells,
        "passed": summary.passed,
        "failed": summary.failed,
        "unmeasured": summary.unmeasured,
        "errors": summary.errors,
        "pass_rate": summary.pass_rate,
        "ci95": [summary.ci_low, summary.ci_high],
        "gate_pass_rate": summary.gate_pass_rate,
        "gate_passed": summary.gate_passed,
        "scorers": summary.scorers,
        "cost_usd": summary.cost_usd,
        "latency_p50_ms": summary.latency_p50_ms,
        "latency_p95_ms": summary.latency_p95_ms,
    }


def spec_from_batch(
    settings: Settings,
    report: BatchReport,
    config_index: int,
    name: str,
    description: str = "",
    registry: FlowRegistry | None = None,
) -> FlowSpec:
    """The flow spec of one batch configuration with its evaluation block and batch evidence.

    A configuration that came from a saved flow starts from that flow version (its inputs and
    messages as written); one from the Playground is captured like a Playground answer.
    """
    from playground.flows.capture import spec_from_result

    if not 0 <= config_index < len(report.plan.configs):
        raise PlaygroundError(
            f"Batch {report.record.id[:8]} has no configuration {config_index + 1}; "
            f"it has {len(report.plan.configs)}."
        )
    config = report.plan.configs[config_index]
    cells = [c for c in report.cells if c.config_index == config_index]
    runs = [c.run_id for c in cells][:MAX_EVIDENCE_RUNS]
    evaluation = report.plan.evaluation.model_copy(update={"dataset": report.record.dataset})
    evidence = Evidence(runs=runs)
    extra = {"batch": batch_evidence(report, config_index)}
    if config.flow_name is not None and config.flow_version is not None:
        registry = registry or FlowRegistry(settings)
        base = registry.get(config.flow_name, config.flow_version)
        data = base.to_data()
        data.update(name=name, description=description or base.description)
        for key in ("version", "parent", "created_at"):
            data.pop(key, None)
        data["evidence"] = {**evidence.model_dump(mode="json", exclude_none=True), **extra}
        data["evaluation"] = evaluation.model_dump(mode="json", by_alias=True, exclude_none=True)
        try:
            return FlowSpec.model_validate(data)
        except ValidationError as exc:  # a bad new name, in the loader's words
            raise SpecError(validation_message(exc)) from None
    answered = next((c.result for c in cells if c.result is not None), None)
    if answered is None:
        raise PlaygroundError(
            f"{config.label} has no finished cell in batch {report.record.id[:8]}; "
            "run or resume the batch first."
        )
    # the flow's defaults are the configuration's, not the first dataset row's
    run = Run(variables=dict(config.defaults), retrieval=config.retrieval)
    evidence_data = {**evidence.model_dump(mode="json", exclude_none=True), **extra}
    spec = spec_from_result(answered, run, name, description, settings, evidence_data)
    return spec.model_copy(update={"evaluation": evaluation})


def save_batch_as_flow(
    settings: Settings,
    report: BatchReport,
    config_index: int,
    name: str,
    description: str = "",
    registry: FlowRegistry | None = None,
) -> FlowSpec:
    """Save one batch configuration as the next version of flow `name`; returns it saved."""
    registry = registry or FlowRegistry(settings)
    spec = spec_from_batch(settings, report, config_index, name, description, registry)
    return registry.save(spec)
