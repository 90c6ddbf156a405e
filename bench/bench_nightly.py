"""Benchmark of the nightly revenue job against a plain PySpark baseline.

    .venv/bin/python bench/bench_nightly.py --orders 5000000     (or: make bench ORDERS=5000000)

1. Generates raw_orders and raw_customers with Spark itself (spark.range + hash expressions, no
   Python loop over rows) as Delta tables under <out>/raw; kept for the next run when the
   generation parameters match (--regenerate forces a rewrite).
2. In one local session (driver memory set before the JVM starts) times, --repeat times each:
   - job:   growth_revenue.pipeline.run, the whole nightly run, writing under <out>/curated;
   - plain: the same rules as one plain PySpark query (dedupe with a window, status filter,
            left join, test-user filter) written as one unpartitioned Delta table to <out>/plain,
            with no quality gate, no rule-effect counts and no partitioning.
   The job on the demo-size lakehouse (sample_data's 6,000 orders) runs first; it also warms
   the JVM so the first large run does not pay for class loading alone.
   --diagnose also times the job's building blocks on their own (computing the mart, caching it,
   writing it partitioned or not) to show where the job's extra time goes.
3. Prints a markdown summary and writes it to docs/benchmarks.md (--doc).

All randomness is a hash of the row id and a salt, so the data is the same however Spark
partitions the range. Paths are relative to the repository root unless absolute.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc
SEED = 20261125
log = logging.getLogger("bench")


# --- arguments -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=5_000_000, help="distinct orders (raw rows are ~10%% more)")
    parser.add_argument("--customers", type=int, help="distinct customers (default: orders / 10)")
    parser.add_argument("--days", type=int, default=365, help="order_ts spread over this many days before as-of")
    parser.add_argument("--out", default="data/bench", help="bench directory: raw/, curated/, plain/, demo/")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each variant; the median is reported")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2026, 11, 25),
                        help="report date; the run timestamp is 07:00 UTC on it")
    parser.add_argument("--regenerate", action="store_true", help="rewrite the raw tables even if they match")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--skip-demo", action="store_true", help="do not time the job on the demo-size lakehouse")
    parser.add_argument("--diagnose", action="store_true",
                        help="also time the job's building blocks on their own (compute vs cache vs write)")
    parser.add_argument("--doc", default="docs/benchmarks.md", help="markdown file to write ('' to skip)")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.repeat < 1 or args.days < 1:
        parser.error("--orders, --repeat and --days must be at least 1")
    args.customers = args.customers or max(1, args.orders // 10)
    args.out = _rooted(args.out)
    args.doc = _rooted(args.doc) if args.doc else None
    return args


def _rooted(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else ROOT / p


# --- data generation -----------------------------------------------------------------------

# Mixed spellings on purpose: the job normalises lower(trim(x)).
STATUSES = ["completed", "completed", "completed", " Completed ", "COMPLETED", "fulfilled", "FULFILLED",
            "cancelled", "pending", "refunded"]
LATER_STATUSES = ["completed", "cancelled", "fulfilled", " Completed ", "REFUNDED"]
SEGMENTS = ["enterprise", " Enterprise", "SMB", "smb ", "mid-market", "Mid-Market", "consumer", "consumer",
            "", "   ", None]
DOMAINS = ["shop.io", "mail.net", "corp.example.org", "sub.test.example"]  # none is a test domain
TEST_DOMAINS = ["example.com", "EXAMPLE.com", "Test.Example"]


def _u(salt: str) -> str:
    """A uniform number in [0, 1) drawn from the row id: same value however the range is split."""
    return f"(pmod(xxhash64(id, {SEED}, '{salt}'), 1000000007) / 1000000007.0)"


def _pick(salt: str, n: int) -> str:
    """An integer in [0, n) drawn from the row id."""
    return f"pmod(xxhash64(id, {SEED}, '{salt}'), {n})"


def _sql_list(values: list) -> str:
    return ", ".join("CAST(NULL AS STRING)" if v is None else "'" + v.replace("'", "''") + "'" for v in values)


def _choice(salt: str, values: list) -> str:
    return f"element_at(array({_sql_list(values)}), CAST({_pick(salt, len(values))} AS INT) + 1)"


def generation_params(args: argparse.Namespace, newest: dt.datetime) -> dict:
    return {"orders": args.orders, "customers": args.customers, "days": args.days,
            "as_of": args.as_of.isoformat(), "newest_ingested_at": newest.isoformat(), "seed": SEED, "format": 1}


def build_raw_orders(spark, orders: int, customers: int, days: int, day0: dt.datetime, newest: dt.datetime):
    from pyspark.sql import functions as F

    from growth_revenue.sample_data import ORDERS_SCHEMA

    day0_s, newest_s = int(day0.timestamp()), int(newest.timestamp())
    parts = max(2, orders // 500_000)
    customer_id = (
        f"CASE WHEN {_u('cust')} < 0.01 THEN CAST(NULL AS STRING) "  # 1% no customer at all
        f"WHEN {_u('cust')} < 0.03 THEN format_string('X%08d', {_pick('orphan', customers)}) "  # 2% orphans
        f"ELSE format_string('C%08d', {_pick('cid', customers)}) END"
    )
    # Order 0 lands exactly at `newest`, so the freshness check sees it whatever the draw.
    ts_s = f"CASE WHEN id = 0 THEN {newest_s - 3600} ELSE {day0_s} - 1 - {_pick('ts', days * 86400)} END"
    cents = f"(500 + {_pick('amount', 49_501)})"
    base = spark.range(0, orders, 1, parts).selectExpr(
        "id",
        "format_string('O%010d', id) AS order_id",
        f"{customer_id} AS customer_id",
        f"{ts_s} AS ts_s",
        f"{_choice('status', STATUSES)} AS status",
        f"CAST(CAST({cents} AS DECIMAL(18,0)) / 100 AS DECIMAL(18,2)) AS amount",
    ).selectExpr(
        "*", f"CASE WHEN id = 0 THEN {newest_s} ELSE least(ts_s + 300 + {_pick('landed', 35_701)}, {newest_s}) END"
        " AS landed_s"
    )
    first = base.selectExpr(
        "order_id", "customer_id", "timestamp_seconds(ts_s) AS order_ts", "status", "amount",
        "timestamp_seconds(landed_s) AS updated_at", "timestamp_seconds(landed_s) AS _ingested_at",
    )
    # ~10% of orders get a later version: a new status, sometimes a corrected amount.
    later = base.where(f"{_u('version')} < 0.10").selectExpr(
        "order_id", "customer_id", "timestamp_seconds(ts_s) AS order_ts",
        f"{_choice('later_status', LATER_STATUSES)} AS status",
        f"CASE WHEN {_u('corrected')} < 0.3 THEN CAST(amount + 1.50 AS DECIMAL(18,2)) ELSE amount END AS amount",
        f"timestamp_seconds(least(landed_s + 3600 * (1 + {_pick('later', 72)}), {newest_s})) AS updated_at",
    ).withColumn("_ingested_at", F.col("updated_at"))
    return first.unionByName(later).to(ORDERS_SCHEMA)


def build_raw_customers(spark, customers: int, day0: dt.datetime):
    from growth_revenue.sample_data import CUSTOMERS_SCHEMA

    day0_s = int(day0.timestamp())
    parts = max(2, customers // 500_000)
    kind = _u("kind")
    email = (
        f"CASE WHEN {kind} >= 0.03 AND {kind} < 0.05 "  # 2% test users by e-mail domain, any case
        f"THEN concat('qa', id, '@', {_choice('test_domain', TEST_DOMAINS)}) "
        f"WHEN {_u('no_email')} < 0.05 THEN CAST(NULL AS STRING) "
        f"ELSE concat('user', id, '@', {_choice('domain', DOMAINS)}) END"
    )
    flag = (
        f"CASE WHEN {kind} < 0.03 THEN true "  # 3% test users by flag
        f"WHEN {_pick('flag', 4)} = 0 THEN CAST(NULL AS BOOLEAN) ELSE false END"
    )
    base = spark.range(0, customers, 1, parts).selectExpr(
        "id",
        "format_string('C%08d', id) AS customer_id",
        f"{email} AS email",
        f"{_choice('segment', SEGMENTS)} AS customer_segment",
        f"{flag} AS is_test_user",
        f"{day0_s} - 86400 * 40 - {_pick('first_seen', 360 * 86400)} AS first_s",
    )
    first = base.selectExpr("customer_id", "email", "customer_segment", "is_test_user",
                            "timestamp_seconds(first_s) AS updated_at")
    # ~15% get a later version: the segment moves, or the test flag flips either way.
    change = _u("change")
    later = base.where(f"{_u('customer_version')} < 0.15").selectExpr(
        "customer_id", "email",
        f"CASE WHEN {change} < 0.5 THEN {_choice('new_segment', SEGMENTS)} ELSE customer_segment END"
        " AS customer_segment",
        f"CASE WHEN {change} < 0.5 THEN is_test_user WHEN {change} < 0.75 THEN true ELSE false END AS is_test_user",
        f"timestamp_seconds(first_s + 86400 * (1 + {_pick('later', 30)})) AS updated_at",
    )
    return first.unionByName(later).to(CUSTOMERS_SCHEMA)


def ensure_raw(spark, args: argparse.Namespace, day0: dt.datetime, newest: dt.datetime) -> float | None:
    """Write the raw tables unless they exist with the same parameters; seconds spent, None if kept."""
    from delta.tables import DeltaTable

    raw = args.out / "raw"
    meta_path = raw / "_bench_meta.json"
    params = generation_params(args, newest)
    tables_there = all(DeltaTable.isDeltaTable(spark, str(raw / t)) for t in ("raw_orders", "raw_customers"))
    if not args.regenerate and tables_there and meta_path.exists() and json.loads(meta_path.read_text()) == params:
        log.info("raw tables under %s already match %s; not regenerating", raw, params)
        return None
    log.info("generating raw tables under %s: %s", raw, params)
    meta_path.unlink(missing_ok=True)
    started = time.perf_counter()
    orders = build_raw_orders(spark, args.orders, args.customers, args.days, day0, newest)
    customers = build_raw_customers(spark, args.customers, day0)
    for frame, name in ((orders, "raw_orders"), (customers, "raw_customers")):
        frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(str(raw / name))
    seconds = time.perf_counter() - started
    meta_path.write_text(json.dumps(params, indent=2) + "\n")
    (raw / "_bench_generation.json").write_text(json.dumps(
        {"seconds": seconds, "at": f"{dt.datetime.now(UTC):%Y-%m-%d %H:%M} UTC"}) + "\n")
    return seconds


def check_raw_schemas(spark, raw: Path) -> None:
    from growth_revenue.sample_data import CUSTOMERS_SCHEMA, ORDERS_SCHEMA

    for name, schema in (("raw_orders", ORDERS_SCHEMA), ("raw_customers", CUSTOMERS_SCHEMA)):
        got = spark.read.format("delta").load(str(raw / name)).schema
        if [(f.name, f.dataType) for f in got] != [(f.name, f.dataType) for f in schema]:
            raise SystemExit(f"bench: {name} schema {got.simpleString()} does not match {schema.simpleString()}")


def raw_facts(spark, raw: Path) -> dict:
    from pyspark.sql import functions as F

    o = spark.read.format("delta").load(str(raw / "raw_orders"))
    c = spark.read.format("delta").load(str(raw / "raw_customers"))
    orders = o.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("order_id").alias("orders"),
                   F.max("_ingested_at").alias("newest")).first()
    customers = c.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("customer_id").alias("customers")).first()
    size = lambda p: sum(f.stat().st_size for f in p.rglob("*.parquet"))  # noqa: E731
    return {
        "raw_order_rows": orders["rows"], "orders": orders["orders"], "newest_ingested_at": orders["newest"],
        "raw_customer_rows": customers["rows"], "customers": customers["customers"],
        "raw_orders_mb": size(raw / "raw_orders") / 2**20, "raw_customers_mb": size(raw / "raw_customers") / 2**20,
    }


# --- the two variants ----------------------------------------------------------------------


class PhaseClock(logging.Handler):
    """Records when each growth_revenue log line is emitted, to split a run into phases."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.marks: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.marks.append((time.perf_counter(), record.getMessage()))


