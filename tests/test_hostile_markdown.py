"""Text from outside drawn as Markdown: every element a page shows fetches nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.history_fixtures import make_run
from ui.answer_markdown import inline_markdown

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "![x](http://127.0.0.1:9/?secret=1)"
# what Markdown turns into a fetched image or a followed data: link
FETCHES = re.compile(r"(?<!\\)!\[|(?<!\\)\]\(\s*data:", re.IGNORECASE)


def shown_markdown(at: AppTest) -> list[str]:
    """The Markdown source of every text element on the page."""
    kinds = ("markdown", "caption", "error", "warning", "info", "success")
    return [str(element.value) for kind in kinds for element in at.get(kind)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"x-{IMAGE} changed", "x-[image: x](http://127.0.0.1:9/?secret=1) changed"),
        ("[click](data:text/html,hi)", "[click\\](data:text/html,hi)"),
        ("plain `![kept](in code)` text", "plain `![kept](in code)` text"),
    ],
)
def test_inline_values_lose_images_and_data_links(value, expected):
    assert inline_markdown(value) == expected


def test_a_shared_run_draws_no_image_from_its_answer_variables_template_or_error(store):
    run = make_run(
        models=("local/a", "dead/m"),
        prompt=f"Describe {{{{ thing }}}} {IMAGE}",
        texts=(f"Answer {IMAGE} [d](data:text/html,x)", ""),
        variables={f"k{IMAGE}": IMAGE},
        errors={"dead/m": f"Server said {IMAGE}"},
    )
    run.results[0].variant_name = IMAGE
    store.runs.save_run(run)
    other = make_run(models=("local/a",), texts=(IMAGE,), temperature=1.0)
    store.runs.save_run(other)
    for params in ({"run": run.id}, {"run": run.id, "vs": other.id}):
        at = AppTest.from_file(str(ROOT / "views" / "run.py"), default_timeout=30)
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
        assert not at.exception
        shown = shown_markdown(at)
        assert any("secret=1" in text for text in shown)  # the values are still there to read
        assert [text for text in shown if FETCHES.search(text)] == []
