"""Raw tables for the benchmark: a history of orders and customers, then one new day on top.

Every value is a hash of a row id and a salt, computed by Spark itself (spark.range + xxhash64
expressions, no Python loop over rows), so the data is the same however Spark splits the range
and generating 100M orders costs a Spark job, not a Python one.

The timeline, for as-of day D (the nightly run is at 07:00 UTC on D):
- history: `days` days of orders before D-1, all landed by 06:00 on D-1 (the previous night's
  run sees exactly this);
- the new day: one more Delta commit landing between 06:00 on D-1 and 06:00 on D: the orders
  of D-1, new versions of old orders (cancellations and corrected amounts weeks later), late
  orders with an old order_ts, and customer changes (segment moves that keep the test flag, new
  test users, and new customers whose orders are already in the history as unknown-customer
  orphans).

Two key shapes (`Shape.keys`):
- sequential: order ids rise with order_ts (order i of the history is placed at fraction
  i/orders of it) and both tables are written sorted by _ingested_at (orders) or updated_at
  (customers), so Delta's per-file min/max statistics let a filter on the id or the landing time
  skip the old files; the new day's changes hit 2-8-week-old orders;
- random: what real raw tables often look like. Order ids are UUID-like hashes of the row id,
  uncorrelated with time; the history is one bulk commit whose files each hold rows of every
  ingestion time; cancellations and corrections hit orders of any age. No filter on the id or the
  landing time can skip a file of the history.
Either way an order's facts are recomputed from its row id, so a change can name an old order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from growth_revenue import scanstats, tables
from growth_revenue.sample_data import CUSTOMERS_SCHEMA, ORDERS_SCHEMA

log = logging.getLogger("bench")

UTC = dt.timezone.utc
SEED = 20261125
FORMAT = 4  # bump when the generator changes, so cached tables are rewritten
ROWS_PER_FILE = 250_000  # small enough that skipping files by _ingested_at skips most of the history

# Mixed spellings on purpose: the rules normalise lower(trim(x)).
STATUSES = [
    "completed",
    "completed",
    "completed",
    " Completed ",
    "COMPLETED",
    "fulfilled",
    "FULFILLED",
    "cancelled",
    "pending",
    "refunded",
]
LATER_STATUSES = ["completed", "cancelled", "fulfilled", " Completed ", "REFUNDED"]
SEGMENTS = [
    "enterprise",
    " Enterprise",
    "SMB",
    "smb ",
    "mid-market",
    "Mid-Market",
    "consumer",
    "consumer",
    "",
    "   ",
    None,
]
DOMAINS = ["shop.io", "mail.net", "corp.example.org", "sub.test.example"]  # none is a test domain
TEST_DOMAINS = ["example.com", "EXAMPLE.com", "Test.Example"]


SEQUENTIAL, RANDOM = "sequential", "random"  # the key shapes (module docstring)


@dataclasses.dataclass(frozen=True)
class Shape:
    """What to generate: `orders` over `days` days of history, then one new day."""

    orders: int
    customers: int
    days: int
    as_of: dt.date
    keys: str = SEQUENTIAL

    @property
    def name(self) -> str:
        suffix = "" if self.keys == SEQUENTIAL else f"_{self.keys}-keys"
        return f"{self.orders}-orders_{self.customers}-customers_{self.days}-days{suffix}"

    @property
    def oldest_change_days(self) -> int:
        """How old the orders the new day cancels or corrects can be."""
        return min(56, self.days) if self.keys == SEQUENTIAL else self.days

    @property
    def daily_orders(self) -> int:
        return max(1, self.orders // self.days)

    @property
    def per_kind(self) -> int:
        """How many of each kind of change the new day brings: ~1% of the daily volume."""
        return max(1, self.daily_orders // 100)

    @property
    def orphan_pool(self) -> int:
        """Customer ids just past the known ones: orders reference them before their customer row exists."""
        return max(1, self.customers // 50)

    def times(self, factor: int) -> Shape:
        """`factor` times the daily volume of orders (and customers) over the same history length."""
        return dataclasses.replace(self, orders=self.orders * factor, customers=self.customers * factor)

    def scaled_to(self, days: int) -> Shape:
        """The same daily volume of orders (and customers per order) over a different history length."""
        return dataclasses.replace(
            self,
            orders=max(1, self.orders * days // self.days),
            customers=max(1, self.customers * days // self.days),
            days=days,
        )


@dataclasses.dataclass(frozen=True)
class RawData:
    shape: Shape
    history: Path  # raw_orders and raw_customers as of the previous night's run
    nightly: Path  # the same tables with the new day appended (one more Delta commit each)
    facts: dict


def times(as_of: dt.date) -> dict[str, int]:
    """The timeline in epoch seconds (see the module docstring)."""

    def at(day: dt.date, hour: int) -> int:
        return int(dt.datetime.combine(day, dt.time(hour), UTC).timestamp())

    yesterday = as_of - dt.timedelta(days=1)
    return {"history_end": at(yesterday, 0), "history_landed": at(yesterday, 6), "newest": at(as_of, 6)}


def ensure_raw(spark: SparkSession, shape: Shape, root: Path, regenerate: bool) -> RawData:
    """The raw tables for `shape` under root, generated unless a previous bench run left matching ones."""
    meta_path = root / "_bench_meta.json"
    params = {
        **dataclasses.asdict(shape),
        "as_of": shape.as_of.isoformat(),
        "seed": SEED,
        "format": FORMAT,
        "rows_per_file": ROWS_PER_FILE,
    }
    history, nightly = root / "history", root / "nightly"
    if not regenerate and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["params"] == params:
            log.info("raw tables under %s match %s; not regenerating", root, params)
            return RawData(shape, history, nightly, meta["facts"])
    log.info("generating raw tables under %s: %s", root, params)
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    # Row counts are estimated, not counted: counting would generate the data once more.
    write_raw(history_orders(spark, shape), history / tables.RAW_ORDERS, shape, "_ingested_at", 1.1 * shape.orders)
    write_raw(
        history_customers(spark, shape), history / tables.RAW_CUSTOMERS, shape, "updated_at", 1.15 * shape.customers
    )
    link_tree(history, nightly)
    write_raw(
        new_day_orders(spark, shape),
        nightly / tables.RAW_ORDERS,
        shape,
        "_ingested_at",
        shape.daily_orders + 3 * shape.per_kind,
        mode="append",
    )
    write_raw(
        new_day_customers(spark, shape),
        nightly / tables.RAW_CUSTOMERS,
        shape,
        "updated_at",
        3 * shape.per_kind,
        mode="append",
    )
    facts = {
        **raw_facts(spark, shape, nightly),
        "generation_s": time.perf_counter() - started,
        "generated_at": f"{dt.datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    }
    meta_path.write_text(json.dumps({"params": params, "facts": facts}, indent=2) + "\n")
    return RawData(shape, history, nightly, facts)


def link_tree(source: Path, target: Path) -> None:
    """A copy of a directory of Delta tables made of hard links: Delta never rewrites a file, so
    appending to the copy leaves the source as it was, and costs no disk."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, copy_function=os.link)