def job_phases(started: float, ended: float, marks: list[tuple[float, str]]) -> dict[str, float]:
    """Wall time between the pipeline's own log lines (each is emitted right after the work it reports)."""
    def first(prefix: str) -> float | None:
        return next((t for t, m in marks if m.startswith(prefix)), None)

    def last(prefix: str) -> float | None:
        return next((t for t, m in reversed(marks) if m.startswith(prefix)), None)

    writes = [t for t, m in marks if m.startswith("wrote ")] + [None] * 3
    points = [
        ("read + rules + staging cache (until the rule-count log)", first("rule 1 latest version")),
        ("quality gate (verify)", last("check ")),
        ("write mart (repartition + partitioned Delta)", writes[0]),
        ("write report (replaceWhere)", writes[1]),
        ("append dq_check_results", writes[2]),
    ]
    phases, previous = {}, started
    for name, at in points:
        if at is None:
            continue
        phases[name] = at - previous
        previous = at
    phases["collect report + release caches"] = ended - previous
    return phases


def run_job(spark, config, raw: Path, output: Path, as_of: dt.date, run_ts: dt.datetime, clock: PhaseClock):
    from growth_revenue import io, pipeline, tables
    from growth_revenue.io import Location

    if output.exists():
        shutil.rmtree(output)  # every timed run starts from an empty output, like a first publish
    request = pipeline.RunRequest(
        as_of=as_of,
        run_timestamp=run_ts,
        raw_orders=Location(path=str(raw / "raw_orders")),
        raw_customers=Location(path=str(raw / "raw_customers")),
        output=Location(path=str(output)),
    )
    clock.marks.clear()
    started = time.perf_counter()
    outcome = pipeline.run(spark, config, request)
    seconds = time.perf_counter() - started
    if outcome.exit_code != pipeline.EXIT_OK:
        failed = [r.plain() for r in outcome.results if r.blocks_publishing]
        raise SystemExit(f"bench: the job exited {outcome.exit_code}, expected 0: {failed}")
    _, mart_rows = io.last_commit(spark, request.output.child(tables.MART))
    sizes = sorted(f.stat().st_size for f in (output / tables.MART).rglob("*.parquet"))
    return seconds, {"mart_rows": mart_rows, "report_segments": len(outcome.report_rows),
                     "mart_files": len(sizes), "mart_file_kib": statistics.median(sizes or [0]) / 1024,
                     "phases": job_phases(started, started + seconds, list(clock.marks))}


