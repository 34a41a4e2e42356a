"""Batch charts: the variants x models heatmap, quality vs cost / latency with the Pareto front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playground.config import load_settings
from playground.eval import charts
from playground.eval.batch import BatchPlan, BatchRunner, configs_from_variants
from playground.eval.datasets import Datasets
from playground.eval.results import load_report
from playground.eval.spec import EvaluationSpec
from playground.models.base import ModelParams
from playground.records import PromptVariant
from tests.eval_support import EvalStub, stub_config

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "eval" / "gear-questions.jsonl"


def test_pareto_front_keeps_only_undominated_points() -> None:
    # (cost, quality): the cheap good one and the dear best one stay; the dear bad one goes
    points = [(0.0, 0.6), (1.0, 0.9), (2.0, 0.5), (0.0, 0.6)]
    assert charts.pareto_front(points) == [True, True, False, True]


def test_heatmap_and_pareto_charts_of_two_variants_on_two_models(
    home: Path, write_config: Any
) -> None:
    with EvalStub(answers={"Be precise": "The exact answer."}) as stub:
        write_config(stub_config(stub.base_url) + stub_config(stub.base_url, name="other"))
        settings = load_settings()
        models = ["stub/stub-model", "other/stub-model"]
        variants = [
            PromptVariant("precise", "Be precise.", "{{ question }}"),
            PromptVariant("vague", "Be vague.", "{{ question }}"),
        ]
        params = {m: ModelParams(temperature=0.0, max_tokens=16, seed=1) for m in models}
        plan = BatchPlan(
            name="charts",
            dataset=Datasets(settings).import_file(SAMPLE),
            configs=configs_from_variants(variants, models, params),
            evaluation=EvaluationSpec.model_validate(
                {"dataset": "x", "scorers": [{"type": "contains", "value": "exact"}]}
            ),
        )
        BatchRunner(settings, plan, concurrency=4).run()
    report = load_report(settings, plan.batch_id)

    heat = charts.heatmap_figure(report).data[0]
    assert list(heat.y) == ["precise", "vague"] and sorted(heat.x) == sorted(models)
    assert [list(row) for row in heat.z] == [[1.0, 1.0], [0.0, 0.0]]

    cost = charts.quality_cost_figure(report)
    front = {t.name: sorted(t.hovertext) for t in cost.data}
    assert "cost" in cost.layout.title.text
    # every configuration is free: the two that always pass dominate the two that never do
    assert front["True"] == ["precise · other/stub-model", "precise · stub/stub-model"]
    assert len(front["False"]) == 2

    latency = charts.quality_cost_figure(report, x="latency p50 ms")
    front = {t.name: sorted(t.hovertext) for t in latency.data}
    assert "latency" in latency.layout.title.text
    # the fastest configuration is on the front whatever its quality; so is the best one
    assert any("precise" in label for label in front["True"])
