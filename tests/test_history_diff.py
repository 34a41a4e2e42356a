"""The configuration diff between two runs, spelled out for people."""

from __future__ import annotations

from datetime import timedelta

import pytest

from playground.history import baseline_first, config_diff
from playground.records import RetrievalSettings
from tests.history_fixtures import T0, make_run


def test_identical_configurations_have_no_changes():
    assert config_diff(make_run(), make_run()) == []


@pytest.mark.parametrize(
    ("old_kwargs", "new_kwargs", "expected"),
    [
        ({"temperature": 0.7}, {"temperature": 0.2}, ["temperature 0.7 -> 0.2"]),
        (
            {"models": ("local/a",)},
            {"models": ("openai/b",), "temperature": 0.2},
            ["model changed: local/a -> openai/b", "temperature 0.7 -> 0.2"],
        ),
        (
            {"models": ("local/a", "openai/b")},
            {"models": ("local/a", "azure/c")},
            ["models added: azure/c", "models removed: openai/b"],
        ),
        ({"system": "Be brief."}, {"system": "Be thorough."}, ["system message changed"]),
        ({"prompt": "Q: {{ q }}"}, {"prompt": "Question: {{ q }}"}, ["prompt template changed"]),
        (
            {"variables": {"q": "tent", "x": "1"}},
            {"variables": {"q": "stove", "y": "2"}},
            ["variable q changed", "variable x removed", "variable y added"],
        ),
        (
            {},
            {"retrieval": RetrievalSettings("gear-manuals")},
            ["knowledge store none -> gear-manuals"],
        ),
        (
            {"retrieval": RetrievalSettings("gear-manuals", top_k=4)},
            {"retrieval": RetrievalSettings("gear-manuals", top_k=8)},
            ["retrieval top_k 4 -> 8"],
        ),
    ],
)
def test_changes_are_spelled_out(old_kwargs, new_kwargs, expected):
    old_models = old_kwargs.pop("models", ("local/a",))
    new_models = new_kwargs.pop("models", ("local/a",))
    old = make_run(models=old_models, **old_kwargs)
    new = make_run(models=new_models, **new_kwargs)
    assert config_diff(old, new) == expected


def test_the_older_run_is_the_baseline_whatever_the_order_given():
    old = make_run(created_at=T0)
    new = make_run(created_at=T0 + timedelta(hours=1))
    assert baseline_first(new, old) == (old, new)
    assert baseline_first(old, new) == (old, new)
