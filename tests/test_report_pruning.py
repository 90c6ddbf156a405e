"""The 30-day report reads only its window's files of a mart that spans a year.

Proved with the scan metrics Spark itself reports (files and bytes read), not with the plan's text.
"""

import datetime as dt

import pytest
from lakehouse import Lakehouse
from pyspark.sql import functions as F
from rows import ts

from growth_revenue import mart_layout, reading, scanstats, tables, transforms
from growth_revenue.exit_codes import ExitCode
from growth_revenue.locations import Location

AS_OF = dt.date(2026, 11, 25)
DAYS = 365


@pytest.fixture(scope="module")
def year_of_mart(spark, config, tmp_path_factory):
    """The job's own mart over 365 days of orders (20 a day), published by a full run."""
    lakehouse = Lakehouse(spark, tmp_path_factory.mktemp("year"))
    first = dt.datetime(2025, 11, 25, tzinfo=dt.timezone.utc)
    orders = (
        spark.range(DAYS * 20)
        .select(
            F.format_string("O%06d", "id").alias("order_id"),
            F.format_string("C%03d", F.col("id") % 100).alias("customer_id"),
            (F.lit(first) + F.make_interval(days=(F.col("id") / 20).cast("int"), hours=F.lit(12))).alias("order_ts"),
            F.lit("completed").alias("status"),
            (F.col("id") % 1000 + 1).cast("decimal(18,2)").alias("amount"),
        )
        .withColumn("updated_at", F.col("order_ts"))
        .withColumn("_ingested_at", F.lit(ts("2026-11-25 06:00:00")))
    )
    customers = spark.range(100).select(
        F.format_string("C%03d", "id").alias("customer_id"),
        F.format_string("c%d@shop.io", "id").alias("email"),
        F.when(F.col("id") % 2 == 0, "smb").otherwise("enterprise").alias("customer_segment"),
        F.lit(False).alias("is_test_user"),
        F.lit(ts("2026-01-01 00:00:00")).alias("updated_at"),
    )
    for frame, name in ((orders, tables.RAW_ORDERS), (customers, tables.RAW_CUSTOMERS)):
        frame.write.format("delta").save(str(lakehouse.raw_path(name)))
    assert lakehouse.run(config, as_of=AS_OF, at=ts("2026-11-25 07:00:00")).exit_code == ExitCode.OK
    return Location(path=str(lakehouse.out / tables.MART))


@pytest.mark.slow
def test_the_report_reads_only_the_files_of_its_30_days(spark, config, year_of_mart):
    mart = reading.read_output(spark, year_of_mart)
    assert mart.select("order_date").distinct().count() == DAYS
    total_files, total_bytes = scanstats.table_files(spark, year_of_mart.path)

    report = transforms.revenue_by_segment(
        mart, AS_OF, config.rules.report_window_days, dt.datetime.now(dt.timezone.utc), "pruning"
    )
    read = scanstats.scan_metrics(report)

    window_files = (
        mart.where(F.col("order_date").between(*transforms.report_window(AS_OF, 30)))
        .select(F.input_file_name())
        .distinct()
        .count()
    )
    # A file per week of dates (mart_layout), and only the files of the window's days: 30 days
    # overlap 5 or 6 weeks.
    assert total_files == mart_layout.ranges(dt.date(2025, 11, 25), dt.date(2026, 11, 24), 7) == 53
    assert read.files_read == window_files <= 6
    assert read.bytes_read <= 2 * 30 / 365 * total_bytes


@pytest.mark.slow
def test_a_scan_of_the_whole_mart_reads_every_file(spark, year_of_mart):
    """The measurement itself can fail: without the date filter every file is read."""
    mart = reading.read_output(spark, year_of_mart)
    read = scanstats.scan_metrics(mart.groupBy("customer_segment").agg(F.sum("revenue")))
    assert (read.files_read, read.bytes_read) == scanstats.table_files(spark, year_of_mart.path)
