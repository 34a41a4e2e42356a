"""Faithfulness and moderation scorers, and pairwise judging in both orders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from playground.config import load_settings
from playground.errors import SpecError
from playground.eval import judge, scorers
from playground.eval.spec import EvaluationSpec, parse_evaluation
from playground.models.base import ModelParams
from playground.records import Result, RetrievalSettings, RetrievedChunk, Run
from tests.eval_support import EvalStub, stub_config
from tests.support import FaultServer

CHUNK = "The fly is rated to 3,000 mm and all seams are factory taped."


def _verdict(scorer: dict[str, Any], answer: str, retrieved: bool = True) -> scorers.Verdict:
    spec = EvaluationSpec.model_validate({"dataset": "d", "scorers": [scorer]})
    run = Run()
    if retrieved:
        run = Run(retrieval=RetrievalSettings(store="gear"), retrieved=[RetrievedChunk("1", CHUNK)])
    result = Result(model_id="x/y", messages=[], params=ModelParams(), text=answer)
    ctx = scorers.ScoreContext(
        row={"question": "Is it waterproof?"}, result=result, run=run, settings=load_settings()
    )
    return scorers.score_one(spec.scorers[0], ctx)


FAITHFUL = {"type": "faithfulness", "model": "stub/stub-model", "threshold": 0.8}
JUDGE_SAYS = {
    "Statement: The fly is rated": '{"supported": true, "reason": "stated"}',
    "Statement: The tent comes": '{"supported": false, "reason": "not in the context"}',
}


def test_faithfulness_is_the_share_of_statements_the_judge_finds(write_config: Any) -> None:
    with EvalStub(answers=JUDGE_SAYS) as stub:
        write_config(stub_config(stub.base_url))
        good = _verdict(FAITHFUL, "The fly is rated to 3,000 mm.")
        half = _verdict(FAITHFUL, "The fly is rated to 3,000 mm. The tent comes with a stove.")
    assert good.status == "pass" and good.score == 1.0
    assert half.status == "fail" and half.score == 0.5
    assert "1 of 2 statements" in half.reason and "The tent comes" in half.reason


def test_faithfulness_with_an_unreadable_judge_is_unmeasured_not_pass(write_config: Any) -> None:
    with EvalStub(answers={"Statement: The fly": '{"supported": true}'}) as stub:
        write_config(stub_config(stub.base_url))  # the second statement gets "I do not know."
        verdict = _verdict(FAITHFUL, "The fly is rated to 3,000 mm. Seams are taped at home.")
    assert verdict.status == "unmeasured" and verdict.score is None
    assert "no JSON verdict for 1 of 2 statements" in verdict.reason


def test_faithfulness_without_retrieval_is_unmeasured(home: Path) -> None:
    verdict = _verdict({"type": "faithfulness"}, "Anything.", retrieved=False)
    assert verdict.status == "unmeasured" and "retrieves no context" in verdict.reason


def test_faithfulness_refuses_a_zero_threshold() -> None:
    # promptfoo's context-faithfulness passes by default (threshold 0); ours cannot
    with pytest.raises(SpecError, match="threshold"):
        parse_evaluation({"dataset": "d", "scorers": [{**FAITHFUL, "threshold": 0}]}, "f.yaml")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"supported": true}', True),
        ('Sure ```json\n{"supported": "no", "reason": "x"}\n```', False),
        ('{"supported": "maybe"}', None),
        ("Yes it is supported.", None),
    ],
)
def test_faithfulness_reply_parsing(reply: str, expected: bool | None) -> None:
    parsed = judge.parse_supported(reply)
    assert (parsed[0] if parsed else None) == expected


def test_moderation_without_an_endpoint_is_unmeasured_with_the_fix(home: Path) -> None:
    verdict = _verdict({"type": "moderation"}, "I will kill you.")
    assert verdict.status == "unmeasured"
    assert "add [moderation] to playground.toml" in verdict.reason


@pytest.mark.parametrize(
    ("mode", "answer", "status", "reason"),
    [
        ("ok", "Tents keep rain out.", "pass", "not flagged"),
        ("ok", "I will kill you.", "fail", "flagged: violence"),
        ("500", "Tents keep rain out.", "unmeasured", "Moderation was not checked"),
    ],
)
def test_moderation_with_an_endpoint(
    write_config: Any, fault_server: FaultServer, mode: str, answer: str, status: str, reason: str
) -> None:
    write_config(f'[moderation]\nbase_url = "{fault_server.url(mode)}"\nmax_retries = 0\n')
    verdict = _verdict({"type": "moderation"}, answer, retrieved=False)
    assert verdict.status == status and reason in verdict.reason


@pytest.mark.parametrize(
    ("forward", "backward", "preference"),
    [
        ("A", "B", "first"),
        ("B", "A", "second"),
        ("A", "A", "inconsistent"),  # the judge always picks what it sees first
        ("tie", "tie", "tie"),
        ("A", "tie", "first"),
        (None, "A", "unmeasured"),
    ],
)
def test_two_orders_combine_into_one_preference(
    forward: str | None, backward: str | None, preference: str
) -> None:
    assert judge.combine(forward, backward) == preference


def test_a_judge_that_always_picks_answer_a_shows_full_position_bias(write_config: Any) -> None:
    with EvalStub(answers={"Answer A": '{"winner": "A", "reason": "first is best"}'}) as stub:
        write_config(stub_config(stub.base_url))
        report = judge.judge_pairs(
            load_settings(), "stub/stub-model", [("q1", "good", "bad"), ("q2", "x", "y")]
        )
    data = report.to_json()
    assert data["inconsistent"] == 2 and data["first_wins"] == 0
    assert data["position_bias"] == 0.5
    assert "position bias +0.50" in report.sentence()


def test_a_consistent_judge_picks_the_same_answer_in_both_orders(write_config: Any) -> None:
    replies = {"Answer A: good": '{"winner": "A"}', "Answer A: bad": '{"winner": "B"}'}
    with EvalStub(answers=replies) as stub:
        write_config(stub_config(stub.base_url))
        report = judge.judge_pairs(load_settings(), "stub/stub-model", [("q", "good", "bad")])
    assert report.pairs[0].preference == "first"
    assert report.position_bias == 0.0


def test_embedded_model_as_pairwise_judge(home: Path) -> None:
    verdict = judge.judge_pair(
        load_settings(),
        "local/smollm2-135m-instruct",
        "How many days do I have to return an item?",
        "Unused items can be returned within 60 days of delivery.",
        "I like turtles.",
        max_tokens=32,
    )
    # the tiny model may not answer JSON: then the pair is unmeasured, never a made-up winner
    assert verdict.forward in {"A", "B", "tie", None}
    assert verdict.backward in {"A", "B", "tie", None}
    assert verdict.preference == judge.combine(verdict.forward, verdict.backward)


def test_eval_compare_judges_pairs_in_both_orders(
    home: Path, tmp_path: Path, write_config: Any
) -> None:
    import json

    from click.testing import CliRunner

    from playground.cli import main
    from tests.eval_support import write_flow

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        return result.exit_code, result.stdout

    (tmp_path / "rows.jsonl").write_text(
        "".join(json.dumps({"question": f"q{i}?"}) + "\n" for i in range(3)), encoding="utf-8"
    )
    flow = tmp_path / "flow.yaml"
    block = "evaluation:\n  dataset: rows.jsonl\n  scorers:\n    - {type: latency, max_ms: 60000}\n"
    write_flow(flow, "stub/stub-model", block)
    # the judge's prompt holds "Answer A"; a judge that always says A is all position bias
    with EvalStub(answers={"Answer A": '{"winner": "A"}', "q": "an answer"}) as stub:
        write_config(stub_config(stub.base_url))
        invoke("eval", "run", str(flow))
        invoke("eval", "run", str(flow), "--no-cache")
        _, listed = invoke("eval", "list", "--json")
        second, first = [b["batch_id"] for b in json.loads(listed)][:2]
        code, out = invoke("eval", "compare", second, first, "--judge", "stub/stub-model", "--json")
    assert code == 0
    pairwise = json.loads(out)["pairwise"]
    assert pairwise["pairs"] == 3 and pairwise["inconsistent"] == 3
    assert pairwise["position_bias"] == 0.5
