"""SQL building blocks shared by the rating, history, leaderboard and export queries."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy import table as table_clause

from playground.compare import ConfigFilters
from playground.history import HistoryFilters, day_after, day_start
from playground.store.schema import answer_stars, preferences, ratings, results, runs, store_counts


def contains(column: Any, text: str, dialect: str) -> ColumnElement[bool]:
    """Case-insensitive substring match; LIKE wildcards in the text are taken literally."""
    if dialect == "postgresql":
        # ~* on a "***=" (literal) pattern: the same match, served by the same pg_trgm index,
        # but ILIKE runs lower() over every row it checks, 3-4x the cost of the regex matcher.
        return column.regexp_match(f"***={text}", flags="i")
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    if dialect == "sqlite":
        # SQLite's LIKE already ignores ASCII case; ilike() would add lower() on every row.
        return column.like(pattern, escape="\\")
    return column.ilike(pattern, escape="\\")


def current_rating_ids() -> Select[Any]:
    """Ids of the rating rows that count: the latest row with stars per (answer, session)."""
    return (
        select(func.max(ratings.c.id))
        .where(ratings.c.stars.is_not(None))
        .group_by(ratings.c.result_id, ratings.c.session_id)
    )


def current_vote_ids() -> Select[Any]:
    """Ids of the preference rows that count: the latest per (session, pair of answers).

    A vote covers the answers shown together (one variant's row in the Playground), so a
    second vote on other answers of the same run adds to the first; a new vote on the same
    answers replaces the earlier one.
    """
    win, lose = preferences.c.winner_result_id, preferences.c.loser_result_id
    first = case((win < lose, win), else_=lose)
    second = case((win < lose, lose), else_=win)
    return select(func.max(preferences.c.id)).group_by(preferences.c.session_id, first, second)


# Below this many trigrams a phrase has no trigram at all: FTS5 cannot look it up.
MIN_INDEXED_CHARS = 3
# When the index holds fewer matching rows than this, their set is small enough to read whole;
# above it the text is common, and walking runs newest first finds a page after a few rows.
SMALL_MATCH_SET = 20_000


# A filtered History count stops here (past the rows already paged through): beyond it the page
# says "1,000+ runs match" instead of counting every match of a common word on every rerun.
COUNT_CAP = 1000
# PostgreSQL: how many of the newest runs a search checks to judge how common its text is.
PROBE_RUNS = 200


def fts_phrase(text: str) -> str:
    """The text as one FTS5 phrase: operators (AND, NEAR, *, quotes) are taken literally."""
    return '"' + text.replace('"', '""') + '"'


def has_fts(conn: Connection) -> bool:
    """Whether this SQLite database has the trigram search tables of m008."""
    return (
        conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('results_fts', 'runs_fts')"
        ).scalar_one()
        == 2
    )


def _fts_rowids(table: str, phrase: str) -> Any:
    return (
        text(f"SELECT rowid FROM {table} WHERE {table} MATCH :{table}_q")
        .bindparams(**{f"{table}_q": phrase})
        .columns(column("rowid"))
    )


def _fts_matches(conn: Connection, phrase: str, limit: int) -> int:
    """Rows of both search tables that match, counted up to `limit` (a cheap probe)."""
    total = 0
    for table in ("results_fts", "runs_fts"):
        total += int(
            conn.execute(
                text(
                    f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {table} MATCH :q LIMIT :n)"
                ),
                {"q": phrase, "n": limit},
            ).scalar_one()
        )
    return total


def _in_answers(text_: str, dialect: str) -> list[ColumnElement[bool]]:
    return [  # the short templates first: an answer they match skips its long text
        contains(results.c.user_template, text_, dialect),
        contains(results.c.system_template, text_, dialect),
        contains(results.c.text, text_, dialect),
    ]


def indexed_run_count(conn: Connection, text_: str, cap: int) -> int | None:
    """Runs whose answers, templates or variables contain the text, counted up to `cap` by
    reading the FTS5 index's matches in order (each checked with LIKE, as text_condition
    does); None where there is no index for this text.

    A common text matched the count's walk over runs in only 1 answer of 5: counting 1,020
    runs read and LIKE-checked some 12,000 answers. The index's matches nearly all hold.
    """
    if conn.dialect.name != "sqlite" or len(text_) < MIN_INDEXED_CHARS or not has_fts(conn):
        return None
    phrase = fts_phrase(text_)
    found: set[str] = set()
    for fts, owner, key, checks in (
        ("results_fts", results, results.c.run_id, _in_answers(text_, "sqlite")),
        ("runs_fts", runs, runs.c.id, [contains(runs.c.variables_json, text_, "sqlite")]),
    ):
        index = table_clause(fts, column("rowid"))
        matches = conn.execute(
            select(key)
            .distinct()  # SQLite keeps reading the index in order, dropping repeats as it goes
            .select_from(index.join(owner, literal_column(f"{owner.name}.rowid") == index.c.rowid))
            .where(literal_column(fts).op("MATCH")(phrase), or_(*checks))
            .limit(cap)
        )
        for (run_id,) in matches:
            found.add(run_id)
            if len(found) >= cap:
                matches.close()
                return cap
    return len(found)


def text_condition(text_: str, dialect: str, conn: Connection | None) -> ColumnElement[bool]:
    """Runs whose answers, templates or variables contain the text (any case, literally).

    On SQLite with the FTS5 trigram tables, a text of 3+ characters that few rows contain is
    looked up in the index (and the candidates checked with LIKE, so the result is exactly
    what LIKE finds). Otherwise each run is checked on its own answers: with the pages
    walking runs newest first, a common text fills a page after a few runs. On PostgreSQL
    a probe of the newest runs chooses between its pg_trgm indexes and that walk.
    """
    in_answers = _in_answers(text_, dialect)
    in_variables = contains(runs.c.variables_json, text_, dialect)
    if (
        dialect == "sqlite"
        and conn is not None
        and len(text_) >= MIN_INDEXED_CHARS
        and has_fts(conn)
    ):
        phrase = fts_phrase(text_)
        if _fts_matches(conn, phrase, SMALL_MATCH_SET) < SMALL_MATCH_SET:
            answers = select(results.c.run_id).where(
                literal_column("results.rowid").in_(_fts_rowids("results_fts", phrase)),
                or_(*in_answers),
            )
            return or_(
                runs.c.id.in_(answers),
                and_(
                    literal_column("runs.rowid").in_(_fts_rowids("runs_fts", phrase)),
                    in_variables,
                ),
            )
    if dialect == "postgresql" and conn is not None:
        return _pg_text_condition(conn, text_)
    answer_matches = (
        select(literal(1)).where(results.c.run_id == runs.c.id, or_(*in_answers)).exists()
    )
    return or_(in_variables, answer_matches)


class _Probe(NamedTuple):
    """What the newest runs say about a text: how many match, and how many answers' texts do."""

    runs: int
    answers: int
    text_hits: int
    stored_runs: int
    stored_answers: int


