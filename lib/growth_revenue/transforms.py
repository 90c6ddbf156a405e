"""The business rules, as pure functions DataFrame -> DataFrame with explicit parameters.

No session, no I/O, no config objects: a notebook, a test or another platform can call any of
these on its own. Rule numbers refer to README "The rules".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F
from pyspark.sql import types as T

from growth_revenue.matching import _normalised, _normalised_domains, email_domain, matching_text

MART_COLUMNS = (
    "order_id",
    "customer_id",
    "customer_segment",
    "order_ts",
    "order_date",
    "status",
    "revenue",
    "updated_at",
    "_ingested_at",
)

# Identifiers and event times: a new value on almost every row of a mart file. A full rebuild writes
# them without a Parquet dictionary, which only costs on such columns (writing._without_dictionary).
# The nightly MERGE's few rows per file keep the default: it gained nothing measurable there.
MART_HIGH_CARDINALITY_COLUMNS = ("order_id", "customer_id", "order_ts", "updated_at")

REPORT_REVENUE_TYPE = T.DecimalType(38, 2)  # a sum of decimal(18,2) that cannot overflow or round


# --- Rule 1: latest version wins ------------------------------------------------------------


def latest_orders(raw_orders: DataFrame) -> DataFrame:
    """One row per order_id: greatest updated_at, then greatest _ingested_at.

    Rows identical in both are broken on the remaining columns so reruns agree with each other.
    Rows with a null order_id are not orders and are dropped.
    """
    return _latest_with_versions(raw_orders.where(F.col("order_id").isNotNull())).drop("versions")


def _latest_with_versions(raw_orders: DataFrame) -> DataFrame:
    """latest_orders plus `versions`, how many raw rows the order had, and every row without an
    order_id kept as its own row (`versions` 1).

    One Window step over one scan: the count is taken over rule 1's own window (whole frame), so
    the raw rows are sorted once, and the rows without an order_id (one window partition, rare in
    practice) are kept from the same pass instead of a second scan of raw_orders.
    """
    newest_first = Window.partitionBy("order_id").orderBy(
        F.col("updated_at").desc_nulls_last(),
        F.col("_ingested_at").desc_nulls_last(),
        F.col("status").asc_nulls_last(),
        F.col("amount").desc_nulls_last(),
        F.col("customer_id").asc_nulls_last(),
        F.col("order_ts").desc_nulls_last(),
    )
    whole_order = newest_first.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    unidentified = F.col("order_id").isNull()
    return (
        raw_orders.withColumn(
            "versions", F.when(unidentified, F.lit(1)).otherwise(F.count(F.lit(1)).over(whole_order)).cast("long")
        )
        .withColumn("_rank", F.row_number().over(newest_first))
        .where(unidentified | (F.col("_rank") == 1))
        .drop("_rank")
    )


def latest_customers(raw_customers: DataFrame) -> DataFrame:
    """One row per customer_id: greatest updated_at (deterministic on exact ties)."""
    newest_first = Window.partitionBy("customer_id").orderBy(
        F.col("updated_at").desc_nulls_last(),
        F.col("is_test_user").desc_nulls_last(),
        F.col("email").asc_nulls_last(),
        F.col("customer_segment").asc_nulls_last(),
    )
    return _first_in_window(raw_customers.where(F.col("customer_id").isNotNull()), newest_first)


def _first_in_window(df: DataFrame, window: WindowSpec) -> DataFrame:
    return df.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")


# --- Rule 2: revenue orders -----------------------------------------------------------------


def is_revenue_status(status: Column, revenue_statuses: Iterable[str]) -> Column:
    return F.coalesce(matching_text(status).isin(_normalised(revenue_statuses)), F.lit(False))


# --- Rules 3 and 4: test users and segments -------------------------------------------------


def is_test_customer(is_test_user: Column, email: Column, test_email_domains: Iterable[str]) -> Column:
    """Flagged as a test user, or the e-mail's domain (email_domain) is exactly a test domain."""
    by_domain = F.coalesce(email_domain(email).isin(_normalised_domains(test_email_domains)), F.lit(False))
    return F.coalesce(is_test_user, F.lit(False)) | by_domain


def segment_of(customer_segment: Column, unknown_segment: str) -> Column:
    """matching_text(segment); null, or nothing but padding, becomes the unknown segment."""
    segment = matching_text(customer_segment)
    return F.when(segment.isNull() | (segment == ""), F.lit(unknown_segment)).otherwise(segment)


def customer_profiles(raw_customers: DataFrame, test_email_domains: Iterable[str], unknown_segment: str) -> DataFrame:
    """customer_id, customer_segment, is_test_customer from each customer's latest version.

    The e-mail is used to decide test users and goes no further.
    """
    latest = latest_customers(raw_customers)
    return latest.select(
        "customer_id",
        segment_of(F.col("customer_segment"), unknown_segment).alias("customer_segment"),
        is_test_customer(F.col("is_test_user"), F.col("email"), test_email_domains).alias("is_test_customer"),
    )


