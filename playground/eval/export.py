"""Batch exports: CSV and JSONL (pandas), JUnit XML, a standalone HTML report, promptfoo config."""

from __future__ import annotations

import html
import json
from typing import Any
from xml.etree import ElementTree as ET

from playground.eval.datasets import iter_rows
from playground.eval.results import BatchReport
from playground.eval.spec import (
    ContainsScorer,
    CostScorer,
    EqualsScorer,
    IsJsonScorer,
    JudgeScorer,
    LatencyScorer,
    RegexScorer,
    SimilarityScorer,
    StartsWithScorer,
)

FORMATS = ["csv", "jsonl", "junit", "html", "promptfoo"]


def _flat(report: BatchReport) -> Any:
    frame = report.frame()
    if len(frame):
        frame = frame.drop(columns=["verdicts"])
        frame["variables"] = frame["variables"].map(lambda v: json.dumps(v, ensure_ascii=False))
    return frame


def to_csv(report: BatchReport) -> str:
    """One line per cell, every scorer's status and score as columns."""
    return str(_flat(report).to_csv(index=False))


def to_jsonl(report: BatchReport) -> str:
    """One JSON object per cell, verdicts included."""
    frame = report.frame()
    if not len(frame):
        return ""
    return str(frame.to_json(orient="records", lines=True, force_ascii=False)) + "\n"


def _failure_text(verdicts: list[dict[str, Any]]) -> str:
    return "; ".join(f"{v['scorer']}: {v['reason']}" for v in verdicts if v["status"] != "pass")


def to_junit(report: BatchReport) -> str:
    """JUnit XML: one testsuite per configuration, one testcase per row (and repeat)."""
    suites = ET.Element("testsuites", name=f"playground eval {report.record.name}")
    for config in report.configs:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=config.label,
            tests=str(config.cells),
            failures=str(config.failed + config.unmeasured),
            errors=str(config.errors),
        )
        for row in config.rows:
            name = f"row {row['row'] + 1}" + (f" #{row['repeat'] + 1}" if row["repeat"] else "")
            question = next(iter(row["inputs"].values()), "") if row["inputs"] else ""
            case = ET.SubElement(
                suite,
                "testcase",
                classname=config.label,
                name=f"{name}: {str(question)[:80]}",
                time=f"{(row['latency_ms'] or 0) / 1000:.3f}",
            )
            if row["status"] == "error":
                ET.SubElement(case, "error", message=str(row["error"])[:500])
            elif row["status"] in {"fail", "unmeasured"}:
                text = _failure_text(row["verdicts"])
                failure = ET.SubElement(case, "failure", message=text[:500] or row["status"])
                failure.text = f"answer: {row['answer']}\n{text}"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode")


def to_html(report: BatchReport) -> str:
    """A self-contained HTML page: per-configuration figures, then every row."""
    import pandas as pd

    summary = pd.DataFrame(
        [
            {
                "configuration": c.label,
                "pass rate": c.pass_rate,
                "95% CI": f"{c.ci_low}–{c.ci_high}" if c.ci_low is not None else "",
                "passed": c.passed,
                "failed": c.failed,
                "unmeasured": c.unmeasured,
                "errors": c.errors,
                "gate": "met" if c.gate_passed else "NOT met",
                "cost USD": c.cost_usd,
                "p50 ms": c.latency_p50_ms,
                "p95 ms": c.latency_p95_ms,
            }
            for c in report.configs
        ]
    )
    frame = _flat(report)
    keep = [c for c in ("config", "row", "status", "answer", "error", "latency_ms") if c in frame]
    title = html.escape(f"Batch {report.record.name} ({report.record.id[:8]})")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}</style></head><body>"
        f"<h1>{title}</h1><p>Dataset {html.escape(report.record.dataset)} · "
        f"{report.record.done_cells}/{report.record.total_cells} cells · gate "
        f"{'met' if report.gate_passed else 'NOT met'}</p>"
        f"{summary.to_html(index=False)}<h2>Rows</h2>"
        f"{frame[keep].to_html(index=False) if len(frame) else '<p>No cells yet.</p>'}"
        "</body></html>\n"
    )


