"""Soak: eight nightly runs over a growing lakehouse, with bad days, end where a clean recompute does.

Every day new orders land, old orders change (cancelled, amount corrected, late arrivals) and
customers change (new segment, turned test user, customer row arriving after its orders). Two
days bring a negative revenue: the gate fails and nothing is published; the next day's
correction publishes again. One day brings an order without an amount: it is quarantined.
"""

import datetime as dt
import random
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from demo import order_ts_bounds
from lakehouse import Lakehouse
from pyspark.sql import functions as F
from rows import UTC

from growth_revenue import metrics, tables, transforms

FIRST = dt.date(2026, 10, 1)
DAYS = 8
BAD_DAYS = {2, 5}  # a negative revenue lands; the next day corrects it
QUARANTINE_DAY = 4  # a revenue order without an amount lands
SEGMENTS = ("smb", "enterprise", "mid-market", "consumer")
RUN_COLUMNS = ("computed_at", "run_id", "mart_version", "as_of_date")


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), UTC)


class SoakDays:
    """The raw rows that land each day, seeded: day 0 is the history, then each day's new rows and changes."""

    def __init__(self, seed=11):
        self.rng = random.Random(seed)
        self.orders: dict[str, tuple] = {}  # latest version written, by order_id
        self.customers = 0
        self.next_order = 0
        self.left_alone: set[str] = set()  # the planted bad orders: random revisions do not touch them

    def new_order(self, day, landed, customer=None, amount=None, status="completed"):
        self.next_order += 1
        order_ts = at(day, self.rng.randrange(24))
        customer = customer or f"C{self.rng.randrange(1, self.customers + 1)}"
        amount = amount if amount is not None else Decimal(self.rng.randrange(100, 50000)) / 100
        row = (f"O{self.next_order}", customer, order_ts, status, amount, order_ts, landed)
        self.orders[row[0]] = row
        return row

    def revise(self, order_id, landed, **changes):
        row = dict(
            zip(
                ("order_id", "customer_id", "order_ts", "status", "amount", "updated_at", "_ingested_at"),
                self.orders[order_id],
                strict=True,
            )
        )
        row.update(changes, updated_at=landed - dt.timedelta(minutes=5), _ingested_at=landed)
        self.orders[order_id] = tuple(row.values())
        return self.orders[order_id]

    def new_customer(self, landed, segment=None, email_domain="shop.io", customer_id=None):
        if customer_id is None:
            self.customers += 1
            customer_id = f"C{self.customers}"
        segment = segment or self.rng.choice(SEGMENTS)
        return (customer_id, f"{customer_id.lower()}@{email_domain}", segment, False, landed)

    def landing(self, day_index: int, as_of: dt.date) -> tuple[list, list]:
        """The (orders, customers) that land at 05:00 on `as_of`, each stamped with that _ingested_at."""
        landed, rng = at(as_of, 5), self.rng
        orders, customers = [], []
        if day_index == 0:  # history: 40 customers, 60 days of orders
            customers = [self.new_customer(landed) for _ in range(40)]
            orders = [self.new_order(as_of - dt.timedelta(days=rng.randrange(1, 61)), landed) for _ in range(400)]
        else:
            yesterday = as_of - dt.timedelta(days=1)
            customers = [self.new_customer(landed) for _ in range(2)]
            orders = [self.new_order(yesterday, landed) for _ in range(15)]
            old = rng.sample(sorted(set(self.orders) - self.left_alone), 4)
            orders += [
                self.revise(old[0], landed, status="cancelled"),  # cancelled weeks later
                self.revise(old[1], landed, amount=Decimal(rng.randrange(100, 50000)) / 100),  # corrected
                self.new_order(as_of - dt.timedelta(days=rng.randrange(2, 40)), landed),  # late, for an old date
            ]
            if day_index % 3 == 0:  # customer changes
                moved = f"C{rng.randrange(1, self.customers + 1)}"
                customers.append(self.new_customer(landed, segment="enterprise", customer_id=moved))
                tester = f"C{rng.randrange(1, self.customers + 1)}"
                customers.append(self.new_customer(landed, customer_id=tester, email_domain="example.com"))
                orders.append(self.new_order(yesterday, landed, customer=f"C{self.customers + 1}"))  # not yet known
            if day_index - 1 in BAD_DAYS:
                orders.append(self.revise(self.bad_order, landed, amount=Decimal("55.00")))
            if day_index in BAD_DAYS:
                bad = self.new_order(yesterday, landed, amount=Decimal("-55.00"))
                self.bad_order = bad[0]
                self.left_alone.add(bad[0])
                orders.append(bad)
            if day_index == QUARANTINE_DAY:
                no_amount = self.new_order(yesterday, landed)
                no_amount = self.orders[no_amount[0]] = (*no_amount[:4], None, *no_amount[5:])
                self.left_alone.add(no_amount[0])
                orders.append(no_amount)
        return orders, customers