# --- Rule 5: order date ---------------------------------------------------------------------


def order_date_in(order_ts: Column, reporting_timezone: str) -> Column:
    """Calendar date of the instant `order_ts` in `reporting_timezone` (needs a UTC session)."""
    return F.to_date(F.from_utc_timestamp(order_ts, reporting_timezone))


# --- The mart -------------------------------------------------------------------------------


# Why an order cannot be published, checked in this order (README "Quarantine").
MISSING_ORDER_ID, MISSING_ORDER_TS, MISSING_AMOUNT = "missing_order_id", "missing_order_ts", "missing_amount"
IMPLAUSIBLE_ORDER_TS = "implausible_order_ts"
QUARANTINE_REASONS = (MISSING_ORDER_ID, MISSING_ORDER_TS, IMPLAUSIBLE_ORDER_TS, MISSING_AMOUNT)

QUARANTINE_COLUMNS = (
    "order_id",
    "customer_id",
    "order_ts",
    "status",
    "amount",
    "updated_at",
    "_ingested_at",
    "quarantine_reason",
)


def plausible_order_ts(
    run_timestamp: dt.datetime, max_future_skew_hours: float, earliest_order_date: dt.date, reporting_timezone: str
) -> tuple[dt.datetime, dt.datetime]:
    """(earliest, latest) order_ts a real order can have, as UTC instants.

    The earliest is the start of `earliest_order_date` in the reporting time zone (so its order_date,
    rule 5, is that day); the latest is the run's own time plus the clock skew allowed between the
    systems that stamp orders and the one that runs the job.
    """
    earliest = dt.datetime.combine(earliest_order_date, dt.time(0), ZoneInfo(reporting_timezone))
    latest = run_timestamp + dt.timedelta(hours=max_future_skew_hours)
    return earliest.astimezone(dt.timezone.utc), latest.astimezone(dt.timezone.utc)


def classify_orders(
    raw_orders: DataFrame,
    profiles: DataFrame,
    revenue_statuses: Iterable[str],
    unknown_segment: str,
    order_ts_bounds: tuple[dt.datetime, dt.datetime],
) -> DataFrame:
    """Every order's latest version with the facts the rules decide on.

    Adds customer_segment, is_revenue, is_test_customer, has_customer, versions (how many raw
    rows the order had) and quarantine_reason, so the run can report what each rule removed
    from one cached frame. A raw row without an order_id cannot be deduplicated: it is kept as
    its own row, so that it can be quarantined rather than silently dropped. `order_ts_bounds`
    is plausible_order_ts.
    """
    latest = _latest_with_versions(raw_orders)
    joined = latest.join(profiles.withColumn("has_customer", F.lit(True)), "customer_id", "left")
    is_revenue = is_revenue_status(F.col("status"), revenue_statuses)
    return joined.select(
        *latest.columns,
        F.coalesce(F.col("customer_segment"), F.lit(unknown_segment)).alias("customer_segment"),
        is_revenue.alias("is_revenue"),
        F.coalesce(F.col("is_test_customer"), F.lit(False)).alias("is_test_customer"),
        F.coalesce(F.col("has_customer"), F.lit(False)).alias("has_customer"),
        quarantine_reason(is_revenue, order_ts_bounds).alias("quarantine_reason"),
    )


def is_implausible_order_ts(order_ts: Column, order_ts_bounds: tuple[dt.datetime, dt.datetime]) -> Column:
    """order_ts outside plausible_order_ts (null for a null order_ts)."""
    earliest, latest = (F.lit(bound).cast(T.TimestampType()) for bound in order_ts_bounds)
    return (order_ts < earliest) | (order_ts > latest)


def quarantine_reason(is_revenue: Column, order_ts_bounds: tuple[dt.datetime, dt.datetime]) -> Column:
    """Why a row cannot become a mart row, or null: no order_id, no order_ts, an order_ts outside
    the plausible bounds, or revenue with no amount."""
    return (
        F.when(F.col("order_id").isNull(), F.lit(MISSING_ORDER_ID))
        .when(F.col("order_ts").isNull(), F.lit(MISSING_ORDER_TS))
        .when(is_implausible_order_ts(F.col("order_ts"), order_ts_bounds), F.lit(IMPLAUSIBLE_ORDER_TS))
        .when(is_revenue & F.col("amount").isNull(), F.lit(MISSING_AMOUNT))
    )


def _counts_as_revenue() -> Column:
    return F.col("is_revenue") & ~F.col("is_test_customer")


