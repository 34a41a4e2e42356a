"""`playground eval ...` and `playground flow test`: exit codes, --json shape, JUnit, exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from click.testing import CliRunner

from playground.cli import main
from tests.eval_support import EvalStub, stub_config, write_flow

BLOCK = """evaluation:
  dataset: {dataset}
  scorers:
    - {{type: contains, value: "{{{{ expected }}}}", name: has-answer}}
    - {{type: latency, max_ms: 10000}}
  gate: {{pass_rate: {gate}}}
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _files(tmp: Path, gate: float, rows: int = 4) -> tuple[Path, Path]:
    data = tmp / "rows.jsonl"
    data.write_text(
        "".join(
            json.dumps({"question": f"q{i}?", "expected": f"a{i}"}) + "\n" for i in range(rows)
        ),
        encoding="utf-8",
    )
    flow = tmp / "flow.yaml"
    write_flow(flow, "stub/stub-model", BLOCK.format(dataset="rows.jsonl", gate=gate))
    return flow, data


def test_gate_met_exit_0_with_json_shape_and_junit(
    home: Path, tmp_path: Path, write_config: Any
) -> None:
    with EvalStub(answers={"q0?": "a0", "q1?": "a1", "q2?": "a2"}) as stub:
        write_config(stub_config(stub.base_url))
        flow, _ = _files(tmp_path, gate=0.75)
        junit = tmp_path / "out.xml"
        code, out, err = invoke("eval", "run", str(flow), "--json", "--junit", str(junit))
    assert code == 0, err
    document = json.loads(out)
    [config] = document["configurations"]
    for key in ("passed", "failed", "unmeasured", "errors", "pass_rate", "gate_passed", "rows"):
        assert key in config
    assert (config["passed"], config["failed"], config["pass_rate"]) == (3, 1, 0.75)
    assert config["scorers"]["has-answer"]["pass_rate"] == 0.75
    assert config["latency_p95_ms"] is not None and document["batch_id"]
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 4
    failures = [c.find("failure") for c in cases if c.find("failure") is not None]
    assert len(failures) == 1 and "has-answer: does not contain 'a3'" in failures[0].get("message")


def test_gate_not_met_exit_1_then_show_list_compare_export(
    home: Path, tmp_path: Path, write_config: Any
) -> None:
    with EvalStub(answers={"q0?": "a0"}) as stub:
        write_config(stub_config(stub.base_url))
        flow, _ = _files(tmp_path, gate=0.9)
        code, out, err = invoke("eval", "run", str(flow))
        assert code == 1
        assert "gate NOT met" in out and "25%" in out
        assert "[4/4] 100%" in err  # the progress line
        code, listed, _ = invoke("eval", "list", "--json")
        first = json.loads(listed)[0]["batch_id"]
        stub.answers = {f"q{i}?": f"a{i}" for i in range(4)}
        code, out, _ = invoke("eval", "run", str(flow), "--no-cache", "--baseline", first, "--json")
    assert code == 0
    baseline = json.loads(out)["baseline"][0]
    assert baseline["fail_to_pass"] == [1, 2, 3] and baseline["pass_to_fail"] == []
    second = json.loads(out)["batch_id"]
    code, out, _ = invoke("eval", "show", first)
    assert code == 1 and "pass 1 · fail 3" in out
    code, out, _ = invoke("eval", "compare", second, first)
    assert code == 0 and "fail->pass [1, 2, 3]" in out
    code, csv_text, _ = invoke("eval", "export", second, "--format", "csv")
    assert csv_text.count("\n") == 5 and "has-answer:status" in csv_text
    promptfoo = tmp_path / "promptfooconfig.yaml"
    invoke("eval", "export", second, "--format", "promptfoo", "--out", str(promptfoo))
    import yaml

    config = yaml.safe_load(promptfoo.read_text(encoding="utf-8"))
    assert config["providers"][0]["config"]["apiBaseUrl"] == stub.base_url
    assert config["defaultTest"]["assert"][0] == {"type": "icontains", "value": "{{ expected }}"}
    assert config["tests"][0]["vars"] == {"question": "q0?", "expected": "a0"}
    code, html_text, _ = invoke("eval", "export", second, "--format", "html")
    assert "<table" in html_text and "gate met" in html_text


