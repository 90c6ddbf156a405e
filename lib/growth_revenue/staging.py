"""Staging: a run's mart change computed in memory, nothing written (rules 1-6 of transforms).

`decide` says whether the mart is rebuilt or changed (mart_state.decide); `customer_profiles`
computes the profiles; `stage_rebuild` stages every order, `stage_change` only the mart rows that
may have changed since the last run. They read the raw tables and the published outputs (through
io) and cache what they read more than once in the run's CacheScope (growth_revenue.caching).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from growth_revenue import incremental, mart_state, reading, sparkutil, tables, transforms
from growth_revenue.caching import CacheScope
from growth_revenue.config import Config
from growth_revenue.planning import CustomerProfiles
from growth_revenue.sparkutil import single_row

if TYPE_CHECKING:
    from growth_revenue.pipeline import RunRequest

log = logging.getLogger("growth_revenue")


@dataclass(frozen=True)
class StagedMart:
    """The mart change a run has computed and not written yet."""

    mode: str  # full | incremental
    rows: DataFrame  # the mart rows computed by this run (every row for a rebuild): what the gate verifies
    after: DataFrame  # the mart's rows once the change is applied (may be cut to the report's window)
    mart_rows: int  # how many rows the mart holds once the change is applied
    quarantine: DataFrame  # quarantine_orders once the change is applied, without the run columns
    quarantined_by_reason: dict[str, int]  # its revenue orders by quarantine reason
    changes: DataFrame | None  # incremental: the MERGE source (incremental.mart_changes)
    changed_rows: int  # mart rows inserted, updated or deleted
    replaced: incremental.ReplacedRows  # incremental: where the rows to update or delete lie
    watermark: str | None  # newest raw_orders._ingested_at the mart reflects
    customers_changed: bool
    freshness_input: DataFrame  # raw_orders rows the freshness check reads


def stage_rebuild(
    config: Config,
    raw_orders: DataFrame,
    profiles: DataFrame,
    bounds: tuple[dt.datetime, dt.datetime],
    caches: CacheScope,
) -> StagedMart:
    """Every order through rules 1-5."""
    rules = config.rules
    classified, rule_effects = _observed(
        transforms.classify_orders(raw_orders, profiles, rules.revenue_statuses, rules.unknown_segment, bounds)
    )
    # One cached pass over the orders feeds both the mart and the quarantine.
    counted = _materialised(transforms.counted_orders(classified), caches)
    mart = transforms.mart_orders(counted, rules.reporting_timezone)
    mart_rows = mart.count()
    quarantined = _log_rule_effects(rule_effects, mart_rows, "mart rows staged")
    quarantine = transforms.quarantined_orders(counted)
    (watermark,) = single_row(raw_orders.agg(_iso_instant(F.max("_ingested_at"))))
    return StagedMart(
        mode=mart_state.FULL,
        rows=mart,
        after=mart,
        mart_rows=mart_rows,
        quarantine=quarantine,
        quarantined_by_reason=quarantined,
        changes=None,
        changed_rows=mart_rows,
        replaced=incremental.ReplacedRows(),
        watermark=watermark,
        customers_changed=True,
        freshness_input=raw_orders,
    )


def stage_change(
    spark: SparkSession,
    config: Config,
    request: RunRequest,
    raw_orders: DataFrame,
    profiles: CustomerProfiles,
    state: mart_state.MartState,
    reference: dt.datetime,
    bounds: tuple[dt.datetime, dt.datetime],
    caches: CacheScope,
) -> StagedMart:
    """Only the mart rows that may have changed since `state` (see the incremental module)."""
    rules, output = config.rules, request.output
    watermark = state.watermark
    cutoff = watermark - dt.timedelta(hours=config.incremental.lookback_hours) if watermark else None
    landed = incremental.landed_after(raw_orders, cutoff)
    by_reference = F.col("_ingested_at") <= F.lit(reference).cast("timestamp")
    landed_rows, newest, landed_by_reference = single_row(
        landed.agg(F.count(F.lit(1)), _iso_instant(F.max("_ingested_at")), F.count(F.when(by_reference, 1)))
    )
    # An incremental run always has the last run's profiles to compare with (planning.decide).
    assert profiles.previous is not None and profiles.recomputed is not None
    customers = caches.persist(
        incremental.customer_changes(profiles.previous, profiles.recomputed, rules.unknown_segment)
    )
    changed = customers.collect()  # the changed customers only: their counts by action and the edited ids
    by_action = dict.fromkeys(incremental.ACTIONS, 0)
    for row in changed:
        by_action[row.action] += 1
    # Raw history is read by customer only for test users who became real: nothing else brings
    # back orders the mart does not hold.
    former_test_users = (
        incremental.customers_to(customers, incremental.RECOMPUTE) if by_action[incremental.RECOMPUTE] else None
    )
    # Orders whose order_ts this run's time makes plausible (or, when the time went back, no longer).
    # Collected (a few ids at most), so no cached frame reads the outputs this run rewrites: Delta
    # recomputes such caches after each commit, and they would then miss the orders just moved.
    mart, published_quarantine = (
        reading.read_output(spark, output.child(table)) for table in (tables.MART, tables.QUARANTINE)
    )
    redated = incremental.redated_orders(
        published_quarantine, mart, bounds, state.latest_order_ts, rules.reporting_timezone
    )
    redated = spark.createDataFrame([(row.order_id,) for row in redated.collect()], "order_id string")
    affected = caches.persist(incremental.affected_orders(landed, raw_orders, former_test_users, redated))
    lowest, highest, affected_orders = single_row(affected.agg(F.min("order_id"), F.max("order_id"), F.count(F.lit(1))))
    affected_range = (lowest, highest)
    versions = incremental.raw_versions_of(raw_orders, affected, affected_range, cutoff, former_test_users, landed)

    classified, rule_effects = _observed(
        transforms.classify_orders(versions, profiles.current, rules.revenue_statuses, rules.unknown_segment, bounds)
    )
    counted = _materialised(transforms.counted_orders(classified), caches)
    recomputed_rows = transforms.mart_orders(counted, rules.reporting_timezone)

    # The mart's current rows of the affected orders and of relabelled or removed customers, in
    # one pass. Edited customers' rows can lie on any date; without them, first find the dates of
    # the affected orders (order_id only, files skipped by their order_id range) and read the
    # files of those dates alone.
    edited = by_action[incremental.RELABEL] + by_action[incremental.REMOVE]
    target_dates = (
        None
        if edited
        else [
            row[0]
            for row in incremental.key_range(mart.select("order_id", "order_date"), "order_id", *affected_range)
            .join(affected, "order_id", "left_semi")
            .select("order_date")
            .distinct()
            .collect()
        ]
    )
    # The caches read from the mart are released before the mart's commit (publishing.publish).
    published = caches.persist(incremental.published_rows(mart, affected, customers, target_dates), reads=tables.MART)
    replaced, published_count = _replaced_rows(published, affected, changed)  # one pass over the mart for both
    staged = caches.persist(
        recomputed_rows.unionByName(incremental.relabelled(published, customers, affected)), reads=tables.MART
    )
    staged_rows = staged.count()
    _log_rule_effects(rule_effects, staged_rows, "mart rows recomputed or relabelled")
    # Checkpointed, so the MERGE's source does not depend on the mart it changes (see publishing), then
    # cached: the cache knows its size, which lets the MERGE broadcast it instead of shuffling the mart.
    changes = caches.persist(incremental.mart_changes(published, staged).localCheckpoint(eager=True))
    changed_rows = changes.count()
    mart_rows = mart.count() - published_count + staged_rows

    removed = incremental.customers_to(customers, incremental.REMOVE)
    quarantine = incremental.untouched_quarantine(published_quarantine, affected, cutoff, former_test_users, removed)
    quarantine = caches.persist(quarantine.unionByName(transforms.quarantined_orders(counted)))
    quarantined = dict.fromkeys(transforms.QUARANTINE_REASONS, 0) | {
        row[0]: row[1] for row in quarantine.groupBy("quarantine_reason").count().collect()
    }

    window_start, window_end = transforms.report_window(request.as_of, rules.report_window_days)
    replaced_ids = published.select("order_id").unionByName(affected)
    after = incremental.mart_after(
        mart.where(F.col("order_date").between(window_start, window_end)), replaced_ids, staged
    )
    # The newest landed row is the newest of all when one landed row is old enough to count for freshness.
    freshness_input = landed if landed_by_reference else raw_orders
    newest = max(filter(None, (state.orders_watermark, newest)), key=dt.datetime.fromisoformat, default=None)
    log.info(
        "incremental: %d raw_orders rows landed after %s (watermark %s minus %gh look-back); customers "
        "changed: %s; %d orders recomputed from raw, %d mart rows to insert, update or delete",
        landed_rows,
        cutoff.isoformat() if cutoff else "the beginning",
        state.orders_watermark,
        config.incremental.lookback_hours,
        ", ".join(f"{n} {action}" for action, n in by_action.items()),
        affected_orders,
        changed_rows,
    )
    return StagedMart(
        mode=mart_state.INCREMENTAL,
        rows=staged,
        after=after,
        mart_rows=mart_rows,
        quarantine=quarantine,
        quarantined_by_reason=quarantined,
        changes=changes,
        changed_rows=changed_rows,
        replaced=replaced,
        watermark=newest,
        customers_changed=sum(by_action.values()) > 0,
        freshness_input=freshness_input,
    )


def _replaced_rows(published: DataFrame, affected: DataFrame, changed: list) -> tuple[incremental.ReplacedRows, int]:
    """Where the `published` rows lie, and how many they are, in one pass over them: every date, and
    the dates of the affected orders' rows; the others belong to the edited customers among `changed`."""
    flagged = published.join(F.broadcast(affected.withColumn("_affected", F.lit(True))), "order_id", "left")
    by_date = (
        flagged.groupBy("order_date")
        .agg(F.max(F.col("_affected").isNotNull()).alias("affected"), F.count(F.lit(1)).alias("rows"))
        .collect()
    )
    edited = {row.customer_id for row in changed if row.action in (incremental.RELABEL, incremental.REMOVE)}
    replaced = incremental.ReplacedRows(
        dates=tuple(sorted(row.order_date for row in by_date)),
        order_dates=tuple(sorted(row.order_date for row in by_date if row.affected)),
        customers=tuple(sorted(edited)),
    )
    return replaced, sum(row.rows for row in by_date)


