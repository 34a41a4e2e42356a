"""The leaderboard's queries: per-configuration aggregates, stars and pairs, kept incrementally."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    func,
    inspect,
    or_,
    select,
)

from playground.compare import ConfigAggregate, ConfigAnswer, ConfigFilters, Pair, median
from playground.records import Result, Run
from playground.store.filters import (
    contains,
    current_rating_ids,
    current_vote_ids,
    result_conditions,
)
from playground.store.runs import aware
from playground.store.schema import (
    answer_stars,
    config_counts,
    pair_counts,
    preferences,
    ratings,
    results,
    runs,
)

if TYPE_CHECKING:
    from playground.store.database import Database
    from playground.store.history import History
    from playground.store.ratings import Ratings
    from playground.store.runs import Runs


@dataclass
class ConfigEvidence:
    """Ratings and runs of every result sharing one configuration hash."""

    rating_count: int
    rating_mean: float | None
    run_ids: list[str]


class Leaderboard:
    """Configuration aggregates, preference pairs and best answers for the Compare page."""

    def __init__(self, db: Database, runs: Runs, ratings: Ratings, history: History) -> None:
        self.db = db
        self.runs = runs
        self.ratings = ratings
        self.history = history
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._has_config_sums: bool | None = None

    # -- leaderboard ---------------------------------------------------------------------
    #
    # Answers are never updated once stored, so a configuration's measurements change only
    # when its answer count does, its stars only when one of its answers is rated, and its
    # pairs only when one of its answers gets a vote. Each cache below remembers the stamp it
    # was computed at and, when the stamp moves, recomputes only the configurations the new
    # rows touch. A row stored while a recompute runs at worst makes the next call redo that
    # configuration: caches may recompute too much, never keep too little.

    def _cached(self, name: str, key: tuple[Any, ...]) -> Any:
        """The incremental state `name` last stored for these filters, or None."""
        return self._cache.get((name, *key))

    def _remember(self, name: str, key: tuple[Any, ...], state: Any) -> None:
        cache = self._cache
        if len(cache) > 96:  # many filter combinations: forget them all rather than grow
            cache.clear()
        cache[(name, *key)] = state

    def config_aggregates(self, filters: ConfigFilters | None = None) -> list[ConfigAggregate]:
        """Per configuration hash: what it is, how often it ran, its measurements and stars.

        A new run recomputes the measurements of its own configurations and a new rating the
        stars of the rated answer's configuration; the others come from the cache.
        """
        filters = filters or ConfigFilters()
        text = filters.template_text.strip()
        everything = replace(filters, template_text="")
        if text and self._kept_aggregates(everything):
            # The templates are part of the configuration: the kept rows of every configuration
            # (and their cache), narrowed to those whose templates contain the text.
            matching = self._configs_with_template(text)
            return [a for a in self.config_aggregates(everything) if a.config_hash in matching]
        version = self.history.data_version()
        key = (text, filters.model_id, filters.date_from, filters.date_to)
        measured = self._measured(filters, key, version.answers)
        if self._kept_aggregates(filters):
            # Ratings keep config_counts' stars in their own transaction: 40 rows to read.
            with self.db.read() as conn:
                stars = {
                    row.config_hash: (
                        int(row.stars_n),
                        float(row.stars_sum),
                        float(row.stars_sumsq),
                    )
                    for row in conn.execute(
                        select(
                            config_counts.c.config_hash,
                            config_counts.c.stars_n,
                            config_counts.c.stars_sum,
                            config_counts.c.stars_sumsq,
                        ).where(config_counts.c.stars_n > 0)
                    )
                }
        else:
            stars = self._stars(filters, key, (version.ratings, version.last_rating))
        combined = []
        for config_hash in sorted(measured):
            n, total, total_sq = stars.get(config_hash, (0, 0.0, 0.0))
            combined.append(
                replace(measured[config_hash], stars_n=n, stars_sum=total, stars_sumsq=total_sq)
            )
        return combined

    def _configs_with_template(self, text: str) -> set[str]:
        """Hashes of the configurations whose user or system template contains the text.

        Every answer of a configuration has its templates (they are hashed), so one answer
        each decides: one index seek per configuration, not a scan of every answer.
        """
        one_answer = (
            select(results.c.id)
            .where(results.c.config_hash == config_counts.c.config_hash)
            .correlate(config_counts)
            .limit(1)
            .scalar_subquery()
        )
        sample = results.alias("sample")
        dialect = self.db.backend
        with self.db.read() as conn:
            return set(
                conn.execute(
                    select(config_counts.c.config_hash)
                    .select_from(config_counts)
                    .join(sample, sample.c.id == one_answer)
                    .where(
                        config_counts.c.n_results > 0,
                        or_(
                            contains(sample.c.user_template, text, dialect),
                            contains(sample.c.system_template, text, dialect),
                        ),
                    )
                ).scalars()
            )

    def _measured(
        self, filters: ConfigFilters, key: tuple[Any, ...], answers: int
    ) -> dict[str, ConfigAggregate]:
        """Measurements per configuration, redone only where the answer count changed."""
        state = self._cached("measure", key)
        if state is not None and state[0] == answers:
            return dict(state[2])
        with self.db.read() as conn:
            if not (filters.date_from or filters.date_to) and conn.dialect.has_table(
                conn, config_counts.name
            ):
                # m009's trigger-kept counts: 40 rows instead of grouping every answer.
                query = select(config_counts.c.config_hash, config_counts.c.n_results).where(
                    config_counts.c.n_results > 0
                )
                if filters.model_id:
                    query = query.where(config_counts.c.model_id == filters.model_id)
            else:
                query = (
                    select(results.c.config_hash, func.count())
                    .where(*result_conditions(filters))
                    .group_by(results.c.config_hash)
                )
            counts: dict[str, int] = {h: int(n) for h, n in conn.execute(query).all()}
        measure = self._config_measurements
        if self._kept_aggregates(filters):
            known = {} if state is None else state[2]

            def measure(filters: ConfigFilters, only: list[str] | None = None) -> Any:
                return self._kept_measurements(filters, known, only)

        if state is None:
            aggregates = measure(filters)
        else:
            old_counts, old = state[1], state[2]
            dirty = [h for h, n in counts.items() if old_counts.get(h) != n]
            aggregates = {h: a for h, a in old.items() if h in counts and h not in dirty}
            if dirty:
                aggregates.update(measure(filters, dirty))
        self._remember("measure", key, (answers, counts, aggregates))
        return dict(aggregates)

    def _stars(
        self, filters: ConfigFilters, key: tuple[Any, ...], seen: tuple[int, int]
    ) -> dict[str, tuple[int, float, float]]:
        """Star sums per configuration, redone only for configurations rated since."""
        state = self._cached("stars", key)
        if state is not None and state[0] == seen:
            return dict(state[1])
        dirty = None if state is None else self._touched_by_ratings(state[0], seen)
        if dirty is None:
            stars = self._config_stars(filters)
        else:
            stars = {h: v for h, v in state[1].items() if h not in dirty}
            if dirty:
                stars.update(self._config_stars(filters, dirty))
        self._remember("stars", key, (seen, stars))
        return dict(stars)

    def _touched_by_ratings(
        self, before: tuple[int, int], now: tuple[int, int]
    ) -> list[str] | None:
        """Configurations rated between two (count, highest id) stamps; None: recount them all.

        Another process may commit a lower id after a higher one was seen; then the rows above
        the old highest id do not account for every new row, and only a full recount is right.
        """
        with self.db.read() as conn:
            newer = ratings.c.id > before[1]
            above = conn.execute(
                select(func.count()).select_from(ratings).where(newer)
            ).scalar_one()
            if before[0] > now[0] or above != now[0] - before[0]:
                return None
            return list(
                conn.execute(
                    select(results.c.config_hash)
                    .distinct()
                    .join(ratings, ratings.c.result_id == results.c.id)
                    .where(newer)
                ).scalars()
            )

    def _kept_aggregates(self, filters: ConfigFilters) -> bool:
        """Whether config_counts (m009) answers for these filters: any but dates and text."""
        if filters.date_from or filters.date_to or filters.template_text.strip():
            return False
        if self._has_config_sums is None:
            with self.db.read() as conn:
                columns = {c["name"] for c in inspect(conn).get_columns(config_counts.name)}
            self._has_config_sums = "sum_cost" in columns
        return self._has_config_sums

    def _kept_measurements(
        self,
        filters: ConfigFilters,
        known: dict[str, ConfigAggregate],
        only: list[str] | None = None,
    ) -> dict[str, ConfigAggregate]:
        """Measurements from the trigger-kept sums, exact medians from the partial indexes.

        Nothing here reads a configuration's answers one by one: sums are one row, a median
        is a walk to the middle of an index range, and what a configuration *is* comes from
        the cache (or, for a new configuration, from one sample answer).
        """
        sums = select(config_counts).where(config_counts.c.n_results > 0)
        if only is not None:
            sums = sums.where(config_counts.c.config_hash.in_(only))
        if filters.model_id:
            sums = sums.where(config_counts.c.model_id == filters.model_id)
        with self.db.read() as conn:
            rows = {row.config_hash: row for row in conn.execute(sums)}
            new = [h for h in rows if h not in known]
            samples = self._samples(conn, new) if new else {}
            moderated = conn.execute(
                select(results.c.config_hash, results.c.moderation).where(
                    results.c.moderation > "", results.c.config_hash.in_(list(rows))
                )
            ).all()
            aggregates: dict[str, ConfigAggregate] = {}
            for config_hash, row in rows.items():
                sample = known.get(config_hash) or samples.get(config_hash)
                if sample is None:  # a hash added between the two queries; next rerun shows it
                    continue
                n = int(row.n_results)
                aggregates[config_hash] = replace(
                    sample,
                    n_results=n,
                    n_runs=n,  # one answer per run and configuration (see below)
                    n_errors=int(row.n_errors),
                    groundedness_mean=(
                        row.sum_grounded / row.n_grounded if row.n_grounded else None
                    ),
                    cost_mean=row.sum_cost / n,
                    ttft_median=self._median(conn, config_hash, results.c.ttft_ms, row.n_ttft),
                    latency_median=self._median(
                        conn, config_hash, results.c.latency_ms, row.n_latency
                    ),
                    moderations=[],
                    stars_n=0,
                    stars_sum=0.0,
                    stars_sumsq=0.0,
                )
        for moderation_row in moderated:
            if moderation_row.config_hash in aggregates:
                aggregates[moderation_row.config_hash].moderations.append(moderation_row.moderation)
        return aggregates

    @staticmethod
    def _median(conn: Any, config_hash: str, column: Any, count: int) -> float | None:
        """The median of a configuration's successful answers' `column`: the middle of its
        ix_results_config_ttft / _latency range, reached by walking that index."""
        if count <= 0:
            return None
        middle = conn.execute(
            select(column)
            .where(results.c.config_hash == config_hash, results.c.error.is_(None))
            .where(column.is_not(None))
            .order_by(column)
            .limit(1 if count % 2 else 2)
            .offset((count - 1) // 2)
        ).scalars()
        values = list(middle)
        return sum(values) / len(values) if values else None

    def _samples(self, conn: Any, hashes: list[str]) -> dict[str, ConfigAggregate]:
        """What these configurations are, from their first answer (by id) each."""
        # One min() per configuration, each the first key of its ix_results_config range
        # (config_hash, id); grouping the answers would read all of them.
        first_id = (
            select(func.min(results.c.id))
            .where(results.c.config_hash == config_counts.c.config_hash)
            .correlate(config_counts)
            .scalar_subquery()
        )
        first_ids = select(first_id).where(config_counts.c.config_hash.in_(hashes))
        rows = conn.execute(
            select(
                results.c.config_hash,
                results.c.model_id,
                results.c.params_json,
                results.c.system_template,
                results.c.user_template,
                results.c.variant_name,
                runs.c.store_name,
            )
            .join(runs, runs.c.id == results.c.run_id)
            .where(results.c.id.in_(first_ids))
        )
        return {
            row.config_hash: ConfigAggregate(
                config_hash=row.config_hash,
                model_id=row.model_id,
                params=json.loads(row.params_json),
                system_template=row.system_template,
                user_template=row.user_template,
                store_name=row.store_name,
                variant_name=row.variant_name or "",
                n_results=0,
                n_runs=0,
                n_errors=0,
            )
            for row in rows
        }

    def _config_stars(
        self, filters: ConfigFilters, only: list[str] | None = None
    ) -> dict[str, tuple[int, float, float]]:
        """Count, sum and sum of squares of current stars per configuration (or only these)."""
        conditions = result_conditions(filters)
        current = current_rating_ids()
        if only is not None:
            conditions.append(results.c.config_hash.in_(only))
            current = current.where(
                ratings.c.result_id.in_(select(results.c.id).where(results.c.config_hash.in_(only)))
            )
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    results.c.config_hash,
                    func.count(ratings.c.stars).label("n"),
                    func.sum(ratings.c.stars).label("total"),
                    func.sum(ratings.c.stars * ratings.c.stars).label("total_sq"),
                )
                .select_from(ratings.join(results, results.c.id == ratings.c.result_id))
                .where(ratings.c.id.in_(current), *conditions)
                .group_by(results.c.config_hash)
            ).all()
        return {
            r.config_hash: (int(r.n), float(r.total or 0), float(r.total_sq or 0)) for r in rows
        }

    def _config_measurements(
        self, filters: ConfigFilters, only: list[str] | None = None
    ) -> dict[str, ConfigAggregate]:
        """What each configuration (or only these) is, runs, errors, honesty, cost, latency, harm.

        Every aggregate reads the covering index ix_results_config_metrics, not the wide
        result rows; what a configuration *is* comes from one sample answer per hash.
        """
        conditions = result_conditions(filters)
        first_ids = select(func.min(results.c.id)).group_by(results.c.config_hash)
        if only is not None:
            conditions.append(results.c.config_hash.in_(only))
            first_ids = first_ids.where(results.c.config_hash.in_(only))
        samples = (
            select(
                results.c.config_hash,
                results.c.model_id,
                results.c.params_json,
                results.c.system_template,
                results.c.user_template,
                results.c.variant_name,
                runs.c.store_name,
            )
            .join(runs, runs.c.id == results.c.run_id)
            .where(results.c.id.in_(first_ids))
        )
        text = filters.template_text.strip()
        if text:
            # The templates are part of the configuration, so one sample per hash decides.
            dialect = self.db.backend
            samples = samples.where(
                or_(
                    contains(results.c.user_template, text, dialect),
                    contains(results.c.system_template, text, dialect),
                )
            )
        with self.db.read() as conn:
            sample_rows = {row.config_hash: row for row in conn.execute(samples)}
            if not sample_rows:
                return {}
            if text:
                conditions.append(results.c.config_hash.in_(list(sample_rows)))
            base = conn.execute(
                select(
                    results.c.config_hash,
                    func.count().label("n_results"),
                    func.count(results.c.error).label("n_errors"),
                    func.avg(results.c.groundedness).label("groundedness"),
                    func.avg(results.c.cost_usd).label("cost"),
                )
                .where(*conditions)
                .group_by(results.c.config_hash)
            ).all()
            # Medians in Python from one read of the covering index: cheaper than two window
            # queries, and the same in every database.
            timings = conn.execute(
                select(results.c.config_hash, results.c.ttft_ms, results.c.latency_ms).where(
                    results.c.error.is_(None), *conditions
                )
            ).all()
            moderated = conn.execute(
                select(results.c.config_hash, results.c.moderation).where(
                    # "> ''" rather than IS NOT NULL: SQLite turns it into an index range scan.
                    results.c.moderation > "",
                    *conditions,
                )
            ).all()
        ttft: dict[str, list[float | None]] = {}
        latency: dict[str, list[float | None]] = {}
        for row in timings:
            ttft.setdefault(row.config_hash, []).append(row.ttft_ms)
            latency.setdefault(row.config_hash, []).append(row.latency_ms)
        aggregates: dict[str, ConfigAggregate] = {}
        for row in base:
            sample = sample_rows.get(row.config_hash)
            if sample is None:  # a hash added between the two queries; next rerun shows it
                continue
            aggregates[row.config_hash] = ConfigAggregate(
                config_hash=row.config_hash,
                model_id=sample.model_id,
                params=json.loads(sample.params_json),
                system_template=sample.system_template,
                user_template=sample.user_template,
                store_name=sample.store_name,
                variant_name=sample.variant_name or "",
                n_results=int(row.n_results),
                # A configuration answers once per run (one cell per variant x model), so
                # answers = runs; counting distinct run ids would cost a sort on every rerun.
                n_runs=int(row.n_results),
                n_errors=int(row.n_errors or 0),
                groundedness_mean=row.groundedness,
                cost_mean=row.cost,
                ttft_median=median(ttft.get(row.config_hash, [])),
                latency_median=median(latency.get(row.config_hash, [])),
            )
        for row in moderated:
            if row.config_hash in aggregates:
                aggregates[row.config_hash].moderations.append(row.moderation)
        return aggregates

    def preference_pairs(self) -> list[Pair]:
        """Current pairwise preferences between configuration hashes, counted per outcome.

        Only a new vote changes the pairs, and only those of the configurations it touches.
        """
        if self._kept_aggregates(ConfigFilters()):
            # Votes keep pair_counts in their own transaction (playground.store.tallies).
            with self.db.read() as conn:
                rows = conn.execute(
                    select(pair_counts)
                    .where(pair_counts.c.n > 0)
                    .order_by(
                        pair_counts.c.winner_config,
                        pair_counts.c.loser_config,
                        pair_counts.c.outcome,
                    )
                ).all()
            return [Pair(r.winner_config, r.loser_config, r.outcome, int(r.n)) for r in rows]
        version = self.history.data_version()
        seen = (version.votes, version.last_vote)
        state = self._cached("pairs", ())
        if state is not None and state[0] == seen:
            return list(state[1])
        dirty = None if state is None else self._touched_by_votes(state[0], seen)
        if dirty is None:
            pairs = self._preference_pairs()
        else:
            pairs = [p for p in state[1] if p.a not in dirty and p.b not in dirty]
            if dirty:
                pairs += self._preference_pairs(dirty)
        pairs.sort(key=lambda p: (p.a, p.b, p.outcome))
        self._remember("pairs", (), (seen, pairs))
        return list(pairs)

    def _touched_by_votes(self, before: tuple[int, int], now: tuple[int, int]) -> list[str] | None:
        """Configurations voted on between two (count, highest id) stamps; None: recount all."""
        winner, loser = results.alias("winner"), results.alias("loser")
        with self.db.read() as conn:
            newer = preferences.c.id > before[1]
            above = conn.execute(
                select(func.count()).select_from(preferences).where(newer)
            ).scalar_one()
            if before[0] > now[0] or above != now[0] - before[0]:
                return None
            touched = conn.execute(
                select(winner.c.config_hash, loser.c.config_hash.label("other"))
                .select_from(preferences)
                .join(winner, winner.c.id == preferences.c.winner_result_id)
                .join(loser, loser.c.id == preferences.c.loser_result_id)
                .where(newer)
            ).all()
        return sorted({h for row in touched for h in row})

    def _preference_pairs(self, only: list[str] | None = None) -> list[Pair]:
        """Counted current votes between configurations (or those involving only these)."""
        winner, loser = results.alias("winner"), results.alias("loser")
        current = current_vote_ids()
        outer: list[Any] = []
        if only is not None:
            # A vote and every vote it replaces share one pair of answers, so restricting to
            # votes on these configurations' answers keeps every group whole.
            answers = select(results.c.id).where(results.c.config_hash.in_(only))
            current = current.where(
                or_(
                    preferences.c.winner_result_id.in_(answers),
                    preferences.c.loser_result_id.in_(answers),
                )
            )
            outer.append(or_(winner.c.config_hash.in_(only), loser.c.config_hash.in_(only)))
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    winner.c.config_hash,
                    loser.c.config_hash.label("other"),
                    preferences.c.outcome,
                    func.count().label("n"),
                )
                .join(winner, winner.c.id == preferences.c.winner_result_id)
                .join(loser, loser.c.id == preferences.c.loser_result_id)
                .where(preferences.c.id.in_(current), *outer)
                .group_by(winner.c.config_hash, loser.c.config_hash, preferences.c.outcome)
            ).all()
        return [Pair(r.config_hash, r.other, r.outcome, int(r.n)) for r in rows]

    def best_answer(self, config_hash: str) -> tuple[Run, Result] | None:
        """A configuration's best-rated answer (latest among equals) and its run, or None.

        Answers without an error come first, then the highest mean of current stars, then
        rated before unrated, then the newest: the answer to save as a flow.
        """
        with self.db.read() as conn:
            row = self._best_of(conn, config_hash)
        if row is None:
            return None
        run = self.runs.get_run(row.run_id)
        return run, next(r for r in run.results if r.id == row.id)

    @staticmethod
    def _best_of(conn: Any, config_hash: str) -> Any:
        """(id, run_id) of the best answer: the first row of a kept-stars or an answer range.

        Each step is one index range read to its first row (ix_answer_stars_best, then
        ix_results_config_metrics), never every answer of the configuration.
        """
        for failed in (False, True):
            rated = conn.execute(
                select(results.c.id, results.c.run_id)
                .join(answer_stars, answer_stars.c.result_id == results.c.id)
                .where(answer_stars.c.config_hash == config_hash, answer_stars.c.failed == failed)
                .order_by(
                    answer_stars.c.mean.desc(),
                    answer_stars.c.created_at.desc(),
                    answer_stars.c.result_id.desc(),
                )
                .limit(1)
            ).first()
            if rated is not None:
                return rated
            # Nothing of this kind is rated, so the newest of this kind is its best.
            newest = conn.execute(
                select(results.c.id, results.c.run_id)
                .where(
                    results.c.config_hash == config_hash,
                    results.c.error.is_not(None) if failed else results.c.error.is_(None),
                )
                .order_by(results.c.created_at.desc(), results.c.id.desc())
                .limit(1)
            ).first()
            if newest is not None:
                return newest
        return None

    def config_runs(self, config_hash: str, limit: int = 50) -> list[ConfigAnswer]:
        """The newest answers of one configuration with their run id and current stars."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    results.c.id,
                    results.c.run_id,
                    results.c.created_at,
                    results.c.variant_name,
                    results.c.text,
                    results.c.error,
                    results.c.latency_ms,
                    results.c.cost_usd,
                )
                .where(results.c.config_hash == config_hash)
                .order_by(results.c.created_at.desc())
                .limit(limit)
            ).all()
        summaries = self.ratings.rating_summaries([r.id for r in rows])
        return [
            ConfigAnswer(
                run_id=r.run_id,
                created_at=aware(r.created_at),
                variant_name=r.variant_name,
                text=r.text,
                error=r.error,
                stars=summaries[r.id].mean if r.id in summaries else None,
                latency_ms=r.latency_ms,
                cost_usd=r.cost_usd,
            )
            for r in rows
        ]

    def config_evidence(self, config_hash: str) -> ConfigEvidence:
        """Star ratings and run ids of every stored result with this configuration hash.

        Like the leaderboard, only the latest stars per (answer, session) count.
        """
        current = (
            select(func.max(ratings.c.id))
            .where(ratings.c.stars.is_not(None))
            .group_by(ratings.c.result_id, ratings.c.session_id)
        )
        with self.db.read() as conn:
            stats = conn.execute(
                select(func.count(ratings.c.stars), func.avg(ratings.c.stars))
                .select_from(ratings.join(results, ratings.c.result_id == results.c.id))
                .where(results.c.config_hash == config_hash, ratings.c.id.in_(current))
            ).one()
            run_ids = conn.execute(
                select(results.c.run_id)
                .where(results.c.config_hash == config_hash)
                .group_by(results.c.run_id)
                .order_by(func.min(results.c.created_at))
            ).scalars()
            runs = list(run_ids)
        count = int(stats[0] or 0)
        mean = round(float(stats[1]), 2) if count else None
        return ConfigEvidence(count, mean, runs)