def plain_query(spark, rules, raw: Path):
    """The same rules as one plain PySpark query: no gate, no counts, no partitioning."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    orders = spark.read.format("delta").load(str(raw / "raw_orders"))
    customers = spark.read.format("delta").load(str(raw / "raw_customers"))

    # Same ordering as the job's rule 1, so both pick the same version on ties.
    newest_order = Window.partitionBy("order_id").orderBy(
        F.col("updated_at").desc_nulls_last(), F.col("_ingested_at").desc_nulls_last(),
        F.col("status").asc_nulls_last(), F.col("amount").desc_nulls_last(),
        F.col("customer_id").asc_nulls_last(), F.col("order_ts").desc_nulls_last())
    latest_orders = orders.withColumn("rn", F.row_number().over(newest_order)).where("rn = 1").drop("rn")
    newest_customer = Window.partitionBy("customer_id").orderBy(
        F.col("updated_at").desc_nulls_last(), F.col("is_test_user").desc_nulls_last(),
        F.col("email").asc_nulls_last(), F.col("customer_segment").asc_nulls_last())
    latest_customers = customers.withColumn("rn", F.row_number().over(newest_customer)).where("rn = 1")

    statuses = sorted({s.strip().lower() for s in rules.revenue_statuses})
    domains = sorted({d.strip().lower() for d in rules.test_email_domains})
    segment = F.lower(F.trim("customer_segment"))
    profiles = latest_customers.select(
        "customer_id",
        F.when(segment.isNull() | (segment == ""), F.lit(rules.unknown_segment)).otherwise(segment)
        .alias("customer_segment"),
        (F.coalesce(F.col("is_test_user"), F.lit(False))
         | F.coalesce(F.lower(F.substring_index("email", "@", -1)).isin(domains) & F.col("email").contains("@"),
                      F.lit(False))).alias("is_test"),
    )
    revenue = latest_orders.where(F.lower(F.trim("status")).isin(statuses))
    return (
        revenue.join(profiles, "customer_id", "left")
        .where(~F.coalesce(F.col("is_test"), F.lit(False)))
        .select(
            "order_id", "customer_id",
            F.coalesce(F.col("customer_segment"), F.lit(rules.unknown_segment)).alias("customer_segment"),
            "order_ts",
            F.to_date(F.from_utc_timestamp("order_ts", rules.reporting_timezone)).alias("order_date"),
            "status", F.col("amount").alias("revenue"), "updated_at", "_ingested_at",
        )
    )


def run_plain(spark, rules, raw: Path, output: Path):
    from delta.tables import DeltaTable

    if output.exists():
        shutil.rmtree(output)
    started = time.perf_counter()
    plain_query(spark, rules, raw).write.format("delta").mode("overwrite").option("overwriteSchema", "true") \
        .save(str(output))
    seconds = time.perf_counter() - started
    metrics = DeltaTable.forPath(spark, str(output)).history(1).select("operationMetrics").first()[0] or {}
    return seconds, {"rows": int(metrics.get("numOutputRows", -1)),
                     "files": len(list(output.rglob("*.parquet")))}


# --- machine facts and report ---------------------------------------------------------------


def machine_facts(spark) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    from growth_revenue import jars

    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gib": mem_kb / 2**20,
        "java": spark.sparkContext._jvm.java.lang.System.getProperty("java.runtime.version"),
        "spark": spark.version,
        "delta": f"{jars.DELTA_PACKAGE} (delta-spark wheel {metadata.version('delta-spark')})",
        "python": platform.python_version(),
        "os": platform.platform(),
        "git": _git_head(),
    }


def _git_head() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "lib"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + (" (lib/ has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _stats(values: list[float]) -> str:
    med = statistics.median(values)
    spread = f"{min(values):.1f} / {max(values):.1f}" if len(values) > 1 else "-"
    return f"{med:.1f} | {spread} | {len(values)}"


def render(args, facts: dict, data: dict, timings: dict, details: dict, notes: list[str]) -> str:
    job, plain = statistics.median(timings["job"]), statistics.median(timings["plain"])
    lines = [
        "# Benchmarks",
        "",
        "Written by `bench/bench_nightly.py` (`make bench ORDERS=N`); rerun it to refresh this page.",
        "",
        f"## Nightly job vs. plain PySpark, {data['orders']:,} orders",
        "",
        f"- date: {dt.datetime.now(UTC):%Y-%m-%d %H:%M} UTC, git {facts['git']}",
        f"- command: `{' '.join(['bench/bench_nightly.py', *sys.argv[1:]])}`",
        f"- machine: {facts['nproc']} cores ({facts['cpu']}), {facts['memory_gib']:.1f} GiB RAM, {facts['os']}",
        f"- Java {facts['java']}, Spark {facts['spark']}, Delta {facts['delta']}, Python {facts['python']}",
        f"- session: local[2] from conf/local.yaml (shuffle partitions {details['shuffle_partitions']}), "
        f"driver memory {args.driver_memory}, AQE on",
        f"- load average (1 min) at start / end: {notes[0]}",
        "",
        "| data | rows |",
        "|---|---:|",
        f"| raw_orders rows (all versions) | {data['raw_order_rows']:,} ({data['raw_orders_mb']:.0f} MiB Parquet) |",
        f"| distinct orders | {data['orders']:,} |",
        f"| raw_customers rows | {data['raw_customer_rows']:,} ({data['raw_customers_mb']:.0f} MiB Parquet) |",
        f"| distinct customers | {data['customers']:,} |",
        f"| mart_orders_enriched rows (job) | {details['mart_rows']:,} in {details['mart_files']} files |",
        f"| plain result rows | {details['plain_rows']:,} in {details['plain_files']} files |",
        f"| report segments | {details['report_segments']} |",
        "",
        "| run | median s | min / max s | runs |",
        "|---|---:|---:|---:|",
    ]
    if data.get("generation_s") is not None:
        lines.append(f"| generate raw tables (Spark, Delta write) | {data['generation_s']:.1f} | - | 1 |")
    elif data.get("generation_earlier"):
        earlier = data["generation_earlier"]
        lines.append(f"| generate raw tables (Spark, Delta write; kept from the run of {earlier['at']}) | "
                     f"{earlier['seconds']:.1f} | - | 1 |")
    if timings.get("demo"):
        lines.append(f"| job on the demo-size lakehouse ({details['demo_orders']:,} orders) | "
                     f"{_stats(timings['demo'])} |")
    lines += [
        f"| job: `pipeline.run` (exit 0) | {_stats(timings['job'])} |",
        f"| plain PySpark join + Delta write | {_stats(timings['plain'])} |",
        f"| **ratio job / plain** | **{job / plain:.2f}x** | | |",
        "",
        "Where the job's time went (last run; wall time between the pipeline's own log lines):",
        "",
        "| phase | s | share |",
        "|---|---:|---:|",
    ]
    phases = details["phases"]
    total = sum(phases.values())
    lines += [f"| {name} | {s:.1f} | {100 * s / total:.0f}% |" for name, s in phases.items()]
    if details.get("diagnose"):
        lines += ["", "Building blocks timed on their own (`--diagnose`, same session, after the runs above):", "",
                  "| step | s |", "|---|---:|"]
        lines += [f"| {DIAGNOSE_LABELS[key]} | {s:.1f} |" for key, s in details["diagnose"].items()]
    lines += ["", *notes[1:], ""]
    return "\n".join(lines)


def diagnose(spark, config, raw: Path, scratch: Path, repeat: int) -> dict[str, float]:
    """The job's building blocks timed on their own (median of `repeat`), to see what its extra time buys.

    Uses the job's public transforms and io functions on the same raw tables; the noop sink
    computes a frame fully without writing it.
    """
    from growth_revenue import io, tables, transforms
    from growth_revenue.io import Location

    rules = config.rules
    orders = io.read_raw(spark, Location(path=str(raw / "raw_orders")), tables.RAW_ORDERS)
    customers = io.read_raw(spark, Location(path=str(raw / "raw_customers")), tables.RAW_CUSTOMERS)
    noop = lambda df: df.write.format("noop").mode("overwrite").save()  # noqa: E731
    times: dict[str, list[float]] = {}

    def timed(key: str, action) -> None:
        started = time.perf_counter()
        action()
        times.setdefault(key, []).append(time.perf_counter() - started)
        log.info("diagnose %s: %.1f s", key, times[key][-1])

    compressed_key = "spark.sql.inMemoryColumnarStorage.compressed"
    compressed = spark.conf.get(compressed_key, "true")
    for _ in range(repeat):
        profiles = transforms.customer_profiles(customers, rules.test_email_domains, rules.unknown_segment)
        classified = transforms.classify_orders(orders, profiles, rules.revenue_statuses, rules.unknown_segment)
        mart = transforms.mart_orders(classified, rules.reporting_timezone)
        timed("plain_compute", lambda: noop(plain_query(spark, rules, raw)))
        timed("mart_compute", lambda: noop(mart))
        try:
            spark.conf.set(compressed_key, "false")
            uncompressed = transforms.mart_orders(classified, rules.reporting_timezone).persist()
            timed("mart_cache_uncompressed", uncompressed.count)
            uncompressed.unpersist(blocking=True)
        finally:
            spark.conf.set(compressed_key, compressed)
        profiles.persist()
        mart.persist()
        timed("mart_cache_count", mart.count)
        timed("mart_write_unpartitioned", lambda: io.overwrite(mart, Location(path=str(scratch / "unpartitioned"))))
        timed("mart_write_partitioned", lambda: io.overwrite(mart, Location(path=str(scratch / "partitioned")),
                                                             partition_by=("order_date",)))
        mart.unpersist(blocking=True)
        profiles.unpersist(blocking=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return {key: statistics.median(values) for key, values in times.items()}


DIAGNOSE_LABELS = {
    "plain_compute": "plain query, computed only (noop sink)",
    "mart_compute": "job rules 1-5 (`mart_orders(classify_orders(...))`), computed only, no cache",
    "mart_cache_uncompressed": "the same mart `persist` + `count` with inMemoryColumnarStorage.compressed=false",
    "mart_cache_count": "the same mart `persist` + `count` (default, compressed cache)",
    "mart_write_unpartitioned": "mart from that cache -> Delta, unpartitioned",
    "mart_write_partitioned": "mart from that cache -> `io.overwrite(partition_by=('order_date',))`",
}


def what_limits_it(details: dict, data: dict, timings: dict) -> str:
    job, plain = statistics.median(timings["job"]), statistics.median(timings["plain"])
    phases = details["phases"]
    ranked = sorted(phases.items(), key=lambda kv: kv[1], reverse=True)
    top = "; ".join(f"{name} {s:.0f} s" for name, s in ranked[:3])
    gate = phases.get("quality gate (verify)", 0.0)
    joins = "a broadcast hash join" if details.get("broadcast") else "a shuffled join (not broadcast at this size)"
    parts = [
        "### What limits it\n",
        f"The job took {job:.0f} s against {plain:.0f} s for the plain query ({job / plain:.2f}x); its largest "
        f"phases were {top}. Both variants share the expensive core: scan raw_orders, shuffle it by order_id, "
        f"sort each order's versions for the row_number window, and {joins} with the deduplicated customers "
        "(checked in `explain`).",
    ]
    diag = details.get("diagnose")
    if diag:
        cache = diag["mart_cache_count"] - diag["mart_compute"]
        compression = diag["mart_cache_count"] - diag["mart_cache_uncompressed"]
        layout = diag["mart_write_partitioned"] - diag["mart_write_unpartitioned"]
        per_day = details["mart_rows"] / max(1, details["mart_files"])
        similar = diag["mart_compute"] <= 1.25 * diag["plain_compute"]
        parts.append(
            f"Timed on their own (`--diagnose`), the job's rules compute the mart in {diag['mart_compute']:.0f} s "
            f"and the plain query computes its result in {diag['plain_compute']:.0f} s"
            + (", so the rules themselves are not the problem" if similar else "")
            + " (the extra `versions` count window in `classify_orders` adds one sort of the raw rows "
            "but no shuffle). The overhead is in what the job does around them: "
            f"(1) staging the mart in the cache before the gate (`persist` + `count`) takes "
            f"{diag['mart_cache_count']:.0f} s, "
            + (f"{cache:.0f} s more than computing it" if cache >= 1 else "about as long as computing it")
            + (f", of which the in-memory columnar compression is about {compression:.0f} s "
               f"({diag['mart_cache_uncompressed']:.0f} s with `spark.sql.inMemoryColumnarStorage.compressed"
               "=false`, a setting `spark.conf` in the YAML can carry)" if compression >= 1 else "")
            + "; "
            f"(2) the mart write with `repartition(order_date)` + `partitionBy(order_date)` takes "
            f"{diag['mart_write_partitioned']:.0f} s against {diag['mart_write_unpartitioned']:.0f} s "
            f"unpartitioned ({layout:+.0f} s): one more shuffle of the mart and {details['mart_files']} "
            f"one-per-day files of ~{per_day:,.0f} rows (median {details['mart_file_kib']:,.0f} KiB) - a "
            "small-files layout at this volume, where the plain variant writes "
            f"{details['plain_files']} files;"
        )
    else:
        parts.append(
            "The overhead is in what the job does around the rules (rerun with `--diagnose` to size each): "
            "(1) the staged data is persisted and counted before anything is written; "
            "(2) the mart is written with `repartition(order_date)` + `partitionBy(order_date)`: one more "
            f"shuffle and {details['mart_files']} one-per-day files where the plain variant writes "
            f"{details['plain_files']};"
        )
    parts.append(
        f"(3) the quality gate ({gate:.0f} s) adds passes over the cache: one aggregation for the mart "
        "constraints, a groupBy(order_id) shuffle of every mart row for `order_id is unique`, a join of "
        "the mart with the test-customer profiles for `customer_kind`, the report and a scan of "
        "raw_orders._ingested_at for freshness; "
        "(4) fixed costs of a run - many small Spark jobs (one per count, gate check, Delta commit and "
        "history read in `_log_written`) - which is what the demo-size run measures"
        + (f" ({statistics.median(timings['demo']):.0f} s for {details['demo_orders']:,} orders)."
           if timings.get("demo") else ".")
    )
    parts.append(
        "All timings are wall-clock on a 2-core machine that was shared with other Spark test runs "
        "(see the load average above); differences of a few seconds are noise, and the same run on a "
        "busier moment can take several times longer."
    )
    return "\n".join(parts[:1]) + "\n" + " ".join(parts[1:])


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    clock = PhaseClock()
    logging.getLogger("growth_revenue").addHandler(clock)

    from growth_revenue import sample_data
    from growth_revenue.config import load_config
    from growth_revenue.session import get_spark, stop_spark

    config = load_config(ROOT / "conf" / "local.yaml")
    settings = dataclasses.replace(config.spark, driver_memory=args.driver_memory,
                                   ivy_dir=str(ROOT / config.spark.ivy_dir))
    run_ts = dt.datetime.combine(args.as_of, dt.time(7), UTC)
    newest = run_ts - dt.timedelta(hours=1)
    day0 = dt.datetime.combine(args.as_of, dt.time(0), UTC)
    load_start = os.getloadavg()[0]
    git_start = _git_head()

    spark = get_spark(settings)
    try:
        generation_s = ensure_raw(spark, args, day0, newest)
        raw = args.out / "raw"
        check_raw_schemas(spark, raw)
        data = {**raw_facts(spark, raw), "generation_s": generation_s}
        if generation_s is None and (raw / "_bench_generation.json").exists():
            data["generation_earlier"] = json.loads((raw / "_bench_generation.json").read_text())
        log.info("raw data: %s", data)

        timings: dict[str, list[float]] = {"demo": [], "job": [], "plain": []}
        details: dict = {"shuffle_partitions": settings.shuffle_partitions}
        if not args.skip_demo:
            demo_raw = args.out / "demo" / "raw"
            demo_orders = 6000
            sample_data.write_lakehouse(spark, str(demo_raw), args.as_of, orders=demo_orders, customers=400,
                                        ingested_until=newest)
            details["demo_orders"] = demo_orders
            for _ in range(args.repeat):
                seconds, _info = run_job(spark, config, demo_raw, args.out / "demo" / "curated",
                                         args.as_of, run_ts, clock)
                timings["demo"].append(seconds)
                log.info("demo job: %.1f s", seconds)

        for i in range(args.repeat):
            seconds, info = run_job(spark, config, raw, args.out / "curated", args.as_of, run_ts, clock)
            timings["job"].append(seconds)
            details.update(info)
            log.info("job run %d/%d: %.1f s, phases %s", i + 1, args.repeat, seconds,
                     {k: round(v, 1) for k, v in info["phases"].items()})
            seconds, info = run_plain(spark, config.rules, raw, args.out / "plain")
            timings["plain"].append(seconds)
            details.update(plain_rows=info["rows"], plain_files=info["files"])
            log.info("plain run %d/%d: %.1f s", i + 1, args.repeat, seconds)

        details["broadcast"] = "BroadcastHashJoin" in plain_query(spark, config.rules, raw)._jdf \
            .queryExecution().executedPlan().toString()
        if args.diagnose:
            details["diagnose"] = diagnose(spark, config, raw, args.out / "diagnose", args.repeat)
        if details["plain_rows"] != details["mart_rows"]:
            log.warning("plain result has %d rows, the mart %d: the two variants disagree",
                        details["plain_rows"], details["mart_rows"])
        facts = machine_facts(spark)
    finally:
        stop_spark(spark)

    if facts["git"] != git_start:
        log.warning("the checkout changed during the run (%s -> %s): the numbers are for %s, whose modules "
                    "were imported at the start", git_start, facts["git"], git_start)
    facts["git"] = git_start
    notes = [f"{load_start:.2f} / {os.getloadavg()[0]:.2f}", what_limits_it(details, data, timings)]
    text = render(args, facts, data, timings, details, notes)
    print(text)
    if args.doc:
        args.doc.parent.mkdir(parents=True, exist_ok=True)
        args.doc.write_text(text)
        log.info("wrote %s", args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
