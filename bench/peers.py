"""The job's peers on the same raw files and rules: the naive Spark report and DuckDB.

Both are written from README "The rules", not from growth_revenue.transforms, so their reports
agreeing with the job's is a cross-check of the rules as well as a timing baseline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import deltalake
import duckdb
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from growth_revenue import tables
from growth_revenue.config import Rules


def report_window(as_of: dt.date, rules: Rules) -> tuple[dt.date, dt.date]:
    return as_of - dt.timedelta(days=rules.report_window_days), as_of - dt.timedelta(days=1)


# Padding is Unicode White_Space or a control character: the separators (Z: Zs, Zl, Zp) and Cc
# cover exactly that set, in Java's regex dialect (Spark) and RE2's (DuckDB) alike.
PADDED = r"^[\p{Z}\p{Cc}]+|[\p{Z}\p{Cc}]+$"
_PADDING = "".join(chr(c) for c in range(0x110000) if chr(c).isspace() or chr(c) < " " or "\x7f" <= chr(c) < "\xa0")


def _normalised(values, domains: bool = False) -> list[str]:
    texts = {v.strip(_PADDING).lower() for v in values}
    return sorted({t[:-1] if domains and t.endswith(".") else t for t in texts})


def plausible(rules: Rules, as_of: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The bench's runs are at 07:00 UTC on the as-of date."""
    earliest = dt.datetime.combine(rules.earliest_order_date, dt.time(0), ZoneInfo(rules.reporting_timezone))
    latest = dt.datetime.combine(as_of, dt.time(7), dt.timezone.utc) + dt.timedelta(hours=rules.max_future_skew_hours)
    return earliest.astimezone(dt.timezone.utc), latest


# --- naive Spark: the report straight from the raw tables ------------------------------------


def naive_report(spark: SparkSession, rules: Rules, raw: Path, as_of: dt.date) -> DataFrame:
    """What the job replaces: dedupe, filter, join and group in one query, every night, from raw."""
    orders = spark.read.format("delta").load(str(raw / tables.RAW_ORDERS)).where("order_id IS NOT NULL")
    customers = spark.read.format("delta").load(str(raw / tables.RAW_CUSTOMERS)).where("customer_id IS NOT NULL")
    newest_order = Window.partitionBy("order_id").orderBy(
        F.col("updated_at").desc_nulls_last(),
        F.col("_ingested_at").desc_nulls_last(),
        F.col("status").asc_nulls_last(),
        F.col("amount").desc_nulls_last(),
        F.col("customer_id").asc_nulls_last(),
        F.col("order_ts").desc_nulls_last(),
    )
    newest_customer = Window.partitionBy("customer_id").orderBy(
        F.col("updated_at").desc_nulls_last(),
        F.col("is_test_user").desc_nulls_last(),
        F.col("email").asc_nulls_last(),
        F.col("customer_segment").asc_nulls_last(),
    )
    latest_orders = orders.withColumn("rn", F.row_number().over(newest_order)).where("rn = 1")
    latest_customers = customers.withColumn("rn", F.row_number().over(newest_customer)).where("rn = 1")

    text = lambda column: F.lower(F.regexp_replace(column, PADDED, ""))  # noqa: E731
    segment = text(F.col("customer_segment"))
    domain = F.when(
        F.col("email").contains("@"), F.regexp_replace(text(F.substring_index("email", "@", -1)), r"\.$", "")
    )
    profiles = latest_customers.select(
        "customer_id",
        F.when(segment.isNull() | (segment == ""), F.lit(rules.unknown_segment)).otherwise(segment).alias("segment"),
        (
            F.coalesce("is_test_user", F.lit(False))
            | F.coalesce(domain.isin(_normalised(rules.test_email_domains, domains=True)), F.lit(False))
        ).alias("is_test"),
    )
    earliest, latest = plausible(rules, as_of)
    start, end = report_window(as_of, rules)
    order_date = F.to_date(F.from_utc_timestamp("order_ts", rules.reporting_timezone))
    counted = (
        latest_orders.where(text(F.col("status")).isin(_normalised(rules.revenue_statuses)))
        .where(
            F.col("order_ts").between(F.lit(earliest), F.lit(latest))  # the quarantined never count
            & F.col("amount").isNotNull()
        )
        .join(profiles, "customer_id", "left")
        .where(~F.coalesce("is_test", F.lit(False)) & order_date.between(F.lit(start), F.lit(end)))
    )
    return counted.groupBy(F.coalesce("segment", F.lit(rules.unknown_segment)).alias("customer_segment")).agg(
        F.sum("amount").cast("decimal(38,2)").alias("revenue"),
        F.count("order_id").alias("order_count"),
        F.countDistinct("customer_id").alias("customer_count"),
    )


