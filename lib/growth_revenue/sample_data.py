"""A seeded generator of realistic raw_orders and raw_customers that exercises every rule.

It produces several versions per order and customer, status spellings, test users by flag and
by e-mail domain, orphan orders, blank segments and timestamps on the report window's edges.
`python -m growth_revenue.sample_data --out data/lakehouse/raw` writes both as Delta tables;
`--next-day` then appends one day of changes to them (`next_day`), as the next night finds them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from decimal import Decimal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from growth_revenue import tables
from growth_revenue.cli import parse_run_timestamp

ORDERS_SCHEMA = T.StructType(
    [
        T.StructField("order_id", T.StringType()),
        T.StructField("customer_id", T.StringType()),
        T.StructField("order_ts", T.TimestampType()),
        T.StructField("status", T.StringType()),
        T.StructField("amount", T.DecimalType(18, 2)),
        T.StructField("updated_at", T.TimestampType()),
        T.StructField("_ingested_at", T.TimestampType()),
    ]
)

CUSTOMERS_SCHEMA = T.StructType(
    [
        T.StructField("customer_id", T.StringType()),
        T.StructField("email", T.StringType()),
        T.StructField("customer_segment", T.StringType()),
        T.StructField("is_test_user", T.BooleanType()),
        T.StructField("updated_at", T.TimestampType()),
    ]
)

UTC = dt.timezone.utc
# Padded and mixed-case spellings of the four segments (rule 4 normalises them) ...
SEGMENTS = ["enterprise", " Enterprise", "SMB", "smb ", "mid-market", "Mid-Market", "consumer"]
# ... and blank ones, published as 'unknown'. Rare, as in a real CRM: with the orders that have no
# customer or an unknown one, about 4% of revenue lands in 'unknown'.
BLANK_SEGMENTS = ["", "   ", None]
BLANK_SHARE = 0.02
NO_CUSTOMER_SHARE, ORPHAN_SHARE = 0.01, 0.01
TEST_DOMAINS = ["example.com", "EXAMPLE.com", "Test.Example"]  # rule 3 matches a domain in any case
DOMAINS = ["shop.io", "mail.net", "corp.example.org", "sub.test.example"]  # none of these is a test domain
STATUSES = ["completed", "completed", " Completed ", "FULFILLED", "fulfilled", "cancelled", "pending", "refunded"]


def generate(
    as_of: dt.date,
    customers: int = 400,
    orders: int = 6000,
    seed: int = 7,
    ingested_until: dt.datetime | None = None,
    history_days: int = 75,
) -> tuple[list[tuple], list[tuple]]:
    """(raw_orders rows, raw_customers rows) for a run on `as_of`.

    The newest _ingested_at is `ingested_until` (default: 06:00 UTC on `as_of`), so a run
    at or after it sees fresh data.
    """
    rng = random.Random(seed)
    day0 = dt.datetime.combine(as_of, dt.time(0), UTC)
    newest = ingested_until or day0 + dt.timedelta(hours=6)
    customer_rows = _customers(rng, customers, day0)
    known_ids = [row[0] for row in customer_rows]
    order_rows = _orders(rng, orders, known_ids, day0, newest, history_days)
    return order_rows, customer_rows


def _customers(rng: random.Random, n: int, day0: dt.datetime) -> list[tuple]:
    rows = []
    for i in range(n):
        cid = f"C{i:06d}"
        first_seen = day0 - dt.timedelta(days=rng.randint(40, 400), seconds=rng.randint(0, 86399))
        email = f"user{i}@{rng.choice(DOMAINS)}" if rng.random() > 0.05 else None
        flag = rng.choice([False, False, False, None])
        kind = rng.random()
        if kind < 0.04:
            flag = True  # test user by flag
        elif kind < 0.07:
            email = f"qa{i}@{rng.choice(TEST_DOMAINS)}"  # test by domain, any case
            flag = None if rng.random() < 0.5 else False
        elif kind < 0.08:
            email = f"odd@name{i}@example.com"  # the domain is after the last '@'
        segment = rng.choice(BLANK_SEGMENTS) if rng.random() < BLANK_SHARE else rng.choice(SEGMENTS)
        email, segment, flag = _edge_case(i, email, segment, flag)
        rows.append((cid, email, segment, flag, first_seen))
        if rng.random() < 0.15 and i >= EDGE_CASES:  # a later version: segment moves, or the test flag flips
            later = first_seen + dt.timedelta(days=rng.randint(1, 30))
            change = rng.random()
            if change < 0.5:
                rows.append((cid, email, rng.choice(SEGMENTS), flag, later))
            elif change < 0.75:
                rows.append((cid, email, rows[-1][2], True, later))
            else:
                rows.append((cid, email, rows[-1][2], False, later))
    return rows


# The first customers carry one edge case each, so a sample of any size has every one.
EDGE_CASES = len(BLANK_SEGMENTS) + len(TEST_DOMAINS) + 2


def _edge_case(i: int, email: str | None, segment: str | None, flag: bool | None):
    """Customer number i's (email, segment, flag): one edge case each for the first EDGE_CASES."""
    blanks, domains = len(BLANK_SEGMENTS), len(TEST_DOMAINS)
    if i < blanks:
        return email, BLANK_SEGMENTS[i], flag
    if i < blanks + domains:
        return f"qa{i}@{TEST_DOMAINS[i - blanks]}", segment, flag
    if i == blanks + domains:
        return email, segment, True
    if i == blanks + domains + 1:
        return f"odd@name{i}@example.com", segment, flag  # the domain is after the last '@'
    return email, segment, flag


