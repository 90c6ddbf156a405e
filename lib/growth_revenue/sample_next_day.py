"""The next day of the sample lakehouse: one seeded day of changes that lands between two nights
(`python -m growth_revenue.sample_data --next-day`, the second night of `make demo`).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from pyspark.sql import SparkSession

from growth_revenue import tables
from growth_revenue.matching import normalised_text
from growth_revenue.sample_data import CUSTOMERS_SCHEMA, DOMAINS, ORDERS_SCHEMA, STATUSES, UTC, to_frames

# What a day of changes holds (the counts of `next_day`'s third value).
NEW_ORDER, LATE_ORDER, CANCELLATION, CORRECTED_AMOUNT, NO_AMOUNT = (
    "new_order",
    "late_order",
    "cancellation",
    "corrected_amount",
    "missing_amount",
)
SEGMENT_MOVE, NEW_TEST_USER = "segment_move", "new_test_user"
REAL_SEGMENTS = ["enterprise", "smb", "mid-market", "consumer"]


def next_day(
    orders: list[tuple],
    customers: list[tuple],
    seed: int = 7,
    new_orders: int = 80,
    landed_until: dt.datetime | None = None,
) -> tuple[list[tuple], list[tuple], dict[str, int]]:
    """(raw_orders rows, raw_customers rows, count per change kind) landing on the day after `orders`.

    Everything lands after the newest `_ingested_at` of `orders` and at most 24 hours later (no
    later than `landed_until`; the newest row lands exactly then): `new_orders` orders of that day
    (one of them without an amount: it is quarantined), an order for a date two to three weeks
    back that landed late, a cancellation of an older revenue order, a corrected amount on
    another, one customer moving segment and one becoming a test user (by flag). The orders and
    customers changed are real customers' revenue orders of the last 25 days, so the report sees
    every change. Seeded: the same tables and seed give the same day.
    """
    start = max(row[6] for row in orders)
    end = min(start + dt.timedelta(hours=24), landed_until or start + dt.timedelta(hours=24))
    if end <= start:
        raise ValueError(f"nothing can land between the newest _ingested_at {start} and {end}")
    rng = random.Random(f"{seed}-{start.isoformat()}")
    instants = [(start + (end - start) * rng.uniform(0.01, 0.99)).replace(microsecond=0) for _ in range(new_orders + 4)]
    order_landings = [*instants[:-2], end]  # one per order row; the newest lands exactly at `end`
    rng.shuffle(order_landings)
    landings = iter(order_landings)
    latest_order = _latest(orders, lambda row: (row[5], row[6]))
    latest_customer = _latest(customers, lambda row: row[4])
    real = sorted(
        cid
        for cid, row in latest_customer.items()
        if row[3] is not True
        and row[1]
        and row[1].rsplit("@", 1)[-1] in DOMAINS
        and normalised_text(row[2] or "") in REAL_SEGMENTS
    )
    revenue = sorted(
        oid
        for oid, row in latest_order.items()
        if row[1] in real
        and row[2] is not None
        and normalised_text(row[3] or "") in ("completed", "fulfilled")
        and start - dt.timedelta(days=25) <= row[2] < start - dt.timedelta(days=2)
    )
    cancelled, corrected = rng.sample(revenue, 2)
    moved, tested = rng.sample(
        sorted({latest_order[oid][1] for oid in revenue} - {latest_order[cancelled][1], latest_order[corrected][1]}), 2
    )
    next_id = max(int(oid[1:]) for oid in latest_order) + 1
    order_rows, customer_rows = [], []
    for i in range(new_orders):
        landed = next(landings)
        order_ts = max(start, landed - dt.timedelta(minutes=rng.randint(5, 600)))
        amount = None if i == new_orders // 2 else Decimal(rng.randint(500, 50000)) / 100
        status = "completed" if amount is None else rng.choice(STATUSES[:5] + ["pending"])
        order_rows.append((f"O{next_id + i:07d}", rng.choice(real), order_ts, status, amount, landed, landed))
    landed = next(landings)
    order_rows.append(
        (
            f"O{next_id + new_orders:07d}",
            rng.choice(real),
            start - dt.timedelta(days=rng.randint(14, 21), seconds=rng.randint(0, 86399)),
            "completed",
            Decimal(rng.randint(500, 50000)) / 100,
            landed,
            landed,
        )
    )
    oid, customer, order_ts, _status, amount, *_ = latest_order[cancelled]
    landed = next(landings)
    order_rows.append((oid, customer, order_ts, "cancelled", amount, landed, landed))
    oid, customer, order_ts, status, amount, *_ = latest_order[corrected]
    landed = next(landings)
    order_rows.append(
        (oid, customer, order_ts, status, amount - Decimal("10.00") if amount > 20 else amount * 2, landed, landed)
    )
    cid, email, segment, flag, _ = latest_customer[moved]
    customer_rows.append(
        (cid, email, rng.choice([s for s in REAL_SEGMENTS if s != normalised_text(segment)]), flag, instants[-2])
    )
    cid, email, segment, _flag, _ = latest_customer[tested]
    customer_rows.append((cid, email, segment, True, instants[-1]))
    kinds = {
        NEW_ORDER: new_orders - 1,
        NO_AMOUNT: 1,
        LATE_ORDER: 1,
        CANCELLATION: 1,
        CORRECTED_AMOUNT: 1,
        SEGMENT_MOVE: 1,
        NEW_TEST_USER: 1,
    }
    return order_rows, customer_rows, kinds


def _latest(rows: list[tuple], key) -> dict[str, tuple]:
    """The latest version per id, the first column (rule 1 without its tie-breaks: enough for picking rows)."""
    latest: dict[str, tuple] = {}
    for row in rows:
        if row[0] is not None and (row[0] not in latest or key(row) > key(latest[row[0]])):
            latest[row[0]] = row
    return latest


def append_next_day(
    spark: SparkSession, out: str, seed: int = 7, landed_until: dt.datetime | None = None
) -> dict[str, int]:
    """Appends `next_day` of the raw tables under `out` to them (one Delta append each); its counts."""
    paths = [f"{out.rstrip('/')}/{table}" for table in (tables.RAW_ORDERS, tables.RAW_CUSTOMERS)]
    # Spark hands timestamps back as naive local time: made UTC instants again.
    current = [
        [
            tuple(v.astimezone(UTC) if isinstance(v, dt.datetime) else v for v in row)
            for row in spark.read.format("delta").load(path).select(*schema.fieldNames()).collect()
        ]
        for path, schema in zip(paths, (ORDERS_SCHEMA, CUSTOMERS_SCHEMA), strict=True)
    ]
    orders, customers, kinds = next_day(current[0], current[1], seed=seed, landed_until=landed_until)
    for rows, frame_path in zip(to_frames(spark, orders, customers), paths, strict=True):
        rows.write.format("delta").mode("append").save(frame_path)
    return kinds
