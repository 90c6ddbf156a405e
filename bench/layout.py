"""Which layout for mart_orders_enriched: partitioned by order_date, liquid-clustered on it, or
date-ranged files?

    .venv-3.5/bin/python bench/layout.py --orders 3000000     (or: make bench-layout)

Writes the same mart rows (a year of orders) four ways, date-ranged files twice (kept by a plain
OPTIMIZE, or by one that sorts by order_date into bounded files), and measures, median of --repeat runs:
- the write (for liquid clustering: the write plus the OPTIMIZE that clusters it);
- the 30-day report over it: seconds, and files/bytes read from Spark's scan metrics;
- one nightly MERGE as the incremental job does it (writing.merge_by_key): a new day of orders,
  2% of the last 60 days' orders updated or deleted, and the orders of 0.05% of the customers
  relabelled wherever they lie (a segment move touches every date);
- --nights such nights (a week), then the report's share again, then after an OPTIMIZE: a plain
  one (a scheduled maintenance, or Databricks' predictive optimization), or for the last
  date-ranged layout the job's own re-sort (writing.sort_into_ranges, docs/incremental.md "The
  mart's layout"): a layout must keep pruning as the nights and the upkeep go by.
The unclustered table is the baseline that shows what each layout saves. Writes docs/mart_layout.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import shutil
import statistics
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from growth_revenue import incremental, mart_layout, publishing, scanstats, transforms
from growth_revenue.config import load_config
from growth_revenue.locations import Location
from growth_revenue.session import get_spark, stop_spark
from growth_revenue.sparkutil import single_row
from growth_revenue.writing import TARGET, merge_by_key, overwrite, sort_into_ranges

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 11, 25)
LAYOUTS = (
    "partitioned by order_date",
    "liquid clustering on order_date",
    "date-ranged files (a week of order dates each)",
    "date-ranged files, kept by OPTIMIZE ZORDER BY order_date",
    "neither (baseline)",
)
PARTITIONED, CLUSTERED, DATE_RANGED, DATE_RANGED_ZORDERED, BASELINE = LAYOUTS
DELETION_VECTORS = {publishing.DELETION_VECTORS: "true"}  # as the job creates its mart (incremental.deletion_vectors)


@dataclasses.dataclass
class Measured:
    layout: str
    write_s: float = 0.0
    files: int = 0
    bytes: int = 0
    report_s: float = 0.0
    report_files: int = 0
    report_bytes: int = 0
    merge_s: float = 0.0
    merge_files_added: int = 0
    nights_merges_s: float = 0.0
    nights_files: int = 0
    nights_share: float = 0.0
    optimized_files: int = 0
    optimized_share: float = 0.0


def mart_rows(spark: SparkSession, orders: int, days: int) -> DataFrame:
    """Mart-shaped rows spread evenly over `days` days before AS_OF (a hash decides each value)."""
    first = dt.datetime.combine(AS_OF - dt.timedelta(days=days), dt.time(0), dt.timezone.utc)
    ts = F.lit(first) + F.make_interval(secs=(F.col("id") * (days * 86400) / orders).cast("int"))
    return spark.range(orders).select(
        F.format_string("O%010d", "id").alias("order_id"),
        F.format_string("C%08d", F.abs(F.xxhash64("id")) % (orders // 10 + 1)).alias("customer_id"),
        F.element_at(
            F.array(*map(F.lit, ("smb", "enterprise", "mid-market", "consumer", "unknown"))),
            (F.abs(F.xxhash64("id", F.lit("s"))) % 5 + 1).cast("int"),
        ).alias("customer_segment"),
        ts.alias("order_ts"),
        F.to_date(ts).alias("order_date"),
        F.lit("completed").alias("status"),
        ((F.abs(F.xxhash64("id", F.lit("a"))) % 50000 + 100) / 100).cast("decimal(18,2)").alias("revenue"),
        ts.alias("updated_at"),
        ts.alias("_ingested_at"),
    )


def nightly_changes(spark: SparkSession, mart: DataFrame, orders: int, days: int, night: int) -> DataFrame:
    """Night `night`'s MERGE source: a new day of orders; 2% of the last 60 days' orders changed or
    deleted; and every order of 0.05% of the customers relabelled, on whatever date it lies."""
    salt = F.lit(f"night{night}")
    recent = mart.where(F.col("order_date") >= F.lit(AS_OF - dt.timedelta(days=60)))
    touched = recent.where(F.abs(F.xxhash64("order_id", salt, F.lit("t"))) % 50 == 0)
    updated = touched.withColumn("revenue", F.col("revenue") + 1).withColumn("_present", F.lit(True))
    deleted = updated.where(F.abs(F.xxhash64("order_id", salt, F.lit("d"))) % 3 == 0).withColumn(
        "_present", F.lit(False)
    )
    updated = updated.join(deleted.select("order_id"), "order_id", "left_anti")
    moved = (
        mart.where(F.abs(F.xxhash64("customer_id", salt)) % 2000 == 0)
        .join(touched.select("order_id"), "order_id", "left_anti")
        .withColumn("customer_segment", F.concat(F.lit("moved-"), salt))
        .withColumn("_present", F.lit(True))
    )
    new_day = (
        mart_rows(spark, orders // days, 1)
        .withColumn("order_id", F.concat(F.lit(f"N{night}-"), "order_id"))
        .withColumn("_present", F.lit(True))
    )
    changes = updated.unionByName(deleted).unionByName(moved).withColumn("_target_date", F.col("order_date"))
    changes = changes.unionByName(new_day.withColumn("_target_date", F.lit(None).cast("date")))
    return changes.localCheckpoint(eager=True)


def replaced_rows(changes: DataFrame) -> incremental.ReplacedRows:
    """Where the mart rows `changes` replace lie, as the job's staging finds them (staging._replaced_rows)."""
    rows = changes.where("_target_date IS NOT NULL")
    moved = F.col("customer_segment").startswith("moved-")
    dates = sorted(row[0] for row in rows.select("_target_date").distinct().collect())
    order_dates = sorted(row[0] for row in rows.where(~moved).select("_target_date").distinct().collect())
    customers = sorted(row[0] for row in rows.where(moved).select("customer_id").distinct().collect())
    return incremental.ReplacedRows(tuple(dates), tuple(order_dates), tuple(customers))


