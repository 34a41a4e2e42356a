"""A flow's structured response format reaches its batch cells and their cache keys."""

from __future__ import annotations

import json
from pathlib import Path

from playground.config import load_settings
from playground.eval.batch import (
    BatchRunner,
    EvalConfig,
    cache_key,
    configs_from_flow,
    plan_from_paths,
)
from playground.eval.results import load_report
from playground.flows.loader import load_spec
from playground.models.local import DEFAULT_MODEL_ID
from playground.records import Result

FORMAT = (
    "  response_format:\n    type: json_schema\n    name: verdict\n"
    "    schema: {type: object, properties: {answer: {type: string}}, required: [answer]}\n"
)


def _flow(tmp_path: Path) -> Path:
    dataset = tmp_path / "rows.jsonl"
    dataset.write_text(json.dumps({"question": "Is the tent waterproof?"}) + "\n")
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "schema: playground.flow/v1\nname: json-eval\n"
        "inputs:\n  question: {type: string}\n"
        "prompt:\n  messages:\n"
        '    - {role: user, content: "Answer in JSON: {{ question }}"}\n'
        f"model:\n  id: {DEFAULT_MODEL_ID}\n"
        "  params: {temperature: 0.0, max_tokens: 48, seed: 1}\n"
        + FORMAT
        + f"evaluation:\n  dataset: {dataset}\n  scorers:\n    - {{type: is_json}}\n",
        encoding="utf-8",
    )
    return flow


def test_the_flows_format_is_kept_by_the_batch_record_and_splits_the_cache(
    home: Path, tmp_path: Path
) -> None:
    (config,) = configs_from_flow(load_spec(_flow(tmp_path)))
    assert config.response_format is not None and config.response_format.name == "verdict"
    assert EvalConfig.from_json(config.to_json()) == config  # a resume asks for it too
    text = Result(model_id=DEFAULT_MODEL_ID, messages=[], params=config.params)
    structured = Result(
        model_id=DEFAULT_MODEL_ID,
        messages=[],
        params=config.params,
        response_format=config.response_format,
    )
    assert cache_key(text, 0) != cache_key(structured, 0)


def test_a_batch_of_a_json_schema_flow_answers_json_checked_against_it(
    home: Path, tmp_path: Path
) -> None:
    settings = load_settings()
    plan = plan_from_paths(settings, [str(_flow(tmp_path))])
    assert BatchRunner(settings, plan, concurrency=1).run() == "done"
    (cell,) = load_report(settings, plan.batch_id).cells
    assert cell.result is not None and cell.result.format_check is not None
    assert "answer" in json.loads(cell.result.text)  # the grammar held the model to the schema