def write_raw(df: DataFrame, path: Path, shape: Shape, column: str, rows: float, mode: str = "errorifexists") -> None:
    """One commit of ~ROWS_PER_FILE-row files. Sequential keys: each file covers one stretch of
    `column`, so its min/max statistics can skip it. Random keys: rows dealt round-robin, so every
    file spans the whole range of every column."""
    files = max(1, round(rows / ROWS_PER_FILE))
    if shape.keys == SEQUENTIAL:
        df = df.repartitionByRange(files, column).sortWithinPartitions(column)
    else:
        df = df.repartition(files)
    df.write.format("delta").mode(mode).save(str(path))


def raw_facts(spark: SparkSession, shape: Shape, nightly: Path) -> dict:
    """Sizes from the Delta log (rows per commit, files, bytes): no scan of the data."""
    facts = {}
    for table in (tables.RAW_ORDERS, tables.RAW_CUSTOMERS):
        path = str(nightly / table)
        commits = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()
        files, size = scanstats.table_files(spark, path)
        facts[table] = {
            "history_rows": int(commits[0]["operationMetrics"]["numOutputRows"]),
            "new_day_rows": int(commits[1]["operationMetrics"]["numOutputRows"]),
            "files": files,
            "bytes": size,
        }
    oldest = shape.oldest_change_days
    age = "2-8 weeks old" if shape.keys == SEQUENTIAL else f"2 weeks to {oldest} days old"
    facts["new_day"] = {
        "new orders": shape.daily_orders,
        f"cancellations of orders {age}": shape.per_kind,
        f"corrected amounts on orders up to {oldest} days old": shape.per_kind,
        "late orders placed 1-10 days earlier": shape.per_kind,
        "customers moved to another segment": shape.per_kind,
        "customers turned test users": shape.per_kind,
        "new customers whose orders were orphans": min(shape.per_kind, shape.orphan_pool),
    }
    return facts