def write(spark: SparkSession, rows: DataFrame, path: str, layout: str) -> None:
    """`rows` as a new table at `path` in `layout`, with deletion vectors as the job's mart has them."""
    shutil.rmtree(path, ignore_errors=True)
    location = Location(path=path)
    if layout == PARTITIONED:
        # As releases before the date-ranged mart wrote it: one task per date, a few files per date.
        writer = rows.repartition("order_date").write.format("delta").partitionBy("order_date")
        writer.options(**DELETION_VECTORS).save(path)
    elif layout in (DATE_RANGED, DATE_RANGED_ZORDERED):
        # One file per week of order dates, each sorted: the report skips files by their order_date range.
        overwrite(rows, location, mart_layout.RangedFiles("order_date", weeks_of(rows)), properties=DELETION_VECTORS)
    elif layout == CLUSTERED:
        columns = ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in rows.schema.fields)
        properties = ", ".join(f"'{key}' = '{value}'" for key, value in DELETION_VECTORS.items())
        spark.sql(
            f"CREATE TABLE delta.`{path}` ({columns}) USING delta CLUSTER BY (order_date) TBLPROPERTIES ({properties})"
        )
        rows.write.format("delta").mode("append").save(path)
        spark.sql(f"OPTIMIZE delta.`{path}`")
    else:
        overwrite(rows, location, properties=DELETION_VECTORS)


