"""Output files named on the command line: a missing folder is one sentence before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from playground.cli import main
from tests.eval_support import write_flow

DATASET = Path(__file__).resolve().parent.parent / "sample_data" / "eval" / "gear-questions.jsonl"
BLOCK = f"evaluation:\n  dataset: {DATASET}\n  scorers:\n    - {{type: contains, value: a}}\n"


@pytest.mark.parametrize("flag", ["--junit", "--html"])
def test_eval_report_into_a_missing_folder_fails_before_the_batch_runs(home, tmp_path, flag):
    target = tmp_path / "missing" / "report.out"
    spec = tmp_path / "flow.yaml"
    write_flow(spec, "local/smollm2-135m-instruct", BLOCK)
    result = CliRunner().invoke(main, ["eval", "run", str(spec), flag, str(target)])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"Error: Invalid value for {flag}: folder {target.parent} does not exist; "
        "create it first or write somewhere else."
    )
    assert "Unexpected" not in result.output
    assert "batch" not in result.output  # nothing ran