# --- expressions: a value drawn from a row's id ----------------------------------------------


def _pick(salt: str, n: int, column: str = "id") -> str:
    """An integer in [0, n) drawn from `column`: the same whatever the partitioning."""
    return f"pmod(xxhash64({column}, {SEED}, '{salt}'), {max(1, n)})"


def _u(salt: str, column: str = "id") -> str:
    """A uniform number in [0, 1) drawn from `column`."""
    return f"({_pick(salt, 1_000_000_007, column)} / 1000000007.0)"


def _choice(salt: str, values: list) -> str:
    quoted = ", ".join("CAST(NULL AS STRING)" if v is None else "'" + v.replace("'", "''") + "'" for v in values)
    return f"element_at(array({quoted}), CAST({_pick(salt, len(values))} AS INT) + 1)"


def _customer_of_order(shape: Shape) -> str:
    return (
        f"CASE WHEN {_u('no_customer')} < 0.01 THEN CAST(NULL AS STRING) "
        f"WHEN {_u('orphan')} < 0.02 THEN format_string('C%08d', {shape.customers} + "
        f"{_pick('orphan_id', shape.orphan_pool)}) "
        f"ELSE format_string('C%08d', {_pick('customer', shape.customers)}) END"
    )


def _order_id(shape: Shape) -> str:
    """The order id of row `id`: 'O' and ten digits (sequential), or a UUID-like hash (random)."""
    if shape.keys == SEQUENTIAL:
        return "format_string('O%010d', id)"
    # 128 bits of two salted hashes, printed as 8-4-4-4-12 hex digits (%x prints a long unsigned).
    digits = f"format_string('%016x%016x', xxhash64(id, {SEED}, 'uuid_hi'), xxhash64(id, {SEED}, 'uuid_lo'))"
    return (
        f"concat_ws('-', substr({digits}, 1, 8), substr({digits}, 9, 4), substr({digits}, 13, 4), "
        f"substr({digits}, 17, 4), substr({digits}, 21, 12))"
    )


def _landed_within(salt: str, start: int, end: int) -> str:
    """A landing time in (start, end]."""
    return f"{start} + 1 + {_pick(salt, end - start)}"


# --- orders ----------------------------------------------------------------------------------


def order_facts(frame: DataFrame, shape: Shape) -> DataFrame:
    """The first version of history order `id`: the same columns whenever it is recomputed."""
    t = times(shape.as_of)
    span = shape.days * 86400
    start = t["history_end"] - span
    return frame.selectExpr(
        "*",
        f"{start} + (id * {span}) div {shape.orders} + {_pick('ts', span // shape.orders)} AS ts_s",
        f"{_customer_of_order(shape)} AS customer_id",
        f"{_choice('status', STATUSES)} AS status",
        f"CAST(CAST(500 + {_pick('amount', 49_501)} AS DECIMAL(18,0)) / 100 AS DECIMAL(18,2)) AS amount",
    )


