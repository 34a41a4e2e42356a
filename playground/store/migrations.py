"""Named, frozen migrations of the run store: each carries its own DDL, applied once, in order.

A migration never reads today's tables from schema.py: what it creates is written out here as
it was on the day it was added, so a database created today and one migrated since the first
release end up the same (tests/test_store_migrations.py replays them all and compares with
schema.metadata). A new table or column is a new function at the end, decorated @migration.

Each migration runs in one transaction together with its row in `migrations`; on PostgreSQL
(and on SQLite, whose DDL is transactional too) a process killed halfway leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from playground.errors import StoreError
from playground.store.database import Database

# The bookkeeping table itself, frozen like everything else here.
migrations_table = Table(
    "migrations",
    MetaData(),
    Column("name", String(100), primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

Migration = Callable[[Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []
# Any constant will do: every process that migrates this database takes the same lock.
_PG_MIGRATION_LOCK = 0x5057_4D31


def migration(func: Migration) -> Migration:
    """Register a named migration, to run after every migration defined before it."""
    MIGRATIONS.append((func.__name__, func))
    return func


@migration
def m001_initial(conn: Connection) -> None:
    """Runs, results, ratings, preferences, batches and the flow index."""
    md = MetaData()
    Table(
        "batches",
        md,
        Column("id", String(32), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("dataset", Text, nullable=True),
        Column("spec_json", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    runs = Table(
        "runs",
        md,
        Column("id", String(32), primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("source", String(20), nullable=False),
        Column("variables_json", Text, nullable=False),
        Column("store_name", String(100), nullable=True),
        Column("retrieval_json", Text, nullable=True),
        Column("batch_id", String(32), ForeignKey("batches.id"), nullable=True),
        Column("batch_row", Integer, nullable=True),
        Column("flow_name", String(100), nullable=True),
        Column("flow_version", Integer, nullable=True),
        Column("session_id", String(64), nullable=True),
    )
    results = Table(
        "results",
        md,
        Column("id", String(32), primary_key=True),
        Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("position", Integer, nullable=False),
        Column("variant_name", String(200), nullable=False),
        Column("variant_note", Text, nullable=True),
        Column("model_id", String(300), nullable=False),
        Column("params_json", Text, nullable=False),
        Column("system_template", Text, nullable=False),
        Column("user_template", Text, nullable=False),
        Column("messages_json", Text, nullable=False),
        Column("text", Text, nullable=False),
        Column("error", Text, nullable=True),
        Column("prompt_tokens", Integer, nullable=False),
        Column("completion_tokens", Integer, nullable=False),
        Column("usage_estimated", Boolean, nullable=False),
        Column("ttft_ms", Float, nullable=True),
        Column("latency_ms", Float, nullable=True),
        Column("tokens_per_s", Float, nullable=True),
        Column("cost_usd", Float, nullable=False),
        Column("groundedness", Float, nullable=True),
        Column("chunk_ids_json", Text, nullable=True),
        Column("moderation", Text, nullable=True),
        Column("config_hash", String(64), nullable=False),
    )
    ratings = Table(
        "ratings",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column(
            "result_id", String(32), ForeignKey("results.id", ondelete="CASCADE"), nullable=False
        ),
        Column("stars", Integer, nullable=True),
        Column("comment", Text, nullable=True),
        Column("session_id", String(64), nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    preferences = Table(
        "preferences",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        Column("winner_result_id", String(32), ForeignKey("results.id"), nullable=True),
        Column("loser_result_id", String(32), ForeignKey("results.id"), nullable=True),
        Column("outcome", String(20), nullable=False),
        Column("session_id", String(64), nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "flow_versions",
        md,
        Column("name", String(63), primary_key=True),
        Column("version", Integer, primary_key=True),
        Column("parent", Integer, nullable=True),
        Column("path", Text, nullable=False),
        Column("sha256", String(64), nullable=False),
        Column("description", Text, nullable=True),
        Column("model_id", String(300), nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "flow_labels",
        md,
        Column("name", String(63), primary_key=True),
        Column("label", String(63), primary_key=True),
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    history = Table(
        "flow_label_history",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(63), nullable=False),
        Column("label", String(63), nullable=False),
        Column("version", Integer, nullable=False),
        Column("previous_version", Integer, nullable=True),
        Column("moved_at", DateTime(timezone=True), nullable=False),
    )
    Index("ix_runs_created_at", runs.c.created_at)
    Index("ix_runs_batch", runs.c.batch_id)
    Index("ix_results_run", results.c.run_id)
    Index("ix_results_model", results.c.model_id)
    Index("ix_results_config", results.c.config_hash)
    Index("ix_results_created_at", results.c.created_at)
    Index("ix_ratings_result", ratings.c.result_id)
    Index("ix_preferences_run", preferences.c.run_id)
    Index("ix_label_history", history.c.name, history.c.label)
    md.create_all(conn)


def _create_indexes(conn: Connection, *ddl: str) -> None:
    # IF NOT EXISTS: databases made before migrations were frozen got these from m001.
    for statement in ddl:
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {statement}")


@migration
def m002_history_compare_indexes(conn: Connection) -> None:
    """Covering indexes for leaderboard aggregates, model filters and current ratings."""
    _create_indexes(
        conn,
        "ix_results_config_metrics ON results (config_hash, created_at, model_id, run_id, "
        "error, ttft_ms, latency_ms, cost_usd, groundedness, id)",
        "ix_results_moderation ON results (moderation)",
        "ix_results_id_config ON results (id, config_hash, model_id, created_at)",
        "ix_results_run_model ON results (run_id, model_id)",
        "ix_ratings_current ON ratings (result_id, session_id, id, stars)",
    )


@migration
def m003_preference_answer_indexes(conn: Connection) -> None:
    """Indexes on the answers a vote points at, for recounting only the touched pairs."""
    _create_indexes(
        conn,
        "ix_preferences_winner ON preferences (winner_result_id)",
        "ix_preferences_loser ON preferences (loser_result_id)",
    )


@migration
def m004_config_moderation_index(conn: Connection) -> None:
    """Index moderation results by configuration, for recomputing only touched ones."""
    _create_indexes(conn, "ix_results_config_moderation ON results (config_hash, moderation)")


@migration
def m005_batch_cells_and_cache(conn: Connection) -> None:
    """Batch status columns, one row per finished batch cell, and the answer cache."""
    timestamp = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    for column, kind in (
        ("status", "VARCHAR(20)"),
        ("total_cells", "INTEGER"),
        ("finished_at", timestamp),
    ):
        conn.exec_driver_sql(f"ALTER TABLE batches ADD COLUMN {column} {kind}")
    # Frozen copies of the two new tables, so a later change to the ones above is a new
    # migration rather than a silent difference between old and new databases.
    frozen = MetaData()
    Table(
        "batch_cells",
        frozen,
        Column("batch_id", String(32), primary_key=True),
        Column("config_index", Integer, primary_key=True),
        Column("row_index", Integer, primary_key=True),
        Column("repeat_index", Integer, primary_key=True),
        Column("run_id", String(32), nullable=False),
        Column("result_id", String(32), nullable=False),
        Column("status", String(12), nullable=False),
        Column("verdicts_json", Text, nullable=False),
        Column("cached", Integer, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "answer_cache",
        frozen,
        Column("key", String(64), primary_key=True),
        Column("text", Text, nullable=False),
        Column("prompt_tokens", Integer, nullable=False),
        Column("completion_tokens", Integer, nullable=False),
        Column("usage_estimated", Integer, nullable=False),
        Column("ttft_ms", Float, nullable=True),
        Column("latency_ms", Float, nullable=True),
        Column("tokens_per_s", Float, nullable=True),
        Column("cost_usd", Float, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    frozen.create_all(conn)


@migration
def m006_serve_traces(conn: Connection) -> None:
    """Online scores of served answers, alert state and alert events, and their indexes."""
    md = MetaData()
    Table(
        "online_scores",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("result_id", String(32), nullable=False),
        Column("run_id", String(32), nullable=False),
        Column("flow_name", String(100), nullable=True),
        Column("flow_version", Integer, nullable=True),
        Column("scorer", String(100), nullable=False),
        Column("status", String(12), nullable=False),  # pass | fail | unmeasured
        Column("score", Float, nullable=True),
        Column("reason", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )

    Table(
        "alert_state",
        md,
        Column("name", String(100), primary_key=True),
        Column("firing", Boolean, nullable=False),
        Column("value", Float, nullable=True),
        Column("since", DateTime(timezone=True), nullable=True),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )

    Table(
        "alert_events",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(100), nullable=False),
        Column("kind", String(12), nullable=False),  # breach | recovery
        Column("value", Float, nullable=True),
        Column("message", Text, nullable=False),
        Column("webhook", Text, nullable=True),
        Column("delivered", Boolean, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("last_error", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    md.create_all(conn)
    _create_indexes(
        conn,
        "ix_online_scores_created ON online_scores (created_at, flow_name)",
        "ix_online_scores_result ON online_scores (result_id)",
        "ix_alert_events_name ON alert_events (name, id)",
        "ix_runs_source_created ON runs (source, created_at)",
    )


@migration
def m007_results_response_format(conn: Connection) -> None:
    """The response format each answer was asked for (NULL for plain text answers)."""
    conn.exec_driver_sql("ALTER TABLE results ADD COLUMN response_format_json TEXT")


def _sqlite_has_trigram(conn: Connection) -> bool:
    # FTS5's trigram tokenizer came with SQLite 3.34; without it search stays on LIKE scans.
    try:
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE temp.trigram_probe USING fts5(x, tokenize='trigram')"
        )
    except Exception:  # any failure means "no trigram FTS5 in this SQLite"
        return False
    conn.exec_driver_sql("DROP TABLE temp.trigram_probe")
    return True


@migration
def m008_search_index_and_counts(conn: Connection) -> None:
    """Full-text search in the engine's own index, a maintained run count, a keyset index.

    SQLite: FTS5 tables with the trigram tokenizer over the answers, templates and variables
    (external content, kept in sync by triggers). PostgreSQL: pg_trgm GIN indexes, which serve
    the same ILIKE '%text%' the search already runs. Both: `store_counts` holds the number of
    runs, kept by triggers, so History does not count a million rows on every rerun.
    """
    conn.exec_driver_sql(
        "CREATE TABLE store_counts (name VARCHAR(40) NOT NULL, value BIGINT NOT NULL, "
        "PRIMARY KEY (name))"
    )
    conn.exec_driver_sql("INSERT INTO store_counts (name, value) SELECT 'runs', count(*) FROM runs")
    _create_indexes(conn, "ix_runs_created_id ON runs (created_at, id)")
    if conn.dialect.name == "postgresql":
        # Statement-level triggers with transition tables: a bulk insert updates the counter
        # once, not once per row.
        conn.exec_driver_sql(
            """
            CREATE FUNCTION playground_count_runs() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'INSERT' THEN
                UPDATE store_counts SET value = value + (SELECT count(*) FROM new_rows)
                WHERE name = 'runs';
              ELSE
                UPDATE store_counts SET value = value - (SELECT count(*) FROM old_rows)
                WHERE name = 'runs';
              END IF;
              RETURN NULL;
            END $$
            """
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER runs_count_insert AFTER INSERT ON runs REFERENCING NEW TABLE AS "
            "new_rows FOR EACH STATEMENT EXECUTE FUNCTION playground_count_runs()"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER runs_count_delete AFTER DELETE ON runs REFERENCING OLD TABLE AS "
            "old_rows FOR EACH STATEMENT EXECUTE FUNCTION playground_count_runs()"
        )
        # pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it.
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, table, column in (
            ("ix_results_text_trgm", "results", "text"),
            ("ix_results_user_template_trgm", "results", "user_template"),
            ("ix_results_system_template_trgm", "results", "system_template"),
            ("ix_runs_variables_trgm", "runs", "variables_json"),
        ):
            conn.exec_driver_sql(
                f"CREATE INDEX {name} ON {table} USING gin ({column} gin_trgm_ops)"
            )
        return
    for ddl in (
        "CREATE TRIGGER runs_count_insert AFTER INSERT ON runs BEGIN "
        "UPDATE store_counts SET value = value + 1 WHERE name = 'runs'; END",
        "CREATE TRIGGER runs_count_delete AFTER DELETE ON runs BEGIN "
        "UPDATE store_counts SET value = value - 1 WHERE name = 'runs'; END",
    ):
        conn.exec_driver_sql(ddl)
    if not _sqlite_has_trigram(conn):
        return
    for ddl in (
        "CREATE VIRTUAL TABLE results_fts USING fts5(text, user_template, system_template, "
        "content='results', content_rowid='rowid', tokenize='trigram')",
        "CREATE VIRTUAL TABLE runs_fts USING fts5(variables_json, content='runs', "
        "content_rowid='rowid', tokenize='trigram')",
        "INSERT INTO results_fts (results_fts) VALUES ('rebuild')",
        "INSERT INTO runs_fts (runs_fts) VALUES ('rebuild')",
        # Answers and runs are never updated, only inserted and deleted (with their run).
        "CREATE TRIGGER results_fts_insert AFTER INSERT ON results BEGIN "
        "INSERT INTO results_fts (rowid, text, user_template, system_template) "
        "VALUES (new.rowid, new.text, new.user_template, new.system_template); END",
        "CREATE TRIGGER results_fts_delete AFTER DELETE ON results BEGIN "
        "INSERT INTO results_fts (results_fts, rowid, text, user_template, system_template) "
        "VALUES ('delete', old.rowid, old.text, old.user_template, old.system_template); END",
        "CREATE TRIGGER runs_fts_insert AFTER INSERT ON runs BEGIN "
        "INSERT INTO runs_fts (rowid, variables_json) VALUES (new.rowid, new.variables_json); END",
        "CREATE TRIGGER runs_fts_delete AFTER DELETE ON runs BEGIN "
        "INSERT INTO runs_fts (runs_fts, rowid, variables_json) "
        "VALUES ('delete', old.rowid, old.variables_json); END",
    ):
        conn.exec_driver_sql(ddl)


# What one answer adds to its configuration's row in config_counts (SQLite and PostgreSQL).
_CONFIG_COLUMNS = "n_results, n_errors, sum_cost, n_grounded, sum_grounded, n_ttft, n_latency"
_CONFIG_TERMS = (
    "1",
    "CASE WHEN {r}.error IS NULL THEN 0 ELSE 1 END",
    "{r}.cost_usd",
    "CASE WHEN {r}.groundedness IS NULL THEN 0 ELSE 1 END",
    "COALESCE({r}.groundedness, 0)",
    "CASE WHEN {r}.error IS NULL AND {r}.ttft_ms IS NOT NULL THEN 1 ELSE 0 END",
    "CASE WHEN {r}.error IS NULL AND {r}.latency_ms IS NOT NULL THEN 1 ELSE 0 END",
)


def _config_terms(row: str, aggregate: str = "") -> str:
    return ", ".join(
        f"{aggregate}({term.format(r=row)})" if aggregate else term.format(r=row)
        for term in _CONFIG_TERMS
    )


@migration
def m009_row_counts_and_config_aggregates(conn: Connection) -> None:
    """Counters of answers, ratings and votes, and per-configuration sums, kept by triggers.

    Pages key their caches by what is stored; counting 2.5 million answers to learn that took
    longer than the page. Compare reads answers, errors, cost and honesty per configuration
    from `config_counts` (updated in the transaction that stores the answer) and takes exact
    medians from two partial indexes, instead of re-reading every answer of a configuration.
    """
    pg = conn.dialect.name == "postgresql"
    for name in ("results", "ratings", "preferences"):
        conn.exec_driver_sql(
            f"INSERT INTO store_counts (name, value) SELECT '{name}', count(*) FROM {name}"
        )
    real = "DOUBLE PRECISION" if pg else "FLOAT"
    conn.exec_driver_sql(
        "CREATE TABLE config_counts (config_hash VARCHAR(64) NOT NULL, "
        "model_id VARCHAR(300) NOT NULL, n_results BIGINT NOT NULL, n_errors BIGINT NOT NULL, "
        f"sum_cost {real} NOT NULL, n_grounded BIGINT NOT NULL, sum_grounded {real} NOT NULL, "
        "n_ttft BIGINT NOT NULL, n_latency BIGINT NOT NULL, "
        # stars are kept by the rating write path: the latest stars per (answer, session)
        "stars_n BIGINT DEFAULT 0 NOT NULL, stars_sum BIGINT DEFAULT 0 NOT NULL, "
        "stars_sumsq BIGINT DEFAULT 0 NOT NULL, PRIMARY KEY (config_hash))"
    )
    conn.exec_driver_sql(
        "CREATE TABLE pair_counts (winner_config VARCHAR(64) NOT NULL, "
        "loser_config VARCHAR(64) NOT NULL, outcome VARCHAR(20) NOT NULL, n BIGINT NOT NULL, "
        "PRIMARY KEY (winner_config, loser_config, outcome))"
    )
    conn.exec_driver_sql(
        f"INSERT INTO config_counts (config_hash, model_id, {_CONFIG_COLUMNS}) "
        f"SELECT config_hash, min(model_id), {_config_terms('results', 'sum')} "
        "FROM results GROUP BY config_hash"
    )
    conn.exec_driver_sql(
        "UPDATE config_counts SET stars_n = s.n, stars_sum = s.total, stars_sumsq = s.total_sq "
        "FROM (SELECT r.config_hash, count(*) AS n, sum(g.stars) AS total, "
        "sum(g.stars * g.stars) AS total_sq FROM ratings g JOIN results r ON r.id = g.result_id "
        "WHERE g.id IN (SELECT max(id) FROM ratings WHERE stars IS NOT NULL "
        "GROUP BY result_id, session_id) GROUP BY r.config_hash) s "
        "WHERE config_counts.config_hash = s.config_hash"
    )
    # The current vote per (session, pair of answers), counted per pair of configurations.
    conn.exec_driver_sql(
        "INSERT INTO pair_counts (winner_config, loser_config, outcome, n) "
        "SELECT w.config_hash, l.config_hash, p.outcome, count(*) FROM preferences p "
        "JOIN results w ON w.id = p.winner_result_id JOIN results l ON l.id = p.loser_result_id "
        "WHERE p.id IN (SELECT max(id) FROM preferences GROUP BY session_id, "
        "CASE WHEN winner_result_id < loser_result_id THEN winner_result_id "
        "ELSE loser_result_id END, CASE WHEN winner_result_id < loser_result_id "
        "THEN loser_result_id ELSE winner_result_id END) "
        "GROUP BY w.config_hash, l.config_hash, p.outcome"
    )
    for metric in ("ttft", "latency"):
        conn.exec_driver_sql(
            f"CREATE INDEX ix_results_config_{metric} ON results (config_hash, {metric}_ms) "
            "WHERE error IS NULL"
        )
    add = ", ".join(f"{c} = config_counts.{c} + excluded.{c}" for c in _CONFIG_COLUMNS.split(", "))
    if pg:
        conn.exec_driver_sql(
            """
            CREATE FUNCTION playground_count_rows() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'INSERT' THEN
                UPDATE store_counts SET value = value + (SELECT count(*) FROM new_rows)
                WHERE name = TG_ARGV[0];
              ELSE
                UPDATE store_counts SET value = value - (SELECT count(*) FROM old_rows)
                WHERE name = TG_ARGV[0];
              END IF;
              RETURN NULL;
            END $$
            """
        )
        subtract = ", ".join(
            f"{c} = config_counts.{c} - gone.{c}" for c in _CONFIG_COLUMNS.split(", ")
        )
        conn.exec_driver_sql(
            f"""
            CREATE FUNCTION playground_count_configs() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'INSERT' THEN
                INSERT INTO config_counts (config_hash, model_id, {_CONFIG_COLUMNS})
                SELECT config_hash, min(model_id), {_config_terms("new_rows", "sum")}
                FROM new_rows GROUP BY config_hash
                ON CONFLICT (config_hash) DO UPDATE SET {add};
              ELSE
                UPDATE config_counts SET {subtract}
                FROM (SELECT config_hash, {
                ", ".join(
                    f"sum({t.format(r='old_rows')}) AS {c}"
                    for t, c in zip(_CONFIG_TERMS, _CONFIG_COLUMNS.split(", "), strict=True)
                )
            } FROM old_rows GROUP BY config_hash) gone
                WHERE config_counts.config_hash = gone.config_hash;
              END IF;
              RETURN NULL;
            END $$
            """
        )
        for table in ("results", "ratings", "preferences"):
            for op, ref in (
                ("INSERT", "NEW TABLE AS new_rows"),
                ("DELETE", "OLD TABLE AS old_rows"),
            ):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER {table}_count_{op.lower()} AFTER {op} ON {table} "
                    f"REFERENCING {ref} FOR EACH STATEMENT "
                    f"EXECUTE FUNCTION playground_count_rows('{table}')"
                )
        for op, ref in (("INSERT", "NEW TABLE AS new_rows"), ("DELETE", "OLD TABLE AS old_rows")):
            conn.exec_driver_sql(
                f"CREATE TRIGGER results_config_{op.lower()} AFTER {op} ON results "
                f"REFERENCING {ref} FOR EACH STATEMENT "
                "EXECUTE FUNCTION playground_count_configs()"
            )
        return
    for ddl in SQLITE_M009_TRIGGERS:
        conn.exec_driver_sql(ddl)


# Frozen here; schema.SQLITE_SEARCH_DDL carries today's copy.
SQLITE_M009_TRIGGERS = [
    *(
        ddl
        for table in ("results", "ratings", "preferences")
        for ddl in (
            f"CREATE TRIGGER {table}_count_insert AFTER INSERT ON {table} BEGIN "
            f"UPDATE store_counts SET value = value + 1 WHERE name = '{table}'; END",
            f"CREATE TRIGGER {table}_count_delete AFTER DELETE ON {table} BEGIN "
            f"UPDATE store_counts SET value = value - 1 WHERE name = '{table}'; END",
        )
    ),
    "CREATE TRIGGER results_config_insert AFTER INSERT ON results BEGIN "
    f"INSERT INTO config_counts (config_hash, model_id, {_CONFIG_COLUMNS}) "
    f"VALUES (new.config_hash, new.model_id, {_config_terms('new')}) "
    "ON CONFLICT (config_hash) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in _CONFIG_COLUMNS.split(", "))
    + "; END",
    "CREATE TRIGGER results_config_delete AFTER DELETE ON results BEGIN "
    "UPDATE config_counts SET "
    + ", ".join(
        f"{c} = {c} - ({t.format(r='old')})"
        for t, c in zip(_CONFIG_TERMS, _CONFIG_COLUMNS.split(", "), strict=True)
    )
    + " WHERE config_hash = old.config_hash; END",
]


@migration
def m010_conversations(conn: Connection) -> None:
    """Conversations: a run may follow up another; answers keep few-shot examples and parent."""
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN parent_run_id VARCHAR(32)")
    conn.exec_driver_sql("ALTER TABLE results ADD COLUMN examples_json TEXT")
    conn.exec_driver_sql("ALTER TABLE results ADD COLUMN parent_result_id VARCHAR(32)")
    _create_indexes(conn, "ix_runs_parent ON runs (parent_run_id)")


@migration
def m011_answer_stars(conn: Connection) -> None:
    """Current stars per rated answer, kept by the rating write path, with a best-first index.

    Compare's "best answer" of a configuration recounted the current stars of its every answer
    (56,000 at a million runs: 0.8 s); with this table it is the first row of an index range,
    and History's "rated at least" filter is one index seek per run.
    """
    pg = conn.dialect.name == "postgresql"
    real = "DOUBLE PRECISION" if pg else "FLOAT"
    when = "TIMESTAMP WITH TIME ZONE" if pg else "DATETIME"
    conn.exec_driver_sql(
        "CREATE TABLE answer_stars (result_id VARCHAR(32) NOT NULL, run_id VARCHAR(32) NOT NULL, "
        "config_hash VARCHAR(64) NOT NULL, failed BOOLEAN NOT NULL, "
        f"created_at {when} NOT NULL, n BIGINT NOT NULL, total BIGINT NOT NULL, "
        f"mean {real} NOT NULL, PRIMARY KEY (result_id))"
    )
    conn.exec_driver_sql(
        "INSERT INTO answer_stars "
        "(result_id, run_id, config_hash, failed, created_at, n, total, mean) "
        "SELECT g.result_id, r.run_id, r.config_hash, r.error IS NOT NULL, r.created_at, count(*), "
        f"sum(g.stars), CAST(sum(g.stars) AS {real}) / count(*) "
        "FROM ratings g JOIN results r ON r.id = g.result_id "
        "WHERE g.id IN (SELECT max(id) FROM ratings WHERE stars IS NOT NULL "
        "GROUP BY result_id, session_id) "
        "GROUP BY g.result_id, r.run_id, r.config_hash, r.error IS NOT NULL, r.created_at"
    )
    _create_indexes(
        conn,
        "ix_answer_stars_best ON answer_stars (config_hash, failed, mean, created_at, result_id)",
        "ix_answer_stars_run ON answer_stars (run_id, mean)",
    )
    # A configuration's sample answer (its smallest id) in one index seek, not a read of
    # every answer it has: the first read of Compare in a process took 1.6 s on that alone.
    conn.exec_driver_sql("DROP INDEX ix_results_config")
    conn.exec_driver_sql("CREATE INDEX ix_results_config ON results (config_hash, id)")
    if (
        not pg
        and conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
        ).scalar_one()
    ):
        # An analysed database: without its own statistics SQLite would take the new index
        # for a few rows per configuration and sort all of them for Compare's newest answers.
        conn.exec_driver_sql("ANALYZE ix_results_config")


# Frozen here; schema.SQLITE_SEARCH_DDL's fresh databases take the same list.
SQLITE_M012_TRIGGERS = [
    f"CREATE TRIGGER {table}_deletions AFTER DELETE ON {table} BEGIN "
    "UPDATE store_counts SET value = value + 1 WHERE name = 'deletions'; END"
    for table in ("runs", "results")
]


@migration
def m012_deletion_marker(conn: Connection) -> None:
    """A counter that every delete of runs or answers moves, whichever process deletes.

    History keeps a filtered count that reached its cap across reruns: new runs only add
    matches, so it stays capped, but a delete may take it below the cap. Triggers, not the
    store's delete methods, so that no delete path (a cascade, a script, psql) is missed.
    """
    conn.exec_driver_sql("INSERT INTO store_counts (name, value) VALUES ('deletions', 0)")
    if conn.dialect.name == "postgresql":
        # Statement-level like m008/m009's counters; a DELETE that removed nothing (delete_run
        # of an unknown id) leaves the marker alone, so kept counts stay trusted.
        conn.exec_driver_sql(
            """
            CREATE FUNCTION playground_count_deletions() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF EXISTS (SELECT 1 FROM old_rows) THEN
                UPDATE store_counts SET value = value + 1 WHERE name = 'deletions';
              END IF;
              RETURN NULL;
            END $$
            """
        )
        for table in ("runs", "results"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table}_deletions AFTER DELETE ON {table} "
                "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
                "EXECUTE FUNCTION playground_count_deletions()"
            )
        return
    for ddl in SQLITE_M012_TRIGGERS:
        conn.exec_driver_sql(ddl)


# -- applying them ---------------------------------------------------------------------------


def known_names() -> list[str]:
    """Every migration this code knows, oldest first."""
    return [name for name, _ in MIGRATIONS]


def applied(conn: Connection) -> list[str]:
    """Names of the migrations recorded in this database (empty for a new database)."""
    if not conn.dialect.has_table(conn, migrations_table.name):
        return []
    rows = conn.execute(
        select(migrations_table.c.name).order_by(migrations_table.c.applied_at)
    ).scalars()
    return list(rows)


def pending(conn: Connection) -> list[str]:
    """Names of the migrations not yet applied, in the order they will run (reads only)."""
    done = set(applied(conn))
    return [name for name in known_names() if name not in done]


def check_not_newer(names: list[str], where: str) -> None:
    """Refuse a database that a newer version of the code has migrated."""
    unknown = [name for name in names if name not in known_names()]
    if unknown:
        raise StoreError(
            f"{where} is at a newer revision ({unknown[-1]}) than this version of Prompt "
            f"Playground knows (up to {known_names()[-1]}); upgrade prompt-playground "
            "before using it."
        )


def _lock(conn: Connection) -> None:
    # Two processes starting at once against one PostgreSQL database migrate one at a time;
    # SQLite's BEGIN IMMEDIATE already serialises them.
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")


def migrate(db: Database) -> list[str]:
    """Apply every pending migration, each in its own transaction; return the names applied."""
    with db.write() as conn:
        _lock(conn)
        migrations_table.create(conn, checkfirst=True)
    with db.read() as conn:
        todo = pending(conn)
        check_not_newer(applied(conn), db.where)
    done: list[str] = []
    steps = dict(MIGRATIONS)
    for name in todo:
        with db.write() as conn:
            _lock(conn)
            if name not in pending(conn):  # another process applied it while we waited
                continue
            steps[name](conn)
            conn.execute(migrations_table.insert().values(name=name, applied_at=datetime.now(UTC)))
        done.append(name)
    return done
