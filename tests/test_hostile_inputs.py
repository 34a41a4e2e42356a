"""Flow inputs from the command line and from served requests: non-finite and huge values."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from playground.cli import main
from playground.errors import SpecError
from playground.flows.loader import parse_spec
from playground.serve.service import InputProblem, checked_inputs

SPEC = """\
schema: playground.flow/v1
name: num-flow
inputs:
  n: {type: number, default: 1}
prompt:
  messages:
    - {role: user, content: "Say {{ n }}"}
model:
  id: local/smollm2-135m-instruct
  params: {max_tokens: 4}
"""


@pytest.mark.parametrize("value", ["1e309", "nan", "inf", "-Infinity"])
def test_a_non_finite_number_input_is_refused_before_anything_runs(home, tmp_path, value):
    spec = tmp_path / "flow.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    result = CliRunner().invoke(main, ["flow", "run", str(spec), "--input", f"n={value}"])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Input 'n' is '{value}', not a finite number; give an ordinary number.\n"
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_served_call_with_nan_in_its_json_names_the_input(value):
    # Python's JSON reader accepts NaN and Infinity in a request body.
    with pytest.raises(InputProblem) as caught:
        checked_inputs(parse_spec(SPEC), {"n": value})
    assert caught.value.field == "inputs.n"
    assert str(caught.value) == (
        f"Input 'n' is {value!r}, not a finite number; give an ordinary number."
    )


def test_a_huge_wrong_value_is_not_echoed_whole():
    with pytest.raises(InputProblem) as caught:
        checked_inputs(parse_spec(SPEC), {"n": "x" * 1_000_000})
    assert str(caught.value) == (
        f"Input 'n' is '{'x' * 56}..., which is not a number; give a number."
    )


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("name: num-flow\n", 'name: num-flow\ndescription: "a\\0b"\n', "description"),
        # control characters never reach a message, so the key shows without its NUL
        ("default: 1}", 'default: 1}\n  "k\\0": {type: string}', "inputs.k"),
        ('"Say {{ n }}"', '"Say {{ n }}\\0"', "prompt.messages[0].content"),
    ],
)
def test_a_nul_character_in_a_spec_is_refused_naming_the_field(old, new, field):
    # YAML's "\0" escape made a NUL that PostgreSQL refused (DataError) when the flow was saved.
    with pytest.raises(SpecError) as caught:
        parse_spec(SPEC.replace(old, new), "f.yaml")
    assert str(caught.value) == (
        f"Field '{field}' in f.yaml holds a NUL character (\\0); a flow spec is text, so remove it."
    )