def _materialised(observed: DataFrame, caches: CacheScope) -> DataFrame:
    """`observed` cached, and filled by an action of its own, which also reports its Observation.

    On Spark 3.5 the Observation can otherwise wait forever: when adaptive execution finds the
    cached rows empty at run time (say every recomputed order was cancelled), its
    AQEPropagateEmptyRelation rule replaces the cached scan with an empty relation, and the metrics
    collected inside it are never reported. The rule is left out of this one action.
    """
    cached = caches.persist(observed)
    with sparkutil.session_conf(
        cached.sparkSession,
        {
            "spark.sql.adaptive.optimizer.excludedRules": "org.apache.spark.sql.execution.adaptive.AQEPropagateEmptyRelation"
        },
    ):
        cached.count()
    return cached


def _observed(classified: DataFrame) -> tuple[DataFrame, Observation]:
    """The rule counts are observed while the staged mart is materialised: no extra pass over the data."""
    rule_effects = Observation("rule_effects")
    return classified.observe(rule_effects, *_rule_effect_metrics()), rule_effects


def _iso_instant(column: Column) -> Column:
    """A timestamp as ISO-8601 text with its offset (the session runs in UTC), for the mart's state."""
    return F.date_format(column, "yyyy-MM-dd'T'HH:mm:ss.SSSSSSxxx")