# --- DuckDB: the single-node peer ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DuckDBRun:
    mart_rows: int
    mart_seconds: float
    report_seconds: float
    report: list[dict]
    threads: int
    memory_limit: str


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_list(values) -> str:
    return "[" + ", ".join(_sql_text(v) for v in values) + "]"


def duckdb_recompute(
    raw: Path, mart_dir: Path, rules: Rules, as_of: dt.date, memory_limit_mib: int, spill_dir: Path
) -> DuckDBRun:
    """Rules 1-5 over the raw tables' current Parquet files, the mart written as Parquet partitioned by
    order_date (the job's layout), then the 30-day report read back from it.

    DuckDB spills to `spill_dir` beyond `memory_limit_mib` (its default, 80% of RAM, does not know
    that the JVM beside it holds its heap).
    """
    started = time.perf_counter()
    con = duckdb.connect(config={"memory_limit": f"{memory_limit_mib}MiB", "temp_directory": str(spill_dir)})
    con.execute("SET TimeZone = 'UTC'")  # timestamps in the files are UTC instants, as in the job's session
    orders = _sql_list(deltalake.DeltaTable(str(raw / tables.RAW_ORDERS)).file_uris())
    customers = _sql_list(deltalake.DeltaTable(str(raw / tables.RAW_CUSTOMERS)).file_uris())
    unknown = _sql_text(rules.unknown_segment)
    # String order is binary in both engines.
    text = lambda column: f"lower(regexp_replace({column}, {_sql_text(PADDED)}, '', 'g'))"  # noqa: E731
    earliest, latest = (f"TIMESTAMP '{bound.replace(tzinfo=None)}'" for bound in plausible(rules, as_of))
    mart = f"""
        WITH latest_orders AS (
            SELECT * FROM read_parquet({orders}) WHERE order_id IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY updated_at DESC NULLS LAST,
                _ingested_at DESC NULLS LAST, status ASC NULLS LAST, amount DESC NULLS LAST,
                customer_id ASC NULLS LAST, order_ts DESC NULLS LAST) = 1
        ), latest_customers AS (
            SELECT * FROM read_parquet({customers}) WHERE customer_id IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY updated_at DESC NULLS LAST,
                is_test_user DESC NULLS LAST, email ASC NULLS LAST, customer_segment ASC NULLS LAST) = 1
        ), profiles AS (
            SELECT customer_id,
                   coalesce(nullif({text("customer_segment")}, ''), {unknown}) AS segment,
                   coalesce(is_test_user, false)
                   OR coalesce(list_contains({_sql_list(_normalised(rules.test_email_domains, domains=True))},
                                   CASE WHEN contains(email, '@') THEN regexp_replace(
                                       {text("string_split(email, '@')[-1]")}, '\\.$', '') END),
                               false) AS is_test
            FROM latest_customers
        )
        SELECT o.order_id, o.customer_id, coalesce(p.segment, {unknown}) AS customer_segment, o.order_ts,
               CAST(timezone({_sql_text(rules.reporting_timezone)}, CAST(o.order_ts AS TIMESTAMPTZ)) AS DATE)
                   AS order_date,
               o.status, o.amount AS revenue, o.updated_at, o._ingested_at
        FROM latest_orders o LEFT JOIN profiles p ON o.customer_id = p.customer_id
        WHERE list_contains({_sql_list(_normalised(rules.revenue_statuses))}, {text("o.status")})
          AND NOT coalesce(p.is_test, false)
          AND o.order_ts BETWEEN {earliest} AND {latest} AND o.amount IS NOT NULL  -- not the quarantined
    """
    (mart_rows,) = con.execute(
        f"COPY ({mart}) TO {_sql_text(str(mart_dir))} (FORMAT parquet, PARTITION_BY (order_date))"
    ).fetchall()[0]
    mart_done = time.perf_counter()
    start, end = report_window(as_of, rules)
    report = con.execute(f"""
        SELECT customer_segment, CAST(sum(revenue) AS DECIMAL(38, 2)) AS revenue,
               count(order_id) AS order_count, count(DISTINCT customer_id) AS customer_count
        FROM read_parquet({_sql_text(str(mart_dir / "**" / "*.parquet"))}, hive_partitioning = true)
        WHERE order_date BETWEEN DATE '{start}' AND DATE '{end}'
        GROUP BY customer_segment
    """)
    columns = [d[0] for d in report.description]
    rows = [dict(zip(columns, row, strict=True)) for row in report.fetchall()]
    threads, memory_limit = con.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')"
    ).fetchall()[0]
    con.close()
    return DuckDBRun(mart_rows, mart_done - started, time.perf_counter() - mart_done, rows, threads, memory_limit)