def content(frame):
    return frame.drop(*[c for c in RUN_COLUMNS if c in frame.columns])


def expected_report(lakehouse, rules, as_of, run_at):
    """The snapshot for `as_of` recomputed from the raw rows that had landed by its run."""
    orders = lakehouse.raw(tables.RAW_ORDERS).where(F.col("_ingested_at") <= F.lit(run_at))
    customers = lakehouse.raw(tables.RAW_CUSTOMERS).where(F.col("updated_at") <= F.lit(run_at))
    mart = transforms.build_mart(
        orders,
        customers,
        rules.revenue_statuses,
        rules.test_email_domains,
        rules.unknown_segment,
        rules.reporting_timezone,
        order_ts_bounds(rules, run_at),
    )
    return transforms.revenue_by_segment(mart, as_of, rules.report_window_days, run_at, "expected")


@pytest.mark.slow
@pytest.mark.resilience
def test_nightly_runs_with_bad_days_end_equal_to_a_clean_recompute(spark, config, tmp_path):
    lakehouse, days = Lakehouse(spark, tmp_path), SoakDays()
    exits = {}
    for day in range(DAYS):
        as_of = FIRST + dt.timedelta(days=day)
        lakehouse.land(f"{as_of} 05:00:00", *days.landing(day, as_of))
        exits[day] = lakehouse.cli("--as-of", str(as_of), at=at(as_of, 7))
    assert {day for day, code in exits.items() if code != 0} == BAD_DAYS
    assert {code for day, code in exits.items() if day in BAD_DAYS} == {3}

    # Every published snapshot is what the raw data of its night gave; failed nights left none.
    report = lakehouse.output(tables.REPORT)
    published = sorted(row[0] for row in report.select("as_of_date").distinct().collect())
    assert published == [FIRST + dt.timedelta(days=d) for d in range(DAYS) if d not in BAD_DAYS]
    for as_of in published:
        snapshot = content(report.where(F.col("as_of_date") == F.lit(as_of)))
        expected = content(expected_report(lakehouse, config.rules, as_of, at(as_of, 7)))
        assert_df_equality(snapshot, expected, ignore_row_order=True, ignore_nullable=True)
    assert report.groupBy("as_of_date").agg(F.countDistinct("run_id").alias("runs")).where("runs > 1").count() == 0

    # The last night's outputs equal a clean run on the final raw data into an empty folder.
    last = FIRST + dt.timedelta(days=DAYS - 1)
    clean = tmp_path / "clean"
    assert lakehouse.cli("--as-of", str(last), at=at(last, 7), out=clean) == 0
    for table in (tables.MART, tables.QUARANTINE):
        assert_df_equality(
            content(lakehouse.output(table)),
            content(lakehouse.output(table, out=clean)),
            ignore_row_order=True,
            ignore_nullable=True,
        )
    assert_df_equality(
        content(report.where(F.col("as_of_date") == F.lit(last))),
        content(lakehouse.output(tables.REPORT, out=clean)),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert [r["quarantine_reason"] for r in lakehouse.output(tables.QUARANTINE).collect()] == ["missing_amount"]

    # Every run is on record; the metrics history holds the published nights only.
    dq = lakehouse.output(tables.DQ_RESULTS)
    assert dq.select("run_id").distinct().count() == DAYS
    assert sorted(r[0] for r in dq.where("level = 'Error' AND status = 'Failure'").select("as_of_date").collect()) == [
        FIRST + dt.timedelta(days=d) for d in sorted(BAD_DAYS)
    ]
    history = metrics.MetricsRepository(spark, str(lakehouse.out / tables.METRICS_REPOSITORY)).load()
    assert [run.as_of for run in history] == published