def _rule_effect_metrics() -> list[Column]:
    revenue = F.col("is_revenue")
    counted = revenue & ~F.col("is_test_customer")
    published = F.col("quarantine_reason").isNull()
    return [
        F.sum("versions").alias("raw_rows"),
        F.count(F.lit(1)).alias("orders"),
        F.count(F.when(~revenue, 1)).alias("not_revenue"),
        F.count(F.when(revenue & F.col("is_test_customer"), 1)).alias("test_user"),
        F.count(F.when(counted & published & ~F.col("has_customer"), 1)).alias("orphans"),
        *[
            F.count(F.when(counted & (F.col("quarantine_reason") == reason), 1)).alias(reason)
            for reason in transforms.QUARANTINE_REASONS
        ],
    ]


def _log_rule_effects(rule_effects: Observation, mart_rows: int, what: str) -> dict[str, int]:
    """Logs what each rule removed; returns the quarantined revenue orders by reason."""
    counts = rule_effects.get  # filled in by the action that materialised the mart
    raw_rows, orders = counts["raw_rows"] or 0, counts["orders"]
    log.info(
        "rule 1 latest version: %d raw order rows -> %d orders (%d superseded versions removed)",
        raw_rows,
        orders,
        raw_rows - orders,
    )
    log.info(
        "rule 2 revenue status: %d orders removed (status not revenue on their latest version)", counts["not_revenue"]
    )
    log.info("rule 3 test users: %d revenue orders removed", counts["test_user"])
    log.info(
        "rule 4 segment: %d revenue orders kept as 'unknown' segment (no customer row or null customer_id)",
        counts["orphans"],
    )
    quarantined = {reason: counts[reason] for reason in transforms.QUARANTINE_REASONS}
    log.info(
        "quarantine: %d revenue orders kept out of the mart (%s)",
        sum(quarantined.values()),
        ", ".join(f"{reason} {count}" for reason, count in quarantined.items()),
    )
    log.info("%s: %d", what, mart_rows)
    return quarantined
