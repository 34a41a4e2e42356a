"""History search through the engine's own index (FTS5 trigram, pg_trgm): what LIKE found.

One test body per backend. Texts typed by a user are taken literally: LIKE wildcards, quotes
and FTS operators neither error nor widen the match; deleted runs leave the index.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from playground.errors import NotFoundError
from playground.history import HistoryFilters
from playground.store import Store
from playground.store.filters import SMALL_MATCH_SET, has_fts
from tests.history_fixtures import T0, make_run


def found(store: Store, text: str) -> list[str]:
    """Run ids matching the search, newest first."""
    return [r.id for r in store.history.history_page(HistoryFilters(text=text)).runs]


def save(store: Store, **kwargs: object) -> str:
    run = make_run(**kwargs)  # type: ignore[arg-type]
    store.runs.save_run(run)
    return run.id


def test_the_search_tables_exist_on_sqlite(backend_store: Store):
    if backend_store.backend != "sqlite":
        pytest.skip("FTS5 is SQLite's; PostgreSQL searches through pg_trgm indexes")
    with backend_store.db.read() as conn:
        assert has_fts(conn)


def test_substrings_match_inside_words_in_any_case(backend_store: Store):
    tent = save(backend_store, texts=("Pitch the tent facing away from wind.", "Unsure."))
    stove = save(backend_store, prompt="Which stove boils fastest?", created_at=T0 + timedelta(1))
    winter = save(backend_store, variables={"season": "Winterreise"}, created_at=T0 + timedelta(2))

    assert found(backend_store, "AWAY FROM WIND") == [tent]
    assert found(backend_store, "acing awa") == [tent]  # inside words
    assert found(backend_store, "boils") == [stove]
    assert found(backend_store, "winterr") == [winter]  # variables are searched too
    assert found(backend_store, "waterproof") == [winter, stove, tent]  # every answer says it
    assert found(backend_store, "no such words") == []


def test_short_queries_still_find_substrings(backend_store: Store):
    # Fewer than 3 characters has no trigram: the search falls back to LIKE and still works.
    ab = save(backend_store, texts=("xq marks the spot", "ok"), models=("a/1", "b/2"))
    save(backend_store, texts=("nothing here", "nor here"), models=("a/1", "b/2"))

    assert found(backend_store, "xq") == [ab]
    assert found(backend_store, "Q") == [ab]
    assert len(found(backend_store, "e")) == 2


@pytest.mark.parametrize(
    "typed",
    [
        "50% off",
        "snake_case",
        'say "hi"',
        "it's",
        "tent AND stove",
        "NEAR(tent stove)",
        "tent*",
        "* OR *",
        "col:umn",
        "(a) -b ^c",
        "\\back\\slash",
    ],
)
def test_special_characters_and_operators_match_literally(backend_store: Store, typed: str):
    literal = save(backend_store, texts=(f"before {typed} after", "plain"), models=("a/1", "b/2"))
    # Text that a wildcard or an operator would match, but not the typed text itself.
    save(
        backend_store,
        texts=("50x off snakeXcase tent stove say hi its column a b c backslash", "x"),
        models=("a/1", "b/2"),
    )

    assert found(backend_store, typed) == [literal]


def test_common_and_rare_texts_give_what_like_gives(backend_store: Store):
    # Above SMALL_MATCH_SET index rows the search walks runs instead of reading the matches:
    # both ways must agree. Many small runs make "common" common without a slow test.
    if backend_store.backend == "sqlite":
        import playground.store.filters as filters

        monkey = pytest.MonkeyPatch()
        monkey.setattr(filters, "SMALL_MATCH_SET", 5)
    try:
        ids = [
            save(
                backend_store,
                texts=(f"common answer {i}", "other"),
                models=("a/1", "b/2"),
                created_at=T0 + timedelta(minutes=i),
            )
            for i in range(12)
        ]
        rare = save(backend_store, texts=("a rare one", "x"), models=("a/1", "b/2"))
        assert found(backend_store, "common answer") == list(reversed(ids))[:20]
        assert found(backend_store, "rare one") == [rare]
        page = backend_store.history.history_page(HistoryFilters(text="common"), page_size=5)
        assert (page.total, page.more) == (12, False)
        second = backend_store.history.history_page(
            HistoryFilters(text="common"), page=2, page_size=5, after=page.last_key
        )
        assert [r.id for r in second.runs] == list(reversed(ids))[5:10]
    finally:
        if backend_store.backend == "sqlite":
            monkey.undo()
    assert SMALL_MATCH_SET > 5


def test_deleted_runs_disappear_from_search_and_counts(backend_store: Store):
    kept = save(backend_store, texts=("the blue stove", "x"), models=("a/1", "b/2"))
    gone = save(
        backend_store,
        texts=("the blue stove again", "x"),
        models=("a/1", "b/2"),
        variables={"colour": "cerulean"},
        created_at=T0 + timedelta(1),
    )
    backend_store.ratings.add_rating(
        backend_store.runs.get_run(gone).results[0].id, 5, session_id="s"
    )
    assert found(backend_store, "blue stove") == [gone, kept]

    backend_store.runs.delete_run(gone)

    assert found(backend_store, "blue stove") == [kept]
    assert found(backend_store, "cerulean") == []
    assert backend_store.runs.count_runs() == 1
    assert backend_store.history.history_page().total == 1
    with pytest.raises(NotFoundError):
        backend_store.runs.delete_run(gone)


def test_pages_continue_from_the_last_key_and_jumps_land_on_the_same_rows(
    backend_store: Store,
):
    ids = [
        save(backend_store, created_at=T0 + timedelta(minutes=i // 2), models=("a/1",))
        for i in range(23)
    ]  # pairs share a timestamp: the id breaks the tie
    newest_first = [r.id for r in backend_store.history.history_page(page_size=30).runs]
    assert sorted(newest_first) == sorted(ids)
    first = backend_store.history.history_page(page_size=10)
    second = backend_store.history.history_page(page=2, page_size=10, after=first.last_key)
    jumped = backend_store.history.history_page(page=3, page_size=10)

    assert [r.id for r in first.runs] == newest_first[:10]
    assert [r.id for r in second.runs] == newest_first[10:20]
    assert [r.id for r in jumped.runs] == newest_first[20:]
    assert (first.total, first.pages, first.more) == (23, 3, False)


def test_each_way_a_search_is_answered_finds_what_like_finds(backend_store: Store):
    # PostgreSQL answers a search by walking runs newest first (checking long answers inline,
    # or through the text index when few contain the word) or by looking matches up in the
    # trigram indexes, depending on how common the text is among the newest runs. Every way
    # must give the runs, order and count a plain substring check gives.
    runs = []
    for i in range(30):
        run = make_run(
            prompt="Summarise the WARRANTY of {{ item }}" if i % 3 else "Which {{ item }}?",
            texts=(f"A light answer {i}", f"Also light, number {i}"),
            models=("a/1", "b/2"),
            variables={"item": "zebra stove" if i == 7 else "tent"},
            created_at=T0 + timedelta(minutes=i),
        )
        backend_store.runs.save_run(run)
        runs.append(run)
    newest_first = list(reversed(runs))

    def expected(text: str) -> list[str]:
        def hit(run: object) -> bool:
            fields = [str(run.variables)] + [  # type: ignore[attr-defined]
                field
                for r in run.results  # type: ignore[attr-defined]
                for field in (r.user_template, r.system_template, r.text)
            ]
            return any(text.lower() in field.lower() for field in fields)

        return [run.id for run in newest_first if hit(run)]

    for text in ("warranty", "LIGHT", "zebra", "number 1", "no such thing"):
        want = expected(text)
        first = backend_store.history.history_page(HistoryFilters(text=text), page_size=5)
        assert [r.id for r in first.runs] == want[:5], text
        assert (first.total, first.more) == (len(want), False), text
        second = backend_store.history.history_page(
            HistoryFilters(text=text), page=2, page_size=5, after=first.last_key
        )
        assert [r.id for r in second.runs] == want[5:10], text
        jumped = backend_store.history.history_page(HistoryFilters(text=text), page=3, page_size=5)
        assert [r.id for r in jumped.runs] == want[10:15], text


def test_a_search_counts_from_the_index_what_the_walk_over_runs_counts(
    backend_store: Store, monkeypatch: pytest.MonkeyPatch
):
    # On SQLite a search alone is counted from the FTS5 matches; walking runs (the count
    # with any other filter, and PostgreSQL's) must give the same numbers, capped alike.
    import playground.store.history as history

    monkeypatch.setattr(history, "COUNT_CAP", 6)
    for i in range(9):
        save(
            backend_store,
            texts=(f"Tent answer {i}", "the TENT again"),  # two matching answers, one run
            models=("a/1", "b/2"),
            variables={"product": "trail tent"} if i % 3 else {},
            created_at=T0 + timedelta(minutes=i),
        )
    save(backend_store, variables={"product": "summit tent"}, texts=("x", "y"))  # only here
    save(backend_store, texts=("Été", "ÉTÉ"), prompt="no match", models=("a/1", "b/2"))
    save(backend_store, texts=("tenx", "ten t"), prompt="no match", models=("a/1", "b/2"))

    def counted(text: str, page_size: int) -> tuple[int, bool]:
        page = backend_store.history.history_page(HistoryFilters(text=text), page_size=page_size)
        return page.total, page.more

    cases = [
        (text, size) for text in ("tent", "summit tent", "été", "none such") for size in (1, 5, 20)
    ]
    indexed = [counted(text, size) for text, size in cases]
    monkeypatch.setattr(history, "indexed_run_count", lambda *args: None)
    backend_store.history._capped.clear()  # capped counts kept from above would skip the walk
    assert indexed == [counted(text, size) for text, size in cases]
    assert counted("tent", 1) == (7, True) and counted("tent", 5) == (10, False)
