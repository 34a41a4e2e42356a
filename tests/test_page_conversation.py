"""Conversations on the pages (AppTest): follow-ups per column, few-shot editing, shared turns."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.config import load_settings
from playground.conversation import plan_follow_up
from playground.store import open_store
from tests.history_fixtures import T0, make_run
from tests.test_page_playground import LOCAL, SERVER, page, run_and_wait, short_answers
from tests.test_page_playground import wait_for_answers as wait

RUN_PAGE = str(Path(__file__).resolve().parent.parent / "views" / "run.py")


@pytest.fixture
def server_config(write_config: Callable[[str], Path], llama_server: str) -> Path:
    """playground.toml with the real llama.cpp server as endpoint `srv`."""
    return write_config(
        f'[endpoints.srv]\nbase_url = "{llama_server}"\nmodels = ["smollm2-135m-instruct"]\n'
    )


def expander_labels(at: AppTest) -> list[str]:
    """The labels of every expander on the page."""
    return [e.label for e in at.expander]


def send_follow_up(at: AppTest, text: str) -> AppTest:
    """Type a follow-up, press Send and wait for every thread to answer."""
    at.text_area(key="pg_follow_up").set_value(text)
    at.button(key="btn_follow_up").click().run()
    return wait(at)


def test_a_follow_up_is_answered_by_every_model_in_its_own_thread(
    home: Path, server_config: Path
) -> None:
    at = page().run()
    at.multiselect(key="pg_models").set_value([LOCAL, SERVER]).run()
    short_answers(at, LOCAL, SERVER)
    run_and_wait(at)
    send_follow_up(at, "Say that shorter.")
    assert not at.exception and not at.error
    assert expander_labels(at).count("Conversation so far · 1 earlier turn") == 2
    assert ":material/forum: Turn 2 · follow-up: Say that shorter\\." in [
        c.value for c in at.caption
    ]
    assert at.text_area(key="pg_follow_up").value == ""  # ready for the next turn
    runs = open_store(load_settings()).runs.recent_runs(limit=5)
    first, second = sorted(runs, key=lambda r: r.parent_run_id is not None)
    assert second.parent_run_id == first.id
    earlier = {r.model_id: r.text for r in first.results}
    for result in second.results:  # each column got its own previous answer
        assert result.messages[-2].content == earlier[result.model_id]
        assert result.messages[-1].content == "Say that shorter."


def test_an_empty_follow_up_is_one_sentence_and_nothing_runs(home: Path) -> None:
    at = page().run()
    short_answers(at, LOCAL)
    run_and_wait(at)
    at.button(key="btn_follow_up").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The follow-up is empty; write a message and send it again."
    ]
    assert open_store(load_settings()).runs.count_runs() == 1


def test_few_shot_messages_are_added_edited_and_sent_in_order(home: Path) -> None:
    at = page().run()
    short_answers(at, LOCAL)
    at.button(key="btn_add_example_0").click().run()
    at.button(key="btn_add_example_0").click().run()
    assert [at.selectbox(key=f"pg_v0_ex{i}_role").value for i in (0, 1)] == ["user", "assistant"]
    at.text_area(key="pg_v0_ex0_content").set_value("Why is grass green?")
    at.text_area(key="pg_v0_ex1_content").set_value("Chlorophyll.")
    run_and_wait(at)
    assert not at.exception and not at.error
    result = open_store(load_settings()).runs.recent_runs(limit=1)[0].results[0]
    assert [m.role for m in result.messages] == ["system", "user", "assistant", "user"]
    assert result.messages[1].content == "Why is grass green?"
    assert result.messages[2].content == "Chlorophyll."


def test_a_few_shot_list_that_does_not_alternate_is_refused_under_run(home: Path) -> None:
    at = page().run()
    at.button(key="btn_add_example_0").click().run()
    at.button(key="btn_add_example_0").click().run()
    at.selectbox(key="pg_v0_ex1_role").set_value("user").run()
    at.text_area(key="pg_v0_ex0_content").set_value("a")
    at.text_area(key="pg_v0_ex1_content").set_value("b")
    run_and_wait(at)
    assert [e.value for e in at.error] == [
        "Few-shot message 2 of the prompt is a user message where a assistant message "
        "belongs; examples alternate user and assistant, so change its role or remove it."
    ]
    at.button(key="btn_remove_example_0_1").click().run()
    keys = [t.key for t in at.text_area]
    assert "pg_v0_ex0_content" in keys and "pg_v0_ex1_content" not in keys


def test_a_broken_template_in_one_few_shot_message_hides_no_fields_silently(home: Path) -> None:
    at = page().run()
    at.button(key="btn_add_example_0").click().run()
    at.text_area(key="pg_v0_ex0_content").set_value("Tell me about {{ topic ").run()
    warnings = [w.value for w in at.warning]
    assert any("few-shot message 1 (user) is broken" in w for w in warnings), warnings


def test_a_follow_up_turn_opens_on_the_shared_page_with_its_thread(store) -> None:
    first = make_run(models=("local/a", "local/b"), texts=("Apples.", "Pears."))
    store.runs.save_run(first)
    turn = plan_follow_up(store.runs.get_run(first.id), "Why those?")
    turn.created_at = T0 + timedelta(minutes=1)
    for result in turn.results:
        result.text = f"Because {result.model_id}."
    store.runs.save_run(turn)
    at = AppTest.from_file(RUN_PAGE, default_timeout=30)
    at.query_params["run"] = turn.id[:8]
    at.run()
    assert not at.exception
    assert expander_labels(at).count("Conversation so far · 1 earlier turn") == 2
    markdown = [m.value for m in at.markdown]
    assert "Apples." in markdown and "Pears." in markdown  # each thread its own answer
    assert "Because local/a." in markdown
    captions = [c.value for c in at.caption]
    assert any(c.startswith(":material/forum: Turn 2 · follow-up: Why those?") for c in captions)


def test_loading_a_run_with_few_shot_examples_restores_them_in_the_editor(home: Path) -> None:
    from playground.models.base import Message
    from playground.records import Draft, PromptVariant

    examples = [Message(role="user", content="2+2?"), Message(role="assistant", content="4")]
    draft = Draft(variants=[PromptVariant(user="3+3?", examples=examples)], model_ids=[LOCAL])
    at = page()
    at.session_state["pending_draft"] = draft
    at.run()
    assert not at.exception
    assert at.text_area(key="pg_v0_ex0_content").value == "2+2?"
    assert at.selectbox(key="pg_v0_ex1_role").value == "assistant"
    at.button(key="btn_add_variant").click().run()  # a new variant starts as a copy
    assert at.text_area(key="pg_v1_ex1_content").value == "4"


def test_a_stored_run_opened_from_history_can_be_followed_up(store) -> None:
    from playground.models.base import Message

    first = make_run(models=(LOCAL,), texts=("Blue light scatters more.",))
    first.results[0].messages = [Message(role="user", content="Why is the sky blue?")]
    first.results[0].params = first.results[0].params.model_copy(update={"max_tokens": 8})
    store.runs.save_run(first)
    at = page()
    at.session_state["pending_conversation"] = first.id
    at.run()
    assert not at.exception
    assert "Blue light scatters more." in [m.value for m in at.markdown]
    send_follow_up(at, "Shorter?")
    assert not at.exception
    turn = next(r for r in store.runs.recent_runs(limit=5) if r.parent_run_id == first.id)
    assert turn.results[0].messages[-2:] == [
        Message(role="assistant", content="Blue light scatters more."),
        Message(role="user", content="Shorter?"),
    ]
    assert "Conversation so far · 1 earlier turn" in expander_labels(at)
