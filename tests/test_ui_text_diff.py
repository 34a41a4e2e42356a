"""ui/text_diff.py: a word diff of two answers or prompts that people read and nothing formats."""

from __future__ import annotations

from ui.text_diff import diff_markdown, word_diff


def test_changed_words_are_marked_and_the_rest_kept() -> None:
    assert word_diff("The sky is blue.", "The sky is very blue!") == [
        ("same", "The sky is "),
        ("removed", "blue."),
        ("added", "very blue!"),
    ]


def test_the_markdown_strikes_removed_words_and_greens_added_ones() -> None:
    assert diff_markdown("a b c", "a x c") == "a :red[~~b~~] :green[**x**] c"
    assert diff_markdown("a b c", "a b c d") == "a b c :green[**d**]"


def test_identical_texts_say_so() -> None:
    assert diff_markdown("same", "same") == "_(identical)_"


def test_model_output_in_a_diff_cannot_format_or_link() -> None:
    shown = diff_markdown("x [link](http://e) y", "x y")
    assert "](" not in shown.replace("\\](", "") and "\\[link\\]" in shown