def _orders(
    rng: random.Random,
    n: int,
    customer_ids: list[str],
    day0: dt.datetime,
    newest: dt.datetime,
    history_days: int,
) -> list[tuple]:
    rows = []
    edges = [
        day0 - dt.timedelta(days=30),  # first instant of the window: in
        day0 - dt.timedelta(days=30, microseconds=1),  # last instant before it: out
        day0 - dt.timedelta(seconds=1),  # 23:59:59 on D-1: in
        day0,  # D 00:00: out (D is not complete yet)
    ]
    for i in range(n):
        oid = f"O{i:07d}"
        order_ts = edges[i] if i < len(edges) else day0 - dt.timedelta(seconds=rng.randint(1, history_days * 86400))
        pick = rng.random()
        if pick < NO_CUSTOMER_SHARE or i == len(edges):
            customer = None  # no customer at all: kept as 'unknown'
        elif pick < NO_CUSTOMER_SHARE + ORPHAN_SHARE or i == len(edges) + 1:
            customer = f"X{rng.randint(0, 999):06d}"  # orphan: no customer row
        else:
            customer = rng.choice(customer_ids)
        amount = Decimal(rng.randint(500, 50000)) / 100
        landed = min(order_ts + dt.timedelta(minutes=rng.randint(5, 600)), newest)
        status = rng.choice(STATUSES)
        if i < len(edges):
            status = "completed"
        rows.append((oid, customer, order_ts, status, amount, landed, landed))
        versions = rng.random()
        if versions < 0.2:  # later versions: completed after pending, cancelled after completed, corrected amount
            later = min(landed + dt.timedelta(hours=rng.randint(1, 72)), newest)
            new_status = rng.choice(["completed", "cancelled", "fulfilled"])
            new_amount = amount if rng.random() < 0.7 else amount + Decimal("1.50")
            rows.append((oid, customer, order_ts, new_status, new_amount, later, later))
            if versions < 0.03:  # same updated_at landed twice: the later landing wins
                rows.append((oid, customer, order_ts, "COMPLETED", new_amount, later, later + dt.timedelta(minutes=5)))
    # The newest landing is exactly `newest`, so freshness is decided by the caller's choice.
    rows.append(
        (
            f"O{n:07d}",
            rng.choice(customer_ids),
            newest - dt.timedelta(hours=1),
            "completed",
            Decimal("42.00"),
            newest,
            newest,
        )
    )
    rng.shuffle(rows)
    return rows


def to_frames(spark: SparkSession, orders: list[tuple], customers: list[tuple]) -> tuple[DataFrame, DataFrame]:
    return (spark.createDataFrame(orders, ORDERS_SCHEMA), spark.createDataFrame(customers, CUSTOMERS_SCHEMA))


def write_lakehouse(spark: SparkSession, out: str, as_of: dt.date, **options) -> None:
    orders, customers = to_frames(spark, *generate(as_of, **options))
    orders.write.format("delta").mode("overwrite").save(f"{out.rstrip('/')}/{tables.RAW_ORDERS}")
    customers.write.format("delta").mode("overwrite").save(f"{out.rstrip('/')}/{tables.RAW_CUSTOMERS}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a seeded sample raw_orders and raw_customers as Delta tables.")
    parser.add_argument("--out", default="data/lakehouse/raw", help="directory for the two raw tables")
    parser.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        default=dt.datetime.now(UTC).date(),
        help="the run date the data is shaped around (default: today, UTC)",
    )
    parser.add_argument("--orders", type=int, default=6000)
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--ingested-until",
        type=parse_run_timestamp,  # read as the job reads --run-timestamp
        help="ISO instant of the newest _ingested_at (default: 30 minutes ago, at most 23:30 on --as-of)",
    )
    parser.add_argument(
        "--next-day",
        action="store_true",
        help="append to the tables under --out the day of changes that lands after their newest "
        "_ingested_at (new orders, a late order, a cancellation, a corrected amount, a segment move, "
        "a new test user), at most until --ingested-until (default: 30 minutes ago)",
    )
    parser.add_argument("--config", help="config whose spark section sizes the session")
    args = parser.parse_args(argv)

    from growth_revenue.config import load_config
    from growth_revenue.sample_next_day import append_next_day
    from growth_revenue.session import get_spark, stop_spark

    now = dt.datetime.now(UTC)
    spark = get_spark(load_config(args.config).spark)
    try:
        if args.next_day:
            kinds = append_next_day(spark, args.out, args.seed, args.ingested_until or now - dt.timedelta(minutes=30))
            print(
                f"appended the next day to {tables.RAW_ORDERS} and {tables.RAW_CUSTOMERS} under {args.out}: "
                + ", ".join(f"{count} {kind}" for kind, count in kinds.items())
            )
            return 0
        # Fresh as of "now", so the demo's nightly run passes the freshness rule.
        newest = min(now, dt.datetime.combine(args.as_of + dt.timedelta(days=1), dt.time(0), UTC))
        write_lakehouse(
            spark,
            args.out,
            args.as_of,
            orders=args.orders,
            customers=args.customers,
            seed=args.seed,
            ingested_until=args.ingested_until or newest - dt.timedelta(minutes=30),
        )
    finally:
        stop_spark(spark)
    print(
        f"wrote {tables.RAW_ORDERS} and {tables.RAW_CUSTOMERS} under {args.out} (as-of {args.as_of}, seed {args.seed})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
