"""Incremental upkeep of mart_orders_enriched: which orders changed since the last run, and their new rows.

A full rebuild is f(every raw row). An incremental run gets the same result by touching only
what can have changed:

- orders with a raw row that landed after the last run's watermark (minus a look-back for rows
  that land late): new orders, new versions of old orders, late orders for old dates. They are
  recomputed with the rules' own transforms from their *complete raw history*, so the version
  that wins is the one a rebuild would pick;
- orders of customers whose profile changed, found by comparing this run's customer profiles with
  the ones the last run used (kept in the state_customer_profiles table). Only the customers with
  a raw_customers row appended since the last run can have changed, so only theirs are
  recomputed (from their complete raw history) and compared; the others' carry over. Most such
  changes are decided by the mart rows alone, wherever in history the orders lie: a segment move
  (or a customer row arriving after its orders, or disappearing) re-labels the customer's rows,
  and a customer becoming a test user deletes them. Only a test user becoming real brings back
  orders the mart does not hold; those customers' orders are recomputed from raw like the landed
  ones.

The MERGE then only touches the rows that differ. Where the last run stopped lives in the mart's
own Delta commit (`MartState`, in the commit's userMetadata), so the watermark moves if and only
if the mart change it describes is committed. Everything here is a pure function; reading and
writing are in reading, writing and publishing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from growth_revenue.transforms import (
    IMPLAUSIBLE_ORDER_TS,
    MART_COLUMNS,
    QUARANTINE_COLUMNS,
    is_implausible_order_ts,
)

# --- what changed ----------------------------------------------------------------------------


def landed_after(raw_orders: DataFrame, cutoff: dt.datetime | None) -> DataFrame:
    """The raw_orders rows that landed after `cutoff` (all of them when None)."""
    if cutoff is None:
        return raw_orders
    return raw_orders.where(F.col("_ingested_at") > F.lit(cutoff).cast(T.TimestampType()))


# What a customer's profile change does to the mart rows of their orders (see customer_changes).
RELABEL, REMOVE, RECOMPUTE, NO_EFFECT = "relabel", "remove", "recompute", "no effect"
ACTIONS = (RELABEL, REMOVE, RECOMPUTE, NO_EFFECT)


def customer_changes(previous: DataFrame, current: DataFrame, unknown_segment: str) -> DataFrame:
    """customer_id, customer_segment (as of now) and action of each customer whose profile changed.

    A customer in only one of the profiles counts: a row arriving after its orders, or one removed
    (an absent customer is a real one in the unknown segment). The action follows from whether the
    customer's orders count before and after (a test user's do not):
    RELABEL (both: the rows take the new segment), REMOVE (became a test user: the rows go),
    RECOMPUTE (stopped being one: the orders come back from raw) or NO_EFFECT (a test user before
    and after).
    """
    joined = previous.alias("p").join(current.alias("c"), "customer_id", "full_outer")
    same = F.col("p.customer_segment").eqNullSafe(F.col("c.customer_segment")) & F.col("p.is_test_customer").eqNullSafe(
        F.col("c.is_test_customer")
    )
    counted_before = ~F.coalesce(F.col("p.is_test_customer"), F.lit(False))
    counted_now = ~F.coalesce(F.col("c.is_test_customer"), F.lit(False))
    action = (
        F.when(counted_before & counted_now, F.lit(RELABEL))
        .when(counted_before, F.lit(REMOVE))
        .when(counted_now, F.lit(RECOMPUTE))
        .otherwise(F.lit(NO_EFFECT))
    )
    return joined.where(~same).select(
        "customer_id",
        F.coalesce(F.col("c.customer_segment"), F.lit(unknown_segment)).alias("customer_segment"),
        action.alias("action"),
    )


def updated_profiles(previous: DataFrame, recomputed: DataFrame, recomputed_ids: DataFrame) -> DataFrame:
    """Every customer's profile now: `recomputed` for the customers in `recomputed_ids`, the
    `previous` one for everybody else (no raw row of theirs landed, so theirs cannot have changed).
    """
    return previous.join(recomputed_ids, "customer_id", "left_anti").unionByName(recomputed)


def customers_to(changes: DataFrame, *actions: str) -> DataFrame:
    """customer_id of the changed customers whose change is one of `actions`."""
    return changes.where(F.col("action").isin(*actions)).select("customer_id")


def _touched(cutoff: dt.datetime | None) -> Column:
    """Rows that landed after the cutoff or belong to a recomputed customer (flagged by the join below)."""
    landed = (
        F.coalesce(F.col("_ingested_at") > F.lit(cutoff).cast(T.TimestampType()), F.lit(False))
        if cutoff is not None
        else F.lit(True)
    )
    return landed | F.col("_flagged_customer").isNotNull()


def _with_customer_flag(rows: DataFrame, customer_ids: DataFrame | None) -> DataFrame:
    if customer_ids is None:
        return rows.withColumn("_flagged_customer", F.lit(None).cast(T.BooleanType()))
    flagged = F.broadcast(customer_ids.select("customer_id", F.lit(True).alias("_flagged_customer")))
    return rows.join(flagged, "customer_id", "left")


def affected_orders(
    landed: DataFrame, raw_orders: DataFrame, recomputed_customer_ids: DataFrame | None, redated: DataFrame
) -> DataFrame:
    """order_id of every order to recompute from raw: a raw row of it landed, it has a row of a
    customer who stopped being a test user (None when there is none: raw history is not scanned),
    or it is in `redated` (order_id of orders whose order_ts the run's time makes (im)plausible).
    """
    ids = landed.where(F.col("order_id").isNotNull()).select("order_id").unionByName(redated.select("order_id"))
    if recomputed_customer_ids is not None:
        customers = F.broadcast(recomputed_customer_ids.select("customer_id"))
        ids = ids.unionByName(
            raw_orders.select("order_id", "customer_id")
            .where(F.col("order_id").isNotNull())
            .join(customers, "customer_id", "left_semi")
            .select("order_id")
        )
    return ids.distinct()


def redated_orders(
    quarantine: DataFrame,
    mart: DataFrame,
    order_ts_bounds: tuple[dt.datetime, dt.datetime],
    previous_latest: str | None,
    reporting_timezone: str,
) -> DataFrame:
    """order_id of the orders whose order_ts this run's bounds judge otherwise than the last run's
    (`previous_latest`, MartState.latest_order_ts): recompute them from raw.

    The latest plausible order_ts moves with the run's time: an order stamped a few days ahead is
    published once its time is near, as a rebuild at that time would publish it. Only when the time
    goes back (a rerun given an earlier --run-timestamp) can mart rows become implausible.
    """
    released = quarantine.where(
        (F.col("quarantine_reason") == IMPLAUSIBLE_ORDER_TS)
        & ~is_implausible_order_ts(F.col("order_ts"), order_ts_bounds)
    ).select("order_id")
    latest = order_ts_bounds[1]
    if previous_latest is not None and latest >= dt.datetime.fromisoformat(previous_latest):
        return released
    return released.unionByName(_stamped_after(mart, latest, reporting_timezone))


def _stamped_after(mart: DataFrame, latest: dt.datetime, reporting_timezone: str) -> DataFrame:
    """order_id of the mart rows stamped after `latest`; the order_date filter lets Delta skip every
    file of earlier dates."""
    latest_date = latest.astimezone(ZoneInfo(reporting_timezone)).date()  # rule 5's order_date of `latest`
    return mart.where(
        (F.col("order_date") >= F.lit(latest_date)) & (F.col("order_ts") > F.lit(latest).cast(T.TimestampType()))
    ).select("order_id")


def raw_versions_of(
    raw_orders: DataFrame,
    affected: DataFrame,
    affected_range: tuple[str | None, str | None],
    cutoff: dt.datetime | None,
    recomputed_customer_ids: DataFrame | None,
    landed: DataFrame,
) -> DataFrame:
    """Every raw version of the affected orders, plus the touched rows without an order_id.

    `affected_range` is (min, max) of the affected order ids (see key_range). Rows without an
    order_id cannot be deduplicated (they are quarantined one by one), so only the touched ones
    are recomputed: those that landed, and, when there are recomputed customers, theirs (which
    needs the whole raw table; otherwise only the landed rows are read). The others keep their
    place in quarantine_orders.
    """
    versions = key_range(raw_orders, "order_id", *affected_range).join(affected, "order_id", "left_semi")
    source = landed if recomputed_customer_ids is None else raw_orders
    unidentified = _with_customer_flag(source.where(F.col("order_id").isNull()), recomputed_customer_ids)
    unidentified = unidentified.where(_touched(cutoff))
    return versions.unionByName(unidentified.select(*raw_orders.columns))


def key_range(df: DataFrame, key: str, low: str | None, high: str | None) -> DataFrame:
    """`df` cut to keys in [low, high] (none when there are none), as literals Delta can skip files with.

    Only a pre-filter: the semi-join after it decides which rows match. It lets the scan skip the
    files no key can be in, since raw files are written in landing order and recent orders sit
    together; the incremental read of old history costs little when changes are recent.
    """
    if low is None:
        return df.where(F.lit(False))
    return df.where(F.col(key).between(F.lit(low), F.lit(high)))


def untouched_quarantine(
    quarantine: DataFrame,
    affected: DataFrame,
    cutoff: dt.datetime | None,
    recomputed_customer_ids: DataFrame | None,
    removed_customer_ids: DataFrame,
) -> DataFrame:
    """The quarantined rows this run neither recomputes nor removes: they stay as they are.

    Quarantine holds only orders that count, so the rows of a customer who became a test user go.
    """
    kept = quarantine.join(F.broadcast(removed_customer_ids.select("customer_id")), "customer_id", "left_anti")
    identified = kept.where(F.col("order_id").isNotNull()).join(affected, "order_id", "left_anti")
    unidentified = _with_customer_flag(kept.where(F.col("order_id").isNull()), recomputed_customer_ids)
    unidentified = unidentified.where(~_touched(cutoff))
    return identified.select(*QUARANTINE_COLUMNS).unionByName(unidentified.select(*QUARANTINE_COLUMNS))


def _edits(changes: DataFrame, *actions: str) -> DataFrame:
    return F.broadcast(
        changes.where(F.col("action").isin(*actions)).select(
            "customer_id", F.col("customer_segment").alias("_new_segment")
        )
    )


def published_rows(
    mart: DataFrame, affected: DataFrame, changes: DataFrame, target_dates: list[dt.date] | None
) -> DataFrame:
    """The mart rows the change may replace or delete, in one pass over the mart: those of the
    affected orders, and those of re-labelled and removed customers' orders wherever they lie.

    `target_dates` are the order dates of the affected orders' rows (Delta skips the files of other
    dates), or None to read the whole mart (when customers are edited their rows can be anywhere,
    so the one pass over the whole mart serves both).
    """
    rows = mart if target_dates is None else mart.where(F.col("order_date").isin(target_dates))
    orders = F.broadcast(affected.select("order_id", F.lit(True).alias("_affected")))
    customers = F.broadcast(customers_to(changes, RELABEL, REMOVE).withColumn("_edited", F.lit(True)))
    flagged = rows.join(orders, "order_id", "left").join(customers, "customer_id", "left")
    return flagged.where(F.col("_affected").isNotNull() | F.col("_edited").isNotNull()).select(*MART_COLUMNS)


def relabelled(published: DataFrame, changes: DataFrame, affected: DataFrame) -> DataFrame:
    """The re-labelled customers' rows among `published` (not recomputed from raw), with the new segment.

    A removed customer's rows have no new row: mart_changes turns them into deletions.
    """
    rows = published.join(affected, "order_id", "left_anti").join(_edits(changes, RELABEL), "customer_id")
    return rows.withColumn("customer_segment", F.col("_new_segment")).select(*MART_COLUMNS)


# --- the change to the mart ------------------------------------------------------------------


@dataclass(frozen=True)
class ReplacedRows:
    """Where the mart rows a change replaces or deletes lie: what the MERGE may match.

    Every such row is on one of `dates`; of those, it is on one of `order_dates` (the dates of the
    affected orders' rows) or it belongs to one of `customers` (relabelled or removed, whose rows
    can be on any date).
    """

    dates: tuple[dt.date, ...] = ()
    order_dates: tuple[dt.date, ...] = ()
    customers: tuple[str, ...] = ()

    def condition(self, table: str) -> Column:
        """The rows as a condition on the mart's columns under the alias `table`.

        A segment move touches rows on every date, so the MERGE reads every file. With this
        condition Spark drops every row of theirs it cannot match before the MERGE joins them with
        the change (an outer join: without it every row read is shuffled).
        """
        if not self.dates:
            return F.lit(False)
        dates = F.col(f"{table}.order_date").isin(list(self.dates))
        if not self.customers:
            return dates  # only affected orders' rows: order_dates are the dates
        return dates & (
            F.col(f"{table}.order_date").isin(list(self.order_dates))
            | F.col(f"{table}.customer_id").isin(list(self.customers))
        )


def mart_changes(published: DataFrame, staged: DataFrame) -> DataFrame:
    """The MERGE source: for each affected order whose mart row changes, its new row or a deletion.

    `published` holds the mart's rows of the affected orders, `staged` their recomputed rows. Each
    output row has the staged mart columns, `_present` (false: delete the order's row) and
    `_target_date` (order_date of the row it replaces; null for a new order).
    """
    old = published.select(*[F.col(c).alias(f"_old_{c}") for c in MART_COLUMNS])
    joined = staged.join(old, staged["order_id"] == old["_old_order_id"], "full_outer")
    same = F.lit(True)
    for column in MART_COLUMNS:
        same = same & F.col(column).eqNullSafe(F.col(f"_old_{column}"))
    return joined.where(~same).select(
        *[
            F.coalesce(F.col("order_id"), F.col("_old_order_id")).alias("order_id") if c == "order_id" else F.col(c)
            for c in MART_COLUMNS
        ],
        staged["order_id"].isNotNull().alias("_present"),
        F.col("_old_order_date").alias("_target_date"),
    )


def mart_after(mart_rows: DataFrame, replaced: DataFrame, staged: DataFrame) -> DataFrame:
    """What the mart holds once the change is applied: its rows of other orders, and the staged rows.

    `replaced` holds the order_id of every order whose row the change may replace or delete.
    """
    return (
        mart_rows.join(replaced, "order_id", "left_anti")
        .select(*MART_COLUMNS)
        .unionByName(staged.select(*MART_COLUMNS))
    )