def weeks_of(rows: DataFrame) -> int:
    """How many weeks of order dates `rows` span: the date-ranged layouts' file count, as the job's."""
    first, last = single_row(rows.select(F.min("order_date"), F.max("order_date")))
    return mart_layout.ranges(first, last, days_per_file=7)


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def measure(
    spark: SparkSession, rows: DataFrame, nights: list[DataFrame], path: str, layout: str, repeat: int
) -> Measured:
    result = Measured(layout)
    result.write_s = statistics.median(timed(lambda: write(spark, rows, path, layout)) for _ in range(repeat))
    result.files, result.bytes = scanstats.table_files(spark, path)
    result.report_s = statistics.median(timed(lambda: report(spark, path).collect()) for _ in range(repeat))
    read = scanstats.scan_metrics(report(spark, path))
    result.report_files, result.report_bytes = read.files_read, read.bytes_read

    def merge(changes: DataFrame) -> float:
        replaced = replaced_rows(changes).condition(TARGET)
        return timed(
            lambda: merge_by_key(changes, Location(path=path), "order_id", transforms.MART_COLUMNS, replaced, "layout")
        )

    merges = []
    for _ in range(repeat):
        write(spark, rows, path, layout)
        merges.append(merge(nights[0]))
    result.merge_s = statistics.median(merges)
    metrics = single_row(spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1"))["operationMetrics"]
    result.merge_files_added = int(metrics.get("numTargetFilesAdded", 0))

    result.nights_merges_s = merges[-1] + sum(merge(changes) for changes in nights[1:])  # the last run's nights
    result.nights_files, result.nights_share = share_read(spark, path)
    optimize(spark, path, layout)
    result.optimized_files, result.optimized_share = share_read(spark, path)
    return result


def optimize(spark: SparkSession, path: str, layout: str) -> None:
    """The upkeep: a plain OPTIMIZE, or for the zordered layout the job's re-sort, which keeps date
    ranges: sorted by order_date into files of a week's share of the mart."""
    if layout != DATE_RANGED_ZORDERED:
        spark.sql(f"OPTIMIZE delta.`{path}`")
        return
    size = scanstats.table_files(spark, path)[1]
    weeks = weeks_of(spark.read.format("delta").load(path))
    sort_into_ranges(spark, Location(path=path), "order_date", mart_layout.max_file_bytes(size, weeks), "layout-bench")


def report(spark: SparkSession, path: str) -> DataFrame:
    mart = spark.read.format("delta").load(path)
    return transforms.revenue_by_segment(mart, AS_OF, 30, dt.datetime.now(dt.timezone.utc), "layout")


def share_read(spark: SparkSession, path: str) -> tuple[int, float]:
    """The table's files, and the share of its bytes the report reads."""
    files, size = scanstats.table_files(spark, path)
    return files, scanstats.scan_metrics(report(spark, path)).bytes_read / size


def render(args, results: list[Measured], changes: int) -> str:
    mib = 1024 * 1024
    limit = 2 * 30 / args.days
    lines = [
        "# Mart layout: partitioning, liquid clustering or date-ranged files",
        "",
        f"Written by `bench/layout.py` (`--orders {args.orders} --days {args.days} --repeat {args.repeat} --nights {args.nights}`), "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, on the 2-core bench machine. The same "
        f"{args.orders:,} mart rows over {args.days} days, written four ways (date-ranged files with two upkeeps); the report is the 30-day window "
        f"as of {AS_OF}; the first nightly MERGE applies {changes:,} changes (a new day, 2% of the last 60 "
        "days updated or deleted, every order of 0.05% of the customers relabelled wherever it lies) with "
        f"the job's `writing.merge_by_key`; {args.nights} such nights in all, then an OPTIMIZE: a plain one, "
        "or for the last date-ranged layout the job's own re-sort ([incremental.md](incremental.md#the-marts-layout)). "
        "Median of the runs; the columns from the nights on are the last run's.",
        "",
        "| layout | write s | files | MiB | report s | report files read | report MiB read | share of bytes "
        f"| nightly MERGE s | files added | {args.nights} MERGEs s | files after them | share after them | "
        "files after OPTIMIZE | share after OPTIMIZE |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.layout} | {r.write_s:.1f} | {r.files:,} | {r.bytes / mib:,.1f} | {r.report_s:.2f} | "
            f"{r.report_files:,} | {r.report_bytes / mib:,.1f} | {r.report_bytes / r.bytes:.1%} | "
            f"{r.merge_s:.1f} | {r.merge_files_added:,} | {r.nights_merges_s:.1f} | {r.nights_files:,} | "
            f"{r.nights_share:.1%} | {r.optimized_files:,} | {r.optimized_share:.1%} |"
        )
    meeting = [r.layout for r in results if max(r.report_bytes / r.bytes, r.nights_share, r.optimized_share) <= limit]
    lines += [
        "",
        f"Target: the report reads at most 2 × 30/{args.days} = {limit:.1%} of the mart's bytes, after the "
        f"write, after the nights and after OPTIMIZE; met by: {', '.join(meeting) or 'none'}.",
        "",
        why_date_ranged(results, limit),
        "",
    ]
    return "\n".join(lines)


def why_date_ranged(results: list[Measured], limit: float) -> str:
    by_layout = {r.layout: r for r in results}
    partitioned, ranged, zordered = by_layout[PARTITIONED], by_layout[DATE_RANGED], by_layout[DATE_RANGED_ZORDERED]
    kept = "keeps" if zordered.optimized_share <= limit else "does not keep"
    return (
        "Why the mart is date-ranged files, re-sorted by the job: their nightly MERGE took "
        f"{ranged.merge_s:.1f} s against the partitioned mart's {partitioned.merge_s:.1f} s, which writes a file "
        f"on every date a relabelled customer has orders on ({partitioned.merge_files_added:,} files; "
        f"{partitioned.nights_files:,} after the nights). They prune after the write and after the nights "
        "(each night adds a few files spanning every date it touched, which later reports read), and the "
        "job's re-sort, an OPTIMIZE ZORDER BY order_date into files of a week's share of the mart, "
        f"{kept} their ranges ({zordered.optimized_share:.1%} read after it). The price is that the job owns "
        "the upkeep: on an unpartitioned or liquid-clustered table a plain OPTIMIZE packs the rows into files "
        "of up to `spark.databricks.delta.optimize.maxFileSize` (1 GB by default), so a mart smaller than that "
        "becomes one file that every report reads whole. The job re-sorts after any such OPTIMIZE, and "
        "once the nights' files pass a share of the mart ([incremental.md](incremental.md#the-marts-layout))."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=3_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nights", type=int, default=7, help="nightly MERGEs before the OPTIMIZE (a week)")
    parser.add_argument("--out", default=str(ROOT / "data" / "bench" / "layout"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "mart_layout.md"))
    parser.add_argument("--driver-memory", default="6g")
    args = parser.parse_args(argv)

    config = load_config(ROOT / "conf" / "local.yaml")
    spark = get_spark(
        dataclasses.replace(config.spark, driver_memory=args.driver_memory, ivy_dir=str(ROOT / config.spark.ivy_dir))
    )
    try:
        rows = mart_rows(spark, args.orders, args.days)
        scratch = Path(args.out)
        write(spark, rows, str(scratch / "source"), BASELINE)  # generated once, read by every layout
        rows = spark.read.format("delta").load(str(scratch / "source"))
        nights = [nightly_changes(spark, rows, args.orders, args.days, night) for night in range(args.nights)]
        results = [
            measure(spark, rows, nights, str(scratch / f"layout{n}"), layout, args.repeat)
            for n, layout in enumerate(LAYOUTS)
        ]
        text = render(args, results, nights[0].count())
        print(text)
        if args.doc:
            Path(args.doc).write_text(text)
    finally:
        stop_spark(spark)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