def counted_orders(classified: DataFrame) -> DataFrame:
    """Revenue orders of real customers: what the mart and the quarantine are both cut from."""
    return classified.where(_counts_as_revenue())


def mart_orders(classified: DataFrame, reporting_timezone: str) -> DataFrame:
    """Revenue orders of real customers that can be published, with only the columns downstream needs."""
    return classified.where(_counts_as_revenue() & F.col("quarantine_reason").isNull()).select(
        "order_id",
        "customer_id",
        "customer_segment",
        "order_ts",
        order_date_in(F.col("order_ts"), reporting_timezone).alias("order_date"),
        "status",
        F.col("amount").alias("revenue"),
        "updated_at",
        "_ingested_at",
    )


def quarantined_orders(classified: DataFrame) -> DataFrame:
    """Revenue orders of real customers that cannot be published, as they arrived, with the reason.

    Only rows that would have counted are quarantined: a cancelled order or a test user's order
    without an amount is not missing from any number.
    """
    return classified.where(_counts_as_revenue() & F.col("quarantine_reason").isNotNull()).select(*QUARANTINE_COLUMNS)


def build_mart(
    raw_orders: DataFrame,
    raw_customers: DataFrame,
    revenue_statuses: Iterable[str],
    test_email_domains: Iterable[str],
    unknown_segment: str,
    reporting_timezone: str,
    order_ts_bounds: tuple[dt.datetime, dt.datetime],
) -> DataFrame:
    """Rules 1-5 end to end: the rows of mart_orders_enriched."""
    profiles = customer_profiles(raw_customers, test_email_domains, unknown_segment)
    classified = classify_orders(raw_orders, profiles, revenue_statuses, unknown_segment, order_ts_bounds)
    return mart_orders(classified, reporting_timezone)


def build_quarantine(
    raw_orders: DataFrame,
    raw_customers: DataFrame,
    revenue_statuses: Iterable[str],
    test_email_domains: Iterable[str],
    unknown_segment: str,
    order_ts_bounds: tuple[dt.datetime, dt.datetime],
) -> DataFrame:
    """The rows of quarantine_orders (without the run columns) for these raw tables."""
    profiles = customer_profiles(raw_customers, test_email_domains, unknown_segment)
    return quarantined_orders(classify_orders(raw_orders, profiles, revenue_statuses, unknown_segment, order_ts_bounds))


# --- Rule 6: the 30-day report --------------------------------------------------------------


def report_window(as_of: dt.date, window_days: int) -> tuple[dt.date, dt.date]:
    """(first, last) order_date of the report for `as_of`: the complete days before it."""
    return as_of - dt.timedelta(days=window_days), as_of - dt.timedelta(days=1)


def revenue_by_segment(
    mart: DataFrame, as_of: dt.date, window_days: int, computed_at: dt.datetime, run_id: str
) -> DataFrame:
    """One row per segment with at least one mart order in the window."""
    start, end = report_window(as_of, window_days)
    in_window = mart.where(F.col("order_date").between(F.lit(start), F.lit(end)))
    return (
        in_window.groupBy("customer_segment")
        .agg(
            F.sum("revenue").cast(REPORT_REVENUE_TYPE).alias("revenue"),
            F.count("order_id").alias("order_count"),
            F.countDistinct("customer_id").alias("customer_count"),
        )
        .select(
            F.lit(as_of).alias("as_of_date"),
            F.lit(start).alias("window_start"),
            F.lit(end).alias("window_end"),
            "customer_segment",
            "revenue",
            "order_count",
            "customer_count",
            F.lit(computed_at).cast(T.TimestampType()).alias("computed_at"),
            F.lit(run_id).alias("run_id"),
        )
    )


def with_run_columns(quarantine: DataFrame, as_of: dt.date, run_id: str) -> DataFrame:
    """quarantine_orders rows: the quarantined orders and the run that set them aside."""
    return quarantine.select(*QUARANTINE_COLUMNS, F.lit(as_of).alias("as_of_date"), F.lit(run_id).alias("run_id"))


def with_mart_version(report: DataFrame, mart_version: int) -> DataFrame:
    """The report rows naming the mart_orders_enriched version they were computed from."""
    return report.withColumn("mart_version", F.lit(mart_version).cast(T.LongType()))


def with_test_customer_flag(mart: DataFrame, profiles: DataFrame) -> DataFrame:
    """The mart with customer_kind ('test' or 'real') looked up afresh, for the quality gate.

    Independent of the filter that built the mart, so a test-user order that slipped past it
    is caught.
    """
    test_ids = profiles.where("is_test_customer").select("customer_id", F.lit("test").alias("customer_kind"))
    return mart.join(test_ids, "customer_id", "left").withColumn(
        "customer_kind", F.coalesce(F.col("customer_kind"), F.lit("real"))
    )
