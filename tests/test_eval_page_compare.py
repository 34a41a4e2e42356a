"""Compare ranks configurations by human ratings and by batch pass rate side by side (AppTest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from playground.config import load_settings
from playground.eval.batch import BatchPlan, BatchRunner, configs_from_variants
from playground.eval.datasets import Datasets
from playground.eval.spec import EvaluationSpec
from playground.models.base import ModelParams
from playground.records import PromptVariant
from playground.store import open_store
from tests.eval_support import EvalStub, stub_config

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "views" / "compare.py")
SAMPLE = ROOT / "sample_data" / "eval" / "gear-questions.jsonl"
MODEL = "stub/stub-model"


def run_batch(settings: Any) -> str:
    """Two variants over the sample: 'precise' always passes, 'vague' never does."""
    variants = [
        PromptVariant("precise", "Be precise.", "{{ question }}"),
        PromptVariant("vague", "Be vague.", "{{ question }}"),
    ]
    params = {MODEL: ModelParams(temperature=0.0, max_tokens=16, seed=1)}
    plan = BatchPlan(
        name="compare",
        dataset=Datasets(settings).import_file(SAMPLE),
        configs=configs_from_variants(variants, [MODEL], params),
        evaluation=EvaluationSpec.model_validate(
            {"dataset": "x", "scorers": [{"type": "contains", "value": "exact"}]}
        ),
    )
    assert BatchRunner(settings, plan, concurrency=4).run() == "done"
    return plan.batch_id


def test_leaderboard_shows_ratings_and_batch_scores_side_by_side(
    home: Path, write_config: Any
) -> None:
    with EvalStub(answers={"Be precise": "The exact answer."}) as stub:
        write_config(stub_config(stub.base_url))
        settings = load_settings()
        batch_id = run_batch(settings)
    store = open_store(settings)
    # people liked one vague answer: by stars the vague variant leads, by the batch it is last
    vague = next(c for c in store.batches.cells(batch_id) if c.config_index == 1)
    store.ratings.add_rating(vague.result_id, 5, session_id="s")

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    columns = list(table.columns)
    assert columns.index("batch rank") == columns.index("ratings") + 1
    by_variant = {
        ("precise" if "precise" in name or "Be precise" in name else "vague"): i
        for i, name in enumerate(table["configuration"])
    }
    precise, vague_row = table.iloc[by_variant["precise"]], table.iloc[by_variant["vague"]]
    assert vague_row["rank"] == 1 and vague_row["ratings"] == 1
    assert precise["batch rank"] == "#1" and vague_row["batch rank"] == "#2"
    assert precise["batch pass rate"] == "100% (82%-100%, n=18)"
    assert vague_row["batch pass rate"].startswith("0% (0%-18%, n=18)")
    assert precise["batch cells"] == 18