def _promptfoo_assert(scorer: Any) -> dict[str, Any] | None:
    if isinstance(scorer, ContainsScorer):
        values = [scorer.value] if isinstance(scorer.value, str) else scorer.value
        kind = {"any": "contains-any", "all": "contains-all"}[scorer.mode]
        if len(values) == 1:
            kind = "contains" if scorer.case_sensitive else "icontains"
            return {"type": kind, "value": values[0]}
        return {"type": ("i" if not scorer.case_sensitive else "") + kind, "value": values}
    if isinstance(scorer, EqualsScorer):
        return {"type": "equals", "value": scorer.value}
    if isinstance(scorer, StartsWithScorer):
        return {"type": "starts-with", "value": scorer.value}
    if isinstance(scorer, RegexScorer):
        return {"type": "regex", "value": scorer.pattern}
    if isinstance(scorer, IsJsonScorer):
        data: dict[str, Any] = {"type": "is-json"}
        if scorer.json_schema is not None:
            data["value"] = scorer.json_schema
        return data
    if isinstance(scorer, SimilarityScorer):
        return {"type": "similar", "value": scorer.reference, "threshold": scorer.threshold}
    if isinstance(scorer, LatencyScorer):
        return {"type": "latency", "threshold": scorer.max_ms}
    if isinstance(scorer, CostScorer):
        return {"type": "cost", "threshold": scorer.max_usd}
    if isinstance(scorer, JudgeScorer):
        return {"type": "llm-rubric", "value": scorer.rubric, "threshold": scorer.threshold}
    return None  # groundedness, number, custom: no promptfoo equivalent


def to_promptfoo(report: BatchReport, settings: Any) -> str:
    """A promptfooconfig.yaml that `promptfoo eval` runs: prompts, providers, tests, asserts."""
    from playground.flows.loader import dump_yaml
    from playground.models.providers import provider_for, split_model_id

    plan = report.plan
    prompts, providers = [], []
    for config in plan.configs:
        messages = []
        if config.system.strip():
            messages.append({"role": "system", "content": config.system})
        messages += config.examples  # few-shot turns, in order
        messages.append({"role": "user", "content": config.user})
        prompt = {"id": config.variant_name, "raw": json.dumps(messages), "label": config.label}
        if prompt["raw"] not in [p["raw"] for p in prompts]:
            prompts.append(prompt)
        provider, model = split_model_id(config.model_id)
        entry = provider_for(provider, settings).promptfoo_provider(model, settings)
        params = config.params
        entry.setdefault("config", {}).update(
            {"temperature": params.temperature, "max_tokens": params.max_tokens}
        )
        entry["label"] = config.model_id
        if entry not in providers:
            providers.append(entry)
    asserts = [a for a in (_promptfoo_assert(s) for s in plan.evaluation.scorers) if a]
    config0 = plan.configs[0]
    tests = []
    for row in iter_rows(plan.dataset):
        # every column: the asserts' templates use reference columns such as {{ expected }}
        columns = {
            k: v if isinstance(v, str) else json.dumps(v) for k, v in row.items() if v is not None
        }
        tests.append({"vars": {**columns, **config0.variables_for(row, plan.evaluation.columns)}})
    skipped = [s.label for s in plan.evaluation.scorers if _promptfoo_assert(s) is None]
    document: dict[str, Any] = {
        "description": f"Exported from playground batch {report.record.id[:8]} ({plan.name})",
        "prompts": prompts,
        "providers": providers,
        "defaultTest": {"assert": asserts},
        "tests": tests,
    }
    header = "# promptfoo eval -c promptfooconfig.yaml\n"
    if skipped:
        header += f"# not exported (no promptfoo equivalent): {', '.join(skipped)}\n"
    return header + dump_yaml(document)


def export_report(report: BatchReport, fmt: str, settings: Any) -> str:
    """The report in one of FORMATS."""
    if fmt == "csv":
        return to_csv(report)
    if fmt == "jsonl":
        return to_jsonl(report)
    if fmt == "junit":
        return to_junit(report)
    if fmt == "html":
        return to_html(report)
    return to_promptfoo(report, settings)