def _probe(conn: Connection, text_: str) -> _Probe:
    """Count the matches among the answers of the newest PROBE_RUNS runs (one cheap pass)."""
    newest = (
        select(runs.c.id, runs.c.variables_json)
        .order_by(runs.c.created_at.desc(), runs.c.id.desc())
        .limit(PROBE_RUNS)
        .subquery("newest")
    )
    in_text = contains(results.c.text, text_, "postgresql")
    hit = or_(
        contains(newest.c.variables_json, text_, "postgresql"),
        contains(results.c.user_template, text_, "postgresql"),
        contains(results.c.system_template, text_, "postgresql"),
        in_text,
    )
    stored = {
        name: select(store_counts.c.value).where(store_counts.c.name == name).scalar_subquery()
        for name in ("runs", "results")
    }
    row = conn.execute(
        select(
            func.count(results.c.run_id.distinct()).filter(hit),
            func.count(),
            func.count().filter(in_text),
            stored["runs"],
            stored["results"],
        ).select_from(newest.join(results, results.c.run_id == newest.c.id))
    ).one()
    return _Probe(*(int(value or 0) for value in row))


def _pg_text_condition(conn: Connection, text_: str) -> ColumnElement[bool]:
    """Walk runs newest first checking their own answers, or look matches up in pg_trgm.

    Left to itself the planner turns the correlated EXISTS into one hashed set of every
    matching answer even under LIMIT 25 (it costs the subplan for every run, not the few a
    page reads): 50,000 answers re-checked for a word in a fifth of 100,000 runs, ~1 s.
    """

    def matches(column: Any) -> ColumnElement[bool]:
        return contains(column, text_, "postgresql")

    probe = _probe(conn, text_)
    in_variables = matches(runs.c.variables_json)
    in_templates = [matches(results.c.user_template), matches(results.c.system_template)]
    stored_runs = max(probe.stored_runs, 1)
    probed = max(min(PROBE_RUNS, stored_runs), 1)
    share = probe.runs / probed
    # Runs each way reads: the capped count walks until COUNT_CAP matches (or the end); the
    # lookup re-checks every match, for the page and again for the count.
    if not share or min(stored_runs, COUNT_CAP / share) >= 2 * share * stored_runs:
        matched = runs.alias("matched")
        return runs.c.id.in_(
            union_all(
                select(results.c.run_id).where(or_(*in_templates, matches(results.c.text))),
                select(matched.c.id).where(matches(matched.c.variables_json)),
            )
        )
    walked = probe.answers / probed * min(stored_runs, COUNT_CAP / share)  # answers it checks
    if probe.text_hits / max(probe.answers, 1) * probe.stored_answers * 2 < walked:
        # Few answers contain it: the runs the text index finds, read once (a hashed set on
        # runs: inside the EXISTS the planner would cost its build once per run, and JIT-compile
        # the query), instead of the regex over every long answer the walk passes.
        texts = results.alias("texts")
        in_texts = [runs.c.id.in_(select(texts.c.run_id).where(matches(texts.c.text)))]
        in_answers = in_templates
    else:
        in_texts, in_answers = [], [*in_templates, matches(results.c.text)]
    return or_(
        in_variables,
        *in_texts,
        # OFFSET 0 keeps PostgreSQL from rewriting the EXISTS into that hashed set.
        select(literal(1))
        .where(results.c.run_id == runs.c.id, or_(*in_answers))
        .offset(0)
        .exists(),
    )


