"""History queries: newest first, pages, search, model, rating and date filters, exports."""

from __future__ import annotations

import json
from datetime import date, timedelta

from playground.history import HistoryFilters, history_table, to_csv
from tests.history_fixtures import T0, make_run, seed_runs


def test_pages_are_newest_first_and_cover_every_run_once(store):
    saved = seed_runs(store, 45)
    first = store.history.history_page(HistoryFilters(), page=1, page_size=20)
    assert (first.total, first.pages) == (45, 3)
    assert first.runs[0].id == saved[-1].id
    seen = [r.id for p in (1, 2, 3) for r in store.history.history_page(page=p, page_size=20).runs]
    assert seen == [r.id for r in reversed(saved)]


def test_search_finds_text_in_answers_prompts_and_variables(store):
    store.runs.save_run(make_run(texts=("Pitch the tent facing away from wind.", "No idea.")))
    store.runs.save_run(make_run(prompt="Summarise the 50% off sale"))
    store.runs.save_run(make_run(variables={"question": "Which stove for winter?"}))
    store.runs.save_run(make_run())

    def found(text: str) -> int:
        return store.history.history_page(HistoryFilters(text=text)).total

    assert found("AWAY FROM WIND") == 1
    assert found("50% off") == 1
    assert found("50_ off") == 0  # LIKE wildcards are taken literally
    assert found("winter") == 1
    assert found("waterproof") == 4
    assert found("no such words") == 0


def test_filter_by_model_rating_and_dates(store):
    old = make_run(models=("local/a",), created_at=T0)
    new = make_run(models=("openai/b", "local/a"), created_at=T0 + timedelta(days=3))
    store.runs.save_run(old)
    store.runs.save_run(new)
    store.ratings.add_rating(new.results[0].id, 5, session_id="s")
    store.ratings.add_rating(old.results[0].id, 2, session_id="s")

    def ids(**kwargs: object) -> list[str]:
        return [r.id for r in store.history.history_page(HistoryFilters(**kwargs)).runs]  # type: ignore[arg-type]

    assert ids(model_id="openai/b") == [new.id]
    assert ids(model_id="local/a") == [new.id, old.id]
    assert ids(min_stars=4) == [new.id]
    assert ids(min_stars=2) == [new.id, old.id]
    assert ids(date_from=date(2026, 11, 2)) == [new.id]
    assert ids(date_to=T0.date()) == [old.id]
    assert store.history.model_ids() == ["local/a", "openai/b"]


def test_history_table_shows_best_stars_and_errors(store):
    run = make_run(errors={"openai/gpt-4o-mini": "EndpointError: 500"})
    store.runs.save_run(run)
    store.ratings.add_rating(run.results[0].id, 4, session_id="s")
    (row,) = history_table(store.history.history_page())
    assert row["best stars"] == "★ 4.0" and row["errors"] == 1 and row["answers"] == 2
    assert row["when"] == "1 Nov 2026, 09:00 UTC"
    assert row["prompt"] == "Is the trail tent waterproof?"


def test_export_rows_round_trip_through_csv_and_json(store):
    run = make_run(variables={"question": "tent?"})
    store.runs.save_run(run)
    store.ratings.add_rating(run.results[1].id, 3, 'meh, "quoted"', session_id="s")
    rows = store.exports.export_results()
    assert [r["model"] for r in rows] == ["local/smollm2-135m-instruct", "openai/gpt-4o-mini"]
    assert rows[1]["stars_mean"] == 3.0 and rows[0]["config_hash"] == run.results[0].config_hash
    csv_text = to_csv(rows)
    assert csv_text.splitlines()[0].startswith("run_id,run_created_at,source,variables")
    assert '"{""question"": ""tent?""}"' in csv_text
    ratings = json.loads(json.dumps(store.exports.export_ratings()))
    assert ratings[0]["comment"] == 'meh, "quoted"'
    assert to_csv([]) == ""