def history_orders(spark: SparkSession, shape: Shape) -> DataFrame:
    t = times(shape.as_of)
    parts = max(2, shape.orders // 1_000_000)
    facts = order_facts(spark.range(0, shape.orders, 1, parts), shape).selectExpr(
        "*",
        # The last order lands exactly at the cut, so the previous night's freshness check passes.
        f"CASE WHEN id = {shape.orders - 1} THEN {t['history_landed']} "
        f"ELSE least(ts_s + 300 + {_pick('landed', 35_701)}, {t['history_landed']}) END AS landed_s",
    )
    # A few rows the quarantine rules are for: no order_id, no order_ts, no amount.
    first = facts.selectExpr(
        f"CASE WHEN {_u('no_id')} < 0.0001 THEN CAST(NULL AS STRING) ELSE {_order_id(shape)} END AS order_id",
        "customer_id",
        f"CASE WHEN {_u('no_ts')} < 0.0001 THEN CAST(NULL AS TIMESTAMP) ELSE timestamp_seconds(ts_s) END AS order_ts",
        "status",
        f"CASE WHEN {_u('no_amount')} < 0.0002 THEN CAST(NULL AS DECIMAL(18,2)) ELSE amount END AS amount",
        "timestamp_seconds(landed_s) AS updated_at",
        "timestamp_seconds(landed_s) AS _ingested_at",
    )
    # ~10% of orders get a later version within three days: a new status, sometimes a corrected amount.
    later = (
        facts.where(f"{_u('version')} < 0.10")
        .selectExpr(
            f"{_order_id(shape)} AS order_id",
            "customer_id",
            "timestamp_seconds(ts_s) AS order_ts",
            f"{_choice('later_status', LATER_STATUSES)} AS status",
            f"CASE WHEN {_u('corrected')} < 0.3 THEN CAST(amount + 1.50 AS DECIMAL(18,2)) ELSE amount END AS amount",
            f"timestamp_seconds(least(landed_s + 3600 * (1 + {_pick('later', 72)}), {t['history_landed']}))"
            " AS updated_at",
        )
        .selectExpr("*", "updated_at AS _ingested_at")
    )
    return first.unionByName(later).to(ORDERS_SCHEMA)


def new_day_orders(spark: SparkSession, shape: Shape) -> DataFrame:
    t = times(shape.as_of)
    landed = _landed_within("day_landed", t["history_landed"], t["newest"])
    n, first_new = shape.per_kind, shape.orders

    # The orders placed on D-1; the first one lands exactly at `newest`, for the freshness check.
    new = (
        spark.range(first_new, first_new + shape.daily_orders)
        .selectExpr(
            "id",
            f"{t['history_end']} + {_pick('new_ts', 86400)} AS ts_s",
            f"{_customer_of_order(shape)} AS customer_id",
            f"{_choice('status', STATUSES)} AS status",
            f"CAST(CAST(500 + {_pick('amount', 49_501)} AS DECIMAL(18,0)) / 100 AS DECIMAL(18,2)) AS amount",
        )
        .selectExpr(
            "*",
            f"CASE WHEN id = {first_new} THEN {t['newest']} ELSE least(greatest(ts_s + 300 + "
            f"{_pick('new_landed', 35_701)}, {t['history_landed']} + 1), {t['newest']}) END AS landed_s",
        )
    )

    # Orders placed 1-10 days ago that only land now.
    late = spark.range(first_new + shape.daily_orders, first_new + shape.daily_orders + n).selectExpr(
        "id",
        f"{t['history_end']} - 86400 * (1 + {_pick('late_days', min(10, shape.days))}) + "
        f"{_pick('late_ts', 86400)} AS ts_s",
        f"{_customer_of_order(shape)} AS customer_id",
        f"{_choice('status', STATUSES)} AS status",
        f"CAST(CAST(500 + {_pick('amount', 49_501)} AS DECIMAL(18,0)) / 100 AS DECIMAL(18,2)) AS amount",
        f"{landed} AS landed_s",
    )

    # New versions of history orders: a cancellation 2-8 weeks after the order, or a corrected amount.
    oldest = shape.oldest_change_days
    cancelled = _old_orders(spark, shape, "cancel", n, min(14, oldest - 1), oldest, landed).selectExpr(
        "*", "'cancelled' AS new_status", "amount AS new_amount"
    )
    corrected = _old_orders(spark, shape, "correct", n, 0, oldest, landed).selectExpr(
        "*", "status AS new_status", "CAST(amount * 0.9 AS DECIMAL(18,2)) AS new_amount"
    )
    revised = cancelled.unionByName(corrected).selectExpr(
        "id", "ts_s", "customer_id", "new_status AS status", "new_amount AS amount", "landed_s"
    )

    return (
        new.unionByName(late)
        .unionByName(revised)
        .selectExpr(
            f"{_order_id(shape)} AS order_id",
            "customer_id",
            "timestamp_seconds(ts_s) AS order_ts",
            "status",
            "amount",
            "timestamp_seconds(landed_s) AS updated_at",
            "timestamp_seconds(landed_s) AS _ingested_at",
        )
        .to(ORDERS_SCHEMA)
    )


def _old_orders(
    spark: SparkSession, shape: Shape, salt: str, n: int, min_age_days: int, max_age_days: int, landed: str
) -> DataFrame:
    """`n` history orders placed between min_age_days and max_age_days before D-1, recomputed from their ids."""
    daily = shape.daily_orders
    chosen = spark.range(n).selectExpr(
        f"greatest(0, {shape.orders - 1} - {min_age_days * daily} - "
        f"{_pick(salt, (max_age_days - min_age_days) * daily)}) AS old_id",
        f"{landed} AS landed_s",
    )
    return order_facts(chosen.withColumnRenamed("old_id", "id"), shape)


# --- customers -------------------------------------------------------------------------------


def customer_facts(frame: DataFrame, shape: Shape) -> DataFrame:
    """Customer `id` as first seen: the same columns whenever it is recomputed."""
    t = times(shape.as_of)
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
    return frame.selectExpr(
        "*",
        "format_string('C%08d', id) AS customer_id",
        f"{email} AS email",
        f"{_choice('segment', SEGMENTS)} AS customer_segment",
        f"{flag} AS is_test_user",
        f"{t['history_end']} - 86400 * 40 - {_pick('first_seen', 360 * 86400)} AS first_s",
    )


def history_customers(spark: SparkSession, shape: Shape) -> DataFrame:
    base = customer_facts(spark.range(0, shape.customers, 1, max(2, shape.customers // 1_000_000)), shape)
    first = base.selectExpr(
        "customer_id", "email", "customer_segment", "is_test_user", "timestamp_seconds(first_s) AS updated_at"
    )
    # ~15% get a later version: the segment moves, or the test flag flips either way.
    change = _u("change")
    later = base.where(f"{_u('customer_version')} < 0.15").selectExpr(
        "customer_id",
        "email",
        f"CASE WHEN {change} < 0.5 THEN {_choice('new_segment', SEGMENTS)} ELSE customer_segment END"
        " AS customer_segment",
        f"CASE WHEN {change} < 0.5 THEN is_test_user WHEN {change} < 0.75 THEN true ELSE false END AS is_test_user",
        f"timestamp_seconds(first_s + 86400 * (1 + {_pick('later', 30)})) AS updated_at",
    )
    return first.unionByName(later).to(CUSTOMERS_SCHEMA)


def new_day_customers(spark: SparkSession, shape: Shape) -> DataFrame:
    t = times(shape.as_of)
    n = shape.per_kind
    changed_at = f"timestamp_seconds({_landed_within('customer_landed', t['history_landed'], t['newest'])})"

    def existing(salt: str) -> DataFrame:
        ids = spark.range(n).selectExpr(f"{_pick(salt, shape.customers)} AS picked", f"{changed_at} AS updated_at")
        return customer_facts(ids.withColumnRenamed("picked", "id"), shape)

    # A move keeps the test flag the customer has now (history_customers' later version may have
    # flipped it): a segment move, not a test user becoming real.
    current_flag = (
        f"CASE WHEN {_u('customer_version')} < 0.15 AND {_u('change')} >= 0.5 "
        f"THEN {_u('change')} < 0.75 ELSE is_test_user END"
    )
    moved = existing("move").selectExpr(
        "customer_id",
        "email",
        f"{_choice('moved_to', SEGMENTS)} AS customer_segment",
        f"{current_flag} AS is_test_user",
        "updated_at",
    )
    turned_test = existing("turn_test").selectExpr(
        "customer_id", "email", "customer_segment", "true AS is_test_user", "updated_at"
    )
    # Customer rows for ids the history's orphan orders already reference.
    arrived = customer_facts(
        spark.range(shape.customers, shape.customers + min(n, shape.orphan_pool)).selectExpr(
            "id", f"{changed_at} AS updated_at"
        ),
        shape,
    ).selectExpr("customer_id", "email", "customer_segment", "is_test_user", "updated_at")
    return moved.unionByName(turned_test).unionByName(arrived).to(CUSTOMERS_SCHEMA)