def run_conditions(
    filters: HistoryFilters, dialect: str, conn: Connection | None = None
) -> list[ColumnElement[bool]]:
    """WHERE conditions on `runs` for these filters; `conn` lets search ask the FTS index."""
    conditions: list[ColumnElement[bool]] = []
    if filters.date_from:
        conditions.append(runs.c.created_at >= day_start(filters.date_from))
    if filters.date_to:
        conditions.append(runs.c.created_at < day_after(filters.date_to))
    if filters.min_stars:
        # m011 keeps each rated answer's mean of current stars with its run: one seek in
        # ix_answer_stars_run per run walked, instead of regrouping its answers' ratings.
        # First: it rejects most runs, and SQLite checks the EXISTS terms in this order.
        conditions.append(
            select(literal(1))
            .where(answer_stars.c.run_id == runs.c.id, answer_stars.c.mean >= filters.min_stars)
            .exists()
        )
    if filters.model_id:
        # Correlated (EXISTS), not IN: pages walk runs newest first and stop after one page.
        conditions.append(
            select(literal(1))
            .where(results.c.run_id == runs.c.id, results.c.model_id == filters.model_id)
            .exists()
        )
    wanted = filters.text.strip()
    if wanted:
        conditions.append(text_condition(wanted, dialect, conn))
    return conditions


def result_conditions(filters: ConfigFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.model_id:
        conditions.append(results.c.model_id == filters.model_id)
    if filters.date_from:
        conditions.append(results.c.created_at >= day_start(filters.date_from))
    if filters.date_to:
        conditions.append(results.c.created_at < day_after(filters.date_to))
    return conditions
