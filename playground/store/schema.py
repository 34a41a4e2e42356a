"""Tables of the run store as they are today (SQLAlchemy Core); migrations.py builds them.

A run is one click of Run (app, CLI, flow or one row of a batch); it has one result per
variant x model cell. Ratings and pairwise preferences attach to results; a batch groups runs;
flow versions are indexed here while their YAML lives on disk.

This module is the current shape only: a change here needs a new migration in migrations.py,
and tests/test_store_migrations.py proves that replaying them all yields exactly this.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
)

metadata = MetaData()

migrations_table = Table(
    "migrations",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("dataset", Text, nullable=True),
    Column("spec_json", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=True),
    Column("total_cells", Integer, nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)

# One row per finished evaluation cell (configuration x dataset row x repeat).
batch_cells = Table(
    "batch_cells",
    metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("config_index", Integer, primary_key=True),
    Column("row_index", Integer, primary_key=True),
    Column("repeat_index", Integer, primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("result_id", String(32), nullable=False),
    Column("status", String(12), nullable=False),  # pass | fail | unmeasured | error
    Column("verdicts_json", Text, nullable=False),
    Column("cached", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Answers keyed by everything that determines them, so a rerun batch costs nothing.
answer_cache = Table(
    "answer_cache",
    metadata,
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

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("source", String(20), nullable=False),  # app | cli | flow | batch
    Column("variables_json", Text, nullable=False, default="{}"),
    Column("store_name", String(100), nullable=True),
    Column("retrieval_json", Text, nullable=True),  # settings + retrieved chunks
    Column("batch_id", String(32), ForeignKey("batches.id"), nullable=True),
    Column("batch_row", Integer, nullable=True),
    Column("flow_name", String(100), nullable=True),
    Column("flow_version", Integer, nullable=True),
    Column("session_id", String(64), nullable=True),
    # the run this one follows up (a conversation's next turn); NULL for a first turn
    Column("parent_run_id", String(32), nullable=True),
)

results = Table(
    "results",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("position", Integer, nullable=False, default=0),
    Column("variant_name", String(200), nullable=False, default="default"),
    Column("variant_note", Text, nullable=True),
    Column("model_id", String(300), nullable=False),
    Column("params_json", Text, nullable=False),
    Column("system_template", Text, nullable=False, default=""),
    Column("user_template", Text, nullable=False, default=""),
    Column("messages_json", Text, nullable=False),
    Column("text", Text, nullable=False, default=""),
    Column("error", Text, nullable=True),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("usage_estimated", Boolean, nullable=False, default=False),
    Column("ttft_ms", Float, nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("tokens_per_s", Float, nullable=True),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("groundedness", Float, nullable=True),
    Column("chunk_ids_json", Text, nullable=True),
    Column("moderation", Text, nullable=True),
    Column("config_hash", String(64), nullable=False),
    # ResponseFormat as JSON ({"type": "json_schema", "name": ..., "schema": ...}); NULL: text
    Column("response_format_json", Text, nullable=True),
    # few-shot example templates [{"role", "content"}, ...]; NULL: none
    Column("examples_json", Text, nullable=True),
    Column("parent_result_id", String(32), nullable=True),  # the answer this one follows up
)

ratings = Table(
    "ratings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("result_id", String(32), ForeignKey("results.id", ondelete="CASCADE"), nullable=False),
    Column("stars", Integer, nullable=True),
    Column("comment", Text, nullable=True),
    Column("session_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

preferences = Table(
    "preferences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("winner_result_id", String(32), ForeignKey("results.id"), nullable=True),
    Column("loser_result_id", String(32), ForeignKey("results.id"), nullable=True),
    Column("outcome", String(20), nullable=False),  # win | tie_good | tie_bad
    Column("session_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

flow_versions = Table(
    "flow_versions",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("parent", Integer, nullable=True),
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("description", Text, nullable=True),
    Column("model_id", String(300), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

flow_labels = Table(
    "flow_labels",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("label", String(63), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

flow_label_history = Table(
    "flow_label_history",
    metadata,
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
# (config_hash, id) since m011: a configuration's first answer is the first key of its range.
Index("ix_results_config", results.c.config_hash, results.c.id)
Index("ix_results_created_at", results.c.created_at)
Index("ix_ratings_result", ratings.c.result_id)
Index("ix_preferences_run", preferences.c.run_id)
Index("ix_label_history", flow_label_history.c.name, flow_label_history.c.label)
# A conversation is read from its last turn back, and a turn's follow-ups looked up by parent.
Index("ix_runs_parent", runs.c.parent_run_id)

# Covering indexes for the History and Compare pages: the leaderboard and history filters read
# only these columns, so with 10,000+ runs SQLite walks the index instead of the wide rows.
ix_results_config_metrics = Index(
    "ix_results_config_metrics",
    results.c.config_hash,
    results.c.created_at,
    results.c.model_id,
    results.c.run_id,
    results.c.error,
    results.c.ttft_ms,
    results.c.latency_ms,
    results.c.cost_usd,
    results.c.groundedness,
    results.c.id,
)
ix_results_moderation = Index("ix_results_moderation", results.c.moderation)
# Votes and ratings point at answers by id; this finds an answer's configuration without
# reading its row.
ix_results_id_config = Index(
    "ix_results_id_config",
    results.c.id,
    results.c.config_hash,
    results.c.model_id,
    results.c.created_at,
)
ix_results_run_model = Index("ix_results_run_model", results.c.run_id, results.c.model_id)
ix_ratings_current = Index(
    "ix_ratings_current", ratings.c.result_id, ratings.c.session_id, ratings.c.id, ratings.c.stars
)


# Votes point at answers; finding the votes on one configuration's answers (to recount only
# the pairs a new vote touches) needs these instead of a scan of every preference row.
ix_preferences_winner = Index("ix_preferences_winner", preferences.c.winner_result_id)
ix_preferences_loser = Index("ix_preferences_loser", preferences.c.loser_result_id)


# The leaderboard asks for the moderation results of a few configurations; with this index
# that is a range search per configuration, not a read of every answer row they have.
ix_results_config_moderation = Index(
    "ix_results_config_moderation", results.c.config_hash, results.c.moderation
)

# Serving: reference-free scores of served answers, and alert state and events.

online_scores = Table(
    "online_scores",
    metadata,
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

alert_state = Table(
    "alert_state",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("firing", Boolean, nullable=False),
    Column("value", Float, nullable=True),
    Column("since", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

alert_events = Table(
    "alert_events",
    metadata,
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


ix_online_scores_created = Index(
    "ix_online_scores_created", online_scores.c.created_at, online_scores.c.flow_name
)
ix_online_scores_result = Index("ix_online_scores_result", online_scores.c.result_id)
ix_alert_events_name = Index("ix_alert_events_name", alert_events.c.name, alert_events.c.id)
# Monitor reads served runs by time; runs.source is otherwise unindexed.
ix_runs_source_created = Index("ix_runs_source_created", runs.c.source, runs.c.created_at)


# Counters kept by triggers (m008): History shows the number of runs without counting them.
# 'deletions' (m012) moves on every delete of runs or answers: a kept capped count is
# trusted only while it has not moved.
store_counts = Table(
    "store_counts",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Answers per configuration, kept by triggers (m009): Compare finds which configurations a
# new answer touched without grouping every answer.
config_counts = Table(
    "config_counts",
    metadata,
    Column("config_hash", String(64), primary_key=True),
    Column("model_id", String(300), nullable=False),  # a configuration has one model
    Column("n_results", BigInteger, nullable=False),
    Column("n_errors", BigInteger, nullable=False),
    Column("sum_cost", Float, nullable=False),  # over every answer, as avg(cost_usd) was
    Column("n_grounded", BigInteger, nullable=False),
    Column("sum_grounded", Float, nullable=False),
    Column("n_ttft", BigInteger, nullable=False),  # answers without an error that have one
    Column("n_latency", BigInteger, nullable=False),
    # Count, sum and sum of squares of the current stars (the latest per answer and session),
    # kept by Ratings.add_rating in the rating's own transaction.
    Column("stars_n", BigInteger, nullable=False, server_default="0"),
    Column("stars_sum", BigInteger, nullable=False, server_default="0"),
    Column("stars_sumsq", BigInteger, nullable=False, server_default="0"),
)

# Current votes (the latest per session and pair of answers) per pair of configurations and
# outcome, kept by Ratings.add_preference in the vote's own transaction (m009).
pair_counts = Table(
    "pair_counts",
    metadata,
    Column("winner_config", String(64), primary_key=True),
    Column("loser_config", String(64), primary_key=True),
    Column("outcome", String(20), primary_key=True),
    Column("n", BigInteger, nullable=False),
)

# Exact medians of a configuration's TTFT and latency: a walk to the middle of its range.
ix_results_config_ttft = Index(
    "ix_results_config_ttft",
    results.c.config_hash,
    results.c.ttft_ms,
    sqlite_where=results.c.error.is_(None),
    postgresql_where=results.c.error.is_(None),
)
ix_results_config_latency = Index(
    "ix_results_config_latency",
    results.c.config_hash,
    results.c.latency_ms,
    sqlite_where=results.c.error.is_(None),
    postgresql_where=results.c.error.is_(None),
)

# Keyset pagination: History pages continue after the (created_at, id) of the last row shown.
ix_runs_created_id = Index("ix_runs_created_id", runs.c.created_at, runs.c.id)

# Current stars per rated answer (m011), kept by Ratings.add_rating like config_counts' stars:
# a configuration's best answer is the first row of its range in ix_answer_stars_best, and
# History's "rated at least" filter one seek per run in ix_answer_stars_run, not a regrouping of
# ratings. `run_id`, `config_hash`, `failed` and `created_at` are copied from the answer, which
# never changes once stored.
answer_stars = Table(
    "answer_stars",
    metadata,
    Column("result_id", String(32), primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("config_hash", String(64), nullable=False),
    Column("failed", Boolean, nullable=False),  # the answer has an error
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("mean", Float, nullable=False),  # total / n, as avg(stars) gives it
)
ix_answer_stars_best = Index(
    "ix_answer_stars_best",
    answer_stars.c.config_hash,
    answer_stars.c.failed,
    answer_stars.c.mean,
    answer_stars.c.created_at,
    answer_stars.c.result_id,
)
ix_answer_stars_run = Index("ix_answer_stars_run", answer_stars.c.run_id, answer_stars.c.mean)

# Search on PostgreSQL: pg_trgm GIN indexes serve ILIKE '%text%' (m008).
for _name, _column in (
    ("ix_results_text_trgm", results.c.text),
    ("ix_results_user_template_trgm", results.c.user_template),
    ("ix_results_system_template_trgm", results.c.system_template),
    ("ix_runs_variables_trgm", runs.c.variables_json),
):
    Index(
        _name, _column, postgresql_using="gin", postgresql_ops={_column.name: "gin_trgm_ops"}
    ).ddl_if(dialect="postgresql")

event.listen(
    metadata,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)

# Search on SQLite: FTS5 trigram tables over the searched columns, kept in sync by triggers
# (the same DDL as m008; SQLAlchemy has no words for virtual tables).
SQLITE_SEARCH_DDL = [
    "CREATE VIRTUAL TABLE results_fts USING fts5(text, user_template, system_template, "
    "content='results', content_rowid='rowid', tokenize='trigram')",
    "CREATE VIRTUAL TABLE runs_fts USING fts5(variables_json, content='runs', "
    "content_rowid='rowid', tokenize='trigram')",
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
    "CREATE TRIGGER runs_count_insert AFTER INSERT ON runs BEGIN "
    "UPDATE store_counts SET value = value + 1 WHERE name = 'runs'; END",
    "CREATE TRIGGER runs_count_delete AFTER DELETE ON runs BEGIN "
    "UPDATE store_counts SET value = value - 1 WHERE name = 'runs'; END",
    "INSERT INTO store_counts (name, value) VALUES ('runs', 0)",
    *(
        f"INSERT INTO store_counts (name, value) VALUES ('{table}', 0)"
        for table in ("results", "ratings", "preferences")
    ),
    "INSERT INTO store_counts (name, value) VALUES ('deletions', 0)",  # m012
]


def _sqlite_search(target: Any, connection: Any, **_kw: Any) -> None:
    if connection.dialect.name == "sqlite":
        # the triggers of m009 and m012 are spelled out once, next to their migrations
        from playground.store.migrations import SQLITE_M009_TRIGGERS, SQLITE_M012_TRIGGERS

        for ddl in [*SQLITE_SEARCH_DDL, *SQLITE_M009_TRIGGERS, *SQLITE_M012_TRIGGERS]:
            connection.exec_driver_sql(ddl)


event.listen(metadata, "after_create", _sqlite_search)
