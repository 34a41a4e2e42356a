"""Sampling parameters: good values pass, bad ones fail before any request, naming the field."""

from __future__ import annotations

import pytest

from playground.errors import ParamError
from playground.models.base import ModelParams


@pytest.mark.parametrize(
    ("data", "expected", "expected_error"),
    [
        ({}, ModelParams(temperature=0.7, top_p=1.0, max_tokens=256, seed=None, stop=[]), None),
        ({"temperature": 0}, ModelParams(temperature=0.0), None),
        ({"temperature": 2}, ModelParams(temperature=2.0), None),
        ({"temperature": "0.5"}, ModelParams(temperature=0.5), None),
        ({"top_p": 1}, ModelParams(top_p=1.0), None),
        ({"top_p": 0.01}, ModelParams(top_p=0.01), None),
        ({"max_tokens": 1}, ModelParams(max_tokens=1), None),
        ({"max_tokens": "64"}, ModelParams(max_tokens=64), None),
        ({"seed": 0}, ModelParams(seed=0), None),
        ({"seed": 2**31 - 1}, ModelParams(seed=2**31 - 1), None),
        ({"stop": ["\n\n", "END"]}, ModelParams(stop=["\n\n", "END"]), None),
        (
            {"temperature": 7},
            None,
            "Parameter 'temperature' is 7: input should be less than or equal to 2; "
            "change it and run again.",
        ),
        (
            {"temperature": -0.1},
            None,
            "Parameter 'temperature' is -0.1: input should be greater than or equal to 0; "
            "change it and run again.",
        ),
        (
            {"temperature": "hot"},
            None,
            "Parameter 'temperature' is 'hot': input should be a valid number, "
            "unable to parse string as a number; change it and run again.",
        ),
        (
            {"max_tokens": -1},
            None,
            "Parameter 'max_tokens' is -1: input should be greater than or equal to 1; "
            "change it and run again.",
        ),
        (
            {"max_tokens": 0},
            None,
            "Parameter 'max_tokens' is 0: input should be greater than or equal to 1; "
            "change it and run again.",
        ),
        (
            {"max_tokens": 2.5},
            None,
            "Parameter 'max_tokens' is 2.5: input should be a valid integer, "
            "got a number with a fractional part; change it and run again.",
        ),
        (
            {"top_p": 0},
            None,
            "Parameter 'top_p' is 0: input should be greater than 0; change it and run again.",
        ),
        (
            {"top_p": 1.5},
            None,
            "Parameter 'top_p' is 1.5: input should be less than or equal to 1; "
            "change it and run again.",
        ),
        (
            {"seed": -1},
            None,
            "Parameter 'seed' is -1: input should be greater than or equal to 0; "
            "change it and run again.",
        ),
        (
            {"stop": [""]},
            None,
            "Parameter 'stop' is ['']: value error, stop sequences cannot be empty strings; "
            "change it and run again.",
        ),
        (
            {"stop": ["a", "b", "c", "d", "e"]},
            None,
            "Parameter 'stop' is ['a', 'b', 'c', 'd', 'e']: list should have at most 4 items "
            "after validation, not 5; change it and run again.",
        ),
        (
            {"frequency_penalty": 1},
            None,
            "Unknown parameter 'frequency_penalty'; "
            "use one of temperature, top_p, max_tokens, seed, stop.",
        ),
    ],
)
def test_params_parse(
    data: dict[str, object], expected: ModelParams | None, expected_error: str | None
) -> None:
    if expected_error is None:
        assert ModelParams.parse(data) == expected
        return
    with pytest.raises(ParamError) as caught:
        ModelParams.parse(data)
    assert str(caught.value) == expected_error


def test_a_param_error_names_where_it_happened() -> None:
    with pytest.raises(ParamError) as caught:
        ModelParams.parse({"nope": 1}, where="local/smollm2-135m-instruct")

    assert str(caught.value).startswith(
        "Unknown parameter 'nope' for local/smollm2-135m-instruct; use one of "
    )


def test_params_round_trip_through_json() -> None:
    params = ModelParams(temperature=0.2, top_p=0.9, max_tokens=12, seed=7, stop=["END"])

    assert ModelParams.model_validate_json(params.model_dump_json()) == params
