"""Rating widgets (AppTest): stars and comments save at once; votes become pairwise rows."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.history_fixtures import make_run


def widgets_script(run_id: str, blind: bool, recall: bool = False) -> None:
    """A stand-in for the Playground: rating controls under each answer, a vote below."""
    from ui.rating import best_answer_vote, rating_controls, recall_session_ratings
    from ui.resources import store

    run = store().runs.get_run(run_id)
    if recall:  # as the Playground's grid does: every answer's earlier rating at once
        recall_session_ratings({r.id: f"rate_{r.id}" for r in run.results})
    for result in run.results:
        rating_controls(result, run, key=f"rate_{result.id}")
    labels = {r.id: f"Answer {'AB'[i]}" for i, r in enumerate(run.results)} if blind else None
    best_answer_vote(run, run.results, key=f"vote_{run.id}", labels=labels)


def app(
    run_id: str, blind: bool = False, session: str = "session-1", recall: bool = False
) -> AppTest:
    at = AppTest.from_function(widgets_script, args=(run_id, blind, recall), default_timeout=30)
    at.session_state["session_id"] = session
    at.run()
    assert not at.exception
    return at


def open_comment(at: AppTest, result_id: str) -> AppTest:
    """What clicking an answer's "Comment" button does: its box is drawn once it is open."""
    at.session_state[f"rate_{result_id}_comment_open"] = True
    return at.run()


def shown_comments(at: AppTest) -> list[str]:
    """The comments the cards show under their stars."""
    return [c.value for c in at.caption if c.value.startswith(":material/comment: ")]


def test_stars_are_saved_the_moment_they_are_given(store):
    run = make_run()
    store.runs.save_run(run)
    at = app(run.id)
    first = run.results[0].id
    at.feedback(key=f"rate_{first}_stars").set_value(3).run()
    assert store.ratings.rating_summaries([first])[first].mean == 4.0
    assert ":material/check: saved" in [c.value for c in at.caption]
    assert not at.text_input  # no comment box is drawn until its popover opens
    open_comment(at, first)
    at.text_input(key=f"rate_{first}_comment").input("a bit long").run()
    assert store.ratings.session_rating(first, "session-1") == (4, "a bit long")
    assert shown_comments(at) == [":material/comment: a bit long"]
    at.session_state[f"rate_{first}_comment_open"] = False  # closed: the comment stays shown
    at.run()
    assert not at.text_input and shown_comments(at) == [":material/comment: a bit long"]


def test_a_new_session_sees_its_own_rating_not_anothers(store):
    run = make_run()
    store.runs.save_run(run)
    first = run.results[0].id
    store.ratings.add_rating(first, 2, "meh", session_id="session-1")
    mine = app(run.id, session="session-1")
    assert mine.feedback(key=f"rate_{first}_stars").value == 1
    assert shown_comments(mine) == [":material/comment: meh"]
    assert open_comment(mine, first).text_input(key=f"rate_{first}_comment").value == "meh"
    theirs = app(run.id, session="session-2")
    assert theirs.feedback(key=f"rate_{first}_stars").value is None
    assert shown_comments(theirs) == []


def test_a_grid_recalls_each_answers_latest_rating_of_this_session(store):
    run = make_run(models=("local/a", "openai/b", "openai/c"))
    store.runs.save_run(run)
    first, second, third = (r.id for r in run.results)
    store.ratings.add_rating(first, 2, "meh", session_id="session-1")
    store.ratings.add_rating(first, 5, None, session_id="session-1")  # changed its mind
    store.ratings.add_rating(second, None, "too long", session_id="session-1")
    store.ratings.add_rating(third, 1, "bad", session_id="session-2")
    at = app(run.id, recall=True)
    stars = {r: at.feedback(key=f"rate_{r}_stars").value for r in (first, second, third)}
    assert stars == {first: 4, second: None, third: None}
    assert shown_comments(at) == [":material/comment: too long"]  # the second answer's
    at.feedback(key=f"rate_{third}_stars").set_value(2).run()  # rating goes on as before
    assert store.ratings.session_rating(third, "session-1") == (3, None)


def test_best_answer_vote_uses_blind_labels_and_saves_pairs(store):
    run = make_run()
    store.runs.save_run(run)
    at = app(run.id, blind=True)
    (vote,) = at.get("button_group")
    assert vote.options == ["Answer A", "Answer B", "All equally good", "All equally bad"]
    vote.set_value(run.results[1].id).run()
    assert not at.exception
    (row,) = store.exports.export_preferences()
    assert (row["winner_result_id"], row["outcome"]) == (run.results[1].id, "win")


def test_no_vote_is_offered_for_a_single_answer(store):
    run = make_run(models=("local/a", "openai/b"), errors={"openai/b": "failed"})
    store.runs.save_run(run)
    at = app(run.id)
    assert len(at.get("feedback")) == 2  # stars under both answers
    assert len(at.get("button_group")) == 0  # but no best-answer vote
