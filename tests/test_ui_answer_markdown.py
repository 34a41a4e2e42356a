"""ui/answer_markdown.py: how model output renders (small headings, nothing fetched, code as is)."""

from __future__ import annotations

import pytest

from ui.answer_markdown import answer_markdown, plain_markdown


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        ("## Features\n- light", "**Features**\n\n- light"),
        ("# Title #", "**Title**"),
        ("###### tiny", "**tiny**"),
        ("Setext heading\n===\nbody", "**Setext heading**\n\n\nbody"),
        ("Intro\n\n### **Bold already**", "Intro\n\n\n**Bold already**"),
        ("#hashtag is not a heading", "#hashtag is not a heading"),
    ],
)
def test_headings_become_bold_lines_not_huge_titles(answer: str, shown: str) -> None:
    assert answer_markdown(answer) == shown


def test_code_blocks_and_spans_are_left_exactly_as_written() -> None:
    answer = "```python\n# a comment, not a heading\n![img](http://x)\n```\nuse `![x](y)` here"
    assert answer_markdown(answer) == answer


def test_a_list_item_followed_by_dashes_is_not_made_a_heading() -> None:
    assert answer_markdown("- item\n---") == "- item\n---"


def test_images_become_links_so_the_browser_fetches_nothing() -> None:
    shown = answer_markdown("see ![chart](http://host/?secret=1)")
    assert "![" not in shown and "[image: chart](http://host/?secret=1)" in shown


@pytest.mark.parametrize(
    "link",
    ["[x](javascript:alert(1))", "[x](data:text/html,hi)", "<javascript:alert(1)>"],
)
def test_links_to_unsafe_schemes_are_shown_as_text(link: str) -> None:
    shown = answer_markdown(link)
    assert shown != link and "\\" in shown  # escaped: Markdown no longer makes a link


def test_web_links_stay_links() -> None:
    assert answer_markdown("[docs](https://example.com)") == "[docs](https://example.com)"


def test_typed_values_show_literally() -> None:
    assert plain_markdown("**a** [b](c)\n  d") == r"\*\*a\*\* \[b\]\(c\) d"