def test_empty_dataset_and_bad_usage_exit_2(home: Path, tmp_path: Path, write_config: Any) -> None:
    with EvalStub() as stub:
        write_config(stub_config(stub.base_url))
        flow, data = _files(tmp_path, gate=0.5)
        data.write_text("", encoding="utf-8")
        code, _, err = invoke("eval", "run", str(flow))
        assert (
            code == 2
            and err.strip() == "Error: rows.jsonl is empty; add a header and at least one row."
        )
        assert stub.requests == 0
        code, _, err = invoke("eval", "run", str(flow), "--repeat", "0")
        assert code == 2
        code, _, err = invoke("eval", "show", "nope")
        assert code == 1 and "Batch nope does not exist" in err


def test_flow_test_runs_a_saved_flows_own_block(
    home: Path, tmp_path: Path, write_config: Any
) -> None:
    with EvalStub(answers={f"q{i}?": f"a{i}" for i in range(4)}) as stub:
        write_config(stub_config(stub.base_url))
        data = tmp_path / "rows.jsonl"
        _files(tmp_path, gate=1.0)
        flow = tmp_path / "saved.yaml"
        write_flow(flow, "stub/stub-model", BLOCK.format(dataset=data, gate=1.0))
        code, _, err = invoke("flow", "save", str(flow))
        assert code == 0, err
        code, _, err = invoke("flow", "label", "gear-eval", "1", "production")
        assert code == 0, err
        code, out, err = invoke("flow", "test", "gear-eval@production", "--json")
    assert code == 0, err
    assert json.loads(out)["configurations"][0]["pass_rate"] == 1.0


def test_dataset_commands(home: Path, tmp_path: Path) -> None:
    sample = (
        Path(__file__).resolve().parent.parent / "sample_data" / "eval" / "gear-questions.jsonl"
    )
    code, out, _ = invoke("eval", "dataset", "import", str(sample))
    assert code == 0 and out.startswith("gear-questions@") and "18 rows" in out
    code, out, _ = invoke("eval", "dataset", "preview", "gear-questions", "--rows", "2")
    assert code == 0 and "How many days" in out
    code, out, _ = invoke("eval", "dataset", "delete", "gear-questions")
    assert code == 0 and "deleted 1 version" in out


def test_resume_reruns_only_errored_cells(home: Path, tmp_path: Path, write_config: Any) -> None:
    with EvalStub(answers={f"q{i}?": f"a{i}" for i in range(4)}) as stub:
        write_config(stub_config(stub.base_url))
        flow, _ = _files(tmp_path, gate=1.0)
        stub.garbage = True
        code, out, _ = invoke("eval", "run", str(flow), "--json")
        assert code == 1 and json.loads(out)["configurations"][0]["errors"] == 4
        batch = json.loads(out)["batch_id"]
        stub.garbage = False
        code, out, _ = invoke("eval", "resume", batch, "--json")
        assert code == 1 and stub.requests == 4  # nothing missing, nothing rerun
        code, out, err = invoke("eval", "resume", batch, "--rerun-errors", "--json")
    assert code == 0, err
    assert stub.requests == 8
    config = json.loads(out)["configurations"][0]
    assert (config["passed"], config["errors"]) == (4, 0)


def test_judge_agreement_with_human_ratings(home: Path, tmp_path: Path, write_config: Any) -> None:
    from playground.config import load_settings
    from playground.store import open_store

    verdict = '{"score": 5, "reason": "fine"}'
    with EvalStub(answers={"Rubric": verdict}) as stub:
        write_config(stub_config(stub.base_url))
        flow, _ = _files(tmp_path, gate=0.0, rows=12)
        text = flow.read_text(encoding="utf-8").replace(
            "    - {type: latency, max_ms: 10000}\n",
            "    - {type: judge, rubric: Is right, model: stub/stub-model, name: judge}\n",
        )
        flow.write_text(text, encoding="utf-8")
        _, out, _ = invoke("eval", "run", str(flow), "--json")
        document = json.loads(out)
        assert document["judges"] == [
            {"scorer": "judge", "count": 0, "accuracy": None, "kappa": None, "calibrated": False}
        ]
        store = open_store(load_settings())
        rows = document["configurations"][0]["rows"]
        for index, row in enumerate(rows):  # people liked 10 answers, disliked 2
            result_id = store.runs.get_run(row["run_id"]).results[0].id
            store.ratings.add_rating(result_id, 5 if index < 10 else 1)
        _, out, _ = invoke("eval", "show", document["batch_id"])
    assert "judge judge: agrees with people on 83% of 12 answers (Cohen's kappa 0.00)" in out
