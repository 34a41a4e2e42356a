"""The evaluation block and its scorers: refused before anything is sent, verdicts with reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from playground.config import load_settings
from playground.errors import SpecError
from playground.eval import scorers
from playground.eval.spec import EvaluationSpec, parse_evaluation
from playground.flows.loader import read_spec_file
from playground.models.base import ModelParams
from playground.records import Result, Run
from tests.eval_support import EvalStub, stub_config, write_flow


def _ctx(answer: str, row: dict[str, Any] | None = None, **fields: Any) -> scorers.ScoreContext:
    result = Result(model_id="x/y", messages=[], params=ModelParams(), text=answer, **fields)
    return scorers.ScoreContext(row=row or {}, result=result, run=Run(), settings=load_settings())


def _verdict(scorer: dict[str, Any], answer: str, row: dict[str, Any] | None = None, **kw: Any):
    spec = EvaluationSpec.model_validate({"dataset": "d", "scorers": [scorer]})
    return scorers.score_one(spec.scorers[0], _ctx(answer, row, **kw))


@pytest.mark.parametrize(
    ("scorer", "answer", "status"),
    [
        ({"type": "equals", "value": "{{ expected }}"}, "  Paris ", "pass"),
        ({"type": "equals", "value": "{{ expected }}", "case_sensitive": True}, "paris", "fail"),
        ({"type": "contains", "value": "{{ keyword }}"}, "Within 60 DAYS.", "pass"),
        ({"type": "contains", "value": ["60", "refund"], "mode": "all"}, "60 days", "fail"),
        ({"type": "contains", "value": ["60", "refund"], "mode": "any"}, "60 days", "pass"),
        ({"type": "starts_with", "value": "yes"}, "Yes, it is.", "pass"),
        ({"type": "regex", "pattern": r"\b\d+ days\b"}, "60 days", "pass"),
        ({"type": "regex", "pattern": r"\b\d+ days\b"}, "two months", "fail"),
        ({"type": "is_json"}, '```json\n{"a": 1}\n```', "pass"),
        ({"type": "is_json"}, "{a: 1}", "fail"),
        (
            {"type": "is_json", "schema": {"type": "object", "required": ["days"]}},
            '{"weeks": 2}',
            "fail",
        ),
        ({"type": "number", "value": "{{ n }}", "tolerance": 0.5}, "about 3.5 minutes", "pass"),
        ({"type": "number", "value": 60}, "no idea", "fail"),
        ({"type": "cost", "max_usd": 0.01}, "x", "pass"),
        ({"type": "groundedness", "threshold": 0.5}, "x", "unmeasured"),
        ({"type": "custom", "function": "tests.test_eval_scorers:shouty"}, "HELLO", "pass"),
        ({"type": "custom", "function": "tests.test_eval_scorers:broken"}, "x", "unmeasured"),
    ],
)
def test_scorer_verdicts(scorer: dict[str, Any], answer: str, status: str) -> None:
    row = {"expected": "Paris", "keyword": "60 days", "n": "3.7"}
    verdict = _verdict(scorer, answer, row)
    assert verdict.status == status, verdict.reason
    assert verdict.reason and "\n" not in verdict.reason
    assert verdict.score is None or 0.0 <= verdict.score <= 1.0


def shouty(answer: str, row: dict[str, Any], result: Result) -> bool:
    """A custom scorer for the test above."""
    return answer.isupper()


def broken(answer: str, row: dict[str, Any], result: Result) -> bool:
    """A custom scorer that fails: the row is unmeasured, the batch carries on."""
    raise RuntimeError("boom")


def test_latency_scorer_reads_the_measured_latency() -> None:
    assert _verdict({"type": "latency", "max_ms": 100}, "x", latency_ms=250.0).status == "fail"
    assert _verdict({"type": "latency", "max_ms": 500}, "x", latency_ms=250.0).status == "pass"


def test_missing_template_column_is_unmeasured_not_pass() -> None:
    verdict = _verdict({"type": "contains", "value": "{{ expected }}"}, "anything", {})
    assert verdict.status == "unmeasured"
    assert "expected" in verdict.reason


@pytest.mark.parametrize(
    ("scorer", "message"),
    [
        ({"type": "fuzzy"}, "unknown type 'fuzzy'; use one of equals, contains"),
        ({"type": "regex", "pattern": "(unclosed"}, "is not a valid regular expression"),
        ({"type": "contains", "value": "{{ oops"}, "scorers\\[0\\].value"),
        ({"type": "is_json", "schema": {"type": 12}}, "is not a valid JSON Schema"),
        ({"type": "custom", "function": "no_such_module:f"}, "cannot import module"),
        ({"value": "x"}, "has no type"),
    ],
)
def test_bad_scorers_are_refused_with_one_sentence(scorer: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message) as caught:
        parse_evaluation({"dataset": "d.jsonl", "scorers": [scorer]}, "flow.yaml")
    assert "\n" not in str(caught.value)


def test_flow_spec_carries_an_evaluation_block(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    write_flow(
        path,
        "local/smollm2-135m-instruct",
        "evaluation:\n  dataset: d.jsonl\n  scorers:\n    - {type: regex, pattern: 'days'}\n"
        "  gate: {pass_rate: 0.8}\n",
    )
    spec = read_spec_file(path)
    assert spec.evaluation is not None and spec.evaluation.gate.pass_rate == 0.8
    assert "evaluation" in spec.to_data()
    write_flow(path, "local/x", "evaluation:\n  dataset: d\n  scorers: [{type: nope}]\n")
    with pytest.raises(SpecError, match="nope"):
        read_spec_file(path)


def test_published_schema_covers_the_evaluation_block() -> None:
    from playground.flows.spec import SCHEMA_PATH, schema_text

    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text()
    assert "JudgeScorer" in schema_text() and '"evaluation"' in schema_text()


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"score": 5, "reason": "uses the context"}', 1.0),
        ('Sure! ```json\n{"score": 2, "reason": "vague"}\n```', 0.25),
        ('{"score": "4"}', 0.75),
        ("The answer is good. 5/5", None),
        ('{"score": 9}', None),
        ('{"verdict": "pass"}', None),
        ("", None),
    ],
)
def test_judge_reply_parsing_never_invents_a_pass(reply: str, expected: float | None) -> None:
    parsed = scorers.parse_judge_reply(reply)
    assert (parsed[0] if parsed else None) == expected


def test_judge_that_answers_garbage_is_unmeasured(write_config: Any) -> None:
    with EvalStub(answers={"Rubric": "Looks great to me!"}) as stub:
        write_config(stub_config(stub.base_url))
        verdict = _verdict(
            {"type": "judge", "rubric": "Is polite", "model": "stub/stub-model"}, "Hi"
        )
    assert verdict.status == "unmeasured"
    assert "not a JSON verdict" in verdict.reason


def test_judge_that_is_down_is_unmeasured(write_config: Any) -> None:
    write_config(
        '[endpoints.down]\nbase_url = "http://127.0.0.1:9/v1"\nmodels = ["m"]\nmax_retries = 0\n'
    )
    verdict = _verdict({"type": "judge", "rubric": "Is polite", "model": "down/m"}, "Hi")
    assert verdict.status == "unmeasured" and "failed" in verdict.reason


def test_judge_with_a_json_verdict_passes_or_fails(write_config: Any) -> None:
    with EvalStub(answers={"Rubric": '{"score": 4, "reason": "mostly right"}'}) as stub:
        write_config(stub_config(stub.base_url))
        scorer = {"type": "judge", "rubric": "Right", "model": "stub/stub-model", "threshold": 0.7}
        verdict = _verdict(scorer, "Hi")
    assert verdict.status == "pass" and verdict.score == 0.75 and "mostly right" in verdict.reason


def test_embedded_model_as_judge_gives_a_verdict_or_unmeasured(home: Path) -> None:
    scorer = {"type": "judge", "rubric": "States the return period", "max_tokens": 48}
    verdict = _verdict(
        scorer,
        "Unused items can be returned within 60 days.",
        {"question": "How many days do I have to return an item?"},
    )
    # the tiny model may or may not produce JSON; either way it is never a silent pass
    assert verdict.status in {"pass", "fail", "unmeasured"}
    if verdict.status == "unmeasured":
        assert "JSON verdict" in verdict.reason
    else:
        assert verdict.score is not None


def test_similarity_uses_the_bundled_minilm() -> None:
    scorer = {"type": "similarity", "reference": "{{ expected }}", "threshold": 0.6}
    row = {"expected": "You can return unused items within 60 days of delivery."}
    close = _verdict(scorer, "Unused items may be returned up to 60 days after delivery.", row)
    far = _verdict(scorer, "The Boise store closes at 7 pm.", row)
    assert close.status == "pass" and far.status == "fail"
    assert close.score > far.score
