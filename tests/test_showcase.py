"""The demo's two halves: what `sample_data --next-day` appends, and how the showcase prints the tables."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from decimal import Decimal

from lakehouse import Lakehouse
from pyspark.sql import functions as F

from growth_revenue import sample_data, sample_next_day, showcase, tables, transforms
from growth_revenue.matching import normalised_text

UTC = dt.timezone.utc
D1, D2 = dt.date(2026, 12, 5), dt.date(2026, 12, 6)


def snapshot(as_of: dt.date, *segments: tuple[str, str, int, int]) -> list[dict]:
    start, end = as_of - dt.timedelta(days=30), as_of - dt.timedelta(days=1)
    return [
        {
            "as_of_date": as_of,
            "window_start": start,
            "window_end": end,
            "customer_segment": segment,
            "revenue": Decimal(revenue),
            "order_count": orders,
            "customer_count": customers,
        }
        for segment, revenue, orders, customers in segments
    ]


# --- formatting (no Spark) ----------------------------------------------------------------------


def test_dashboard_shows_each_segment_against_the_previous_snapshot():
    latest = snapshot(D2, ("enterprise", "1100.00", 11, 5), ("smb", "300.00", 4, 3), ("consumer", "50.00", 1, 1))
    previous = snapshot(D1, ("enterprise", "1000.00", 10, 5), ("smb", "400.00", 5, 3), ("unknown", "20.00", 1, 0))
    assert showcase.format_dashboard(latest, previous) == [
        "Growth dashboard: 30-day revenue by segment as of 2026-12-06 (orders 2026-11-06..2026-12-05)",
        "  segment      revenue  orders  customers     vs 2026-12-05",
        "  ----------  --------  ------  ---------  ----------------",
        "  enterprise  1,100.00      11          5  +100.00 (+10.0%)",
        "  smb           300.00       4          3  -100.00 (-25.0%)",
        "  consumer       50.00       1          1               new",
        "  unknown         0.00       0          0  -20.00 (-100.0%)",
        "  total       1,450.00      16               +30.00 (+2.1%)",
    ]


def test_dashboard_without_an_earlier_snapshot_says_so():
    lines = showcase.format_dashboard(snapshot(D1, ("smb", "12.50", 1, 1)), [])
    assert lines[1].split() == ["segment", "revenue", "orders", "customers"]
    assert lines[3].split() == ["smb", "12.50", "1", "1"]
    assert lines[-1] == "  (no earlier snapshot to compare with)"
    assert showcase.format_dashboard([], []) == [f"Growth dashboard ({tables.REPORT}): no snapshot published yet"]


def test_change_of_a_segment_from_zero_has_no_percentage():
    assert showcase.change(Decimal("5.00"), Decimal("0")) == "+5.00"
    assert showcase.change(Decimal("1234.56"), Decimal("1000")) == "+234.56 (+23.5%)"
    assert showcase.change(Decimal("1"), None) == "new"


def test_mart_history_says_which_run_was_full_and_which_incremental():
    def state(run_id: str, mode: str) -> str:
        return json.dumps(
            {
                "run_id": run_id,
                "growth_revenue_state": {
                    "run_id": run_id,
                    "mode": mode,
                    "orders_watermark": None,
                    "customer_state_version": 0,
                    "raw_orders_version": 0,
                    "rules": {},
                },
            }
        )

    commits = [
        {"version": 2, "operation": "MERGE", "userMetadata": state("r2", "incremental")},
        {"version": 1, "operation": "SET TBLPROPERTIES", "userMetadata": None},
        {"version": 0, "operation": "WRITE", "userMetadata": state("r1", "full")},
    ]
    assert [line.split() for line in showcase.format_mart(4321, commits)] == [
        [tables.MART + ":", "4,321", "rows.", "Its", "Delta", "history,", "newest", "first:"],
        ["version", "operation", "run", "run", "id"],
        ["-------", "-----------------", "-----------", "------"],
        ["2", "MERGE", "incremental", "r2"],
        ["1", "SET", "TBLPROPERTIES", "-", "-"],
        ["0", "WRITE", "full", "r1"],
    ]
    assert showcase.format_mart(None, []) == [f"{tables.MART}: not published yet"]


def test_quarantine_counts_by_reason_and_checks_of_the_last_run():
    assert showcase.format_quarantine({}) == [f"{tables.QUARANTINE}: no order held back"]
    lines = showcase.format_quarantine({"missing_order_ts": 2, "missing_amount": 1})
    assert lines[0] == f"{tables.QUARANTINE}: 3 order(s) held back from the mart"
    assert lines[1:] == [
        "  reason            orders",
        "  ----------------  ------",
        "  missing_amount         1",
        "  missing_order_ts       2",
    ]

    checks = [
        {"check": "mart", "level": "Error", "constraint": "UniquenessConstraint", "status": "Success"},
        {"check": "quarantine", "level": "Warning", "constraint": "share", "status": "Failure"},
    ]
    lines = showcase.format_checks("run-2", checks)
    assert lines[0] == (
        f"{tables.DQ_RESULTS} of the last run (run-2): 2 constraints, 1 not met, 0 of them at Error level"
    )
    assert lines[1:] == [
        "  check       level    status   constraint",
        "  ----------  -------  -------  --------------------",
        "  mart        Error    Success  UniquenessConstraint",
        "  quarantine  Warning  Failure  share",
    ]


# --- the next day, appended to a small sample lakehouse (Spark) -----------------------------------


def appended(before: list[tuple], after: list[tuple]) -> list[tuple]:
    difference = Counter(after)
    difference.subtract(Counter(before))
    assert min(difference.values(), default=0) >= 0, "rows that were there before are gone"
    return list(difference.elements())


def test_the_sample_puts_a_few_percent_of_revenue_in_unknown_and_keeps_every_way_of_getting_there(
    spark, config, tmp_path
):
    """A report where a third of revenue is 'unknown' looks like a broken job, not a business."""
    lakehouse, run_at = Lakehouse(spark, tmp_path), dt.datetime(2026, 12, 5, 7, tzinfo=UTC)
    lakehouse.write_sample(D1, orders=6000, customers=400, ingested_until=run_at - dt.timedelta(hours=1))
    report = transforms.revenue_by_segment(
        lakehouse.expected_mart(config.rules, run_at), D1, config.rules.report_window_days, run_at, "sample"
    )
    revenue = {row["customer_segment"]: row["revenue"] for row in report.collect()}
    assert 0.01 < revenue[config.rules.unknown_segment] / sum(revenue.values()) < 0.08, revenue

    segments = {row[0] for row in lakehouse.raw(tables.RAW_CUSTOMERS).select("customer_segment").collect()}
    assert set(sample_data.BLANK_SEGMENTS) <= segments  # '', '   ' and null
    customers = lakehouse.raw(tables.RAW_CUSTOMERS).select("customer_id")
    orders = lakehouse.raw(tables.RAW_ORDERS)
    assert orders.where(F.col("customer_id").isNull()).count() > 0
    assert orders.where(F.col("customer_id").isNotNull()).join(customers, "customer_id", "left_anti").count() > 0


def test_next_day_appends_one_day_of_each_change_after_the_previous_data(spark, tmp_path):
    lakehouse, landed_until = Lakehouse(spark, tmp_path / "raw"), dt.datetime(2026, 12, 5, 6, tzinfo=UTC)
    lakehouse.write_sample(D1, orders=600, customers=60, ingested_until=landed_until)
    out = str(lakehouse.root)
    run_at = dt.datetime(2026, 12, 6, 5, tzinfo=UTC)  # the next night's run, 23 hours later

    def rows(table: str, schema) -> list[tuple]:
        frame = spark.read.format("delta").load(f"{out}/{table}").select(*schema.fieldNames())
        return [tuple(v.astimezone(UTC) if isinstance(v, dt.datetime) else v for v in row) for row in frame.collect()]

    orders_before = rows(tables.RAW_ORDERS, sample_data.ORDERS_SCHEMA)
    customers_before = rows(tables.RAW_CUSTOMERS, sample_data.CUSTOMERS_SCHEMA)
    kinds = sample_next_day.append_next_day(spark, out, landed_until=run_at - dt.timedelta(minutes=30))
    orders_after = rows(tables.RAW_ORDERS, sample_data.ORDERS_SCHEMA)
    customers_after = rows(tables.RAW_CUSTOMERS, sample_data.CUSTOMERS_SCHEMA)

    # An append: every earlier row is still there, and the new ones come on top.
    new_orders, new_customers = appended(orders_before, orders_after), appended(customers_before, customers_after)

    # The change kinds, told apart from the rows themselves.
    previous_newest = max(r[6] for r in orders_before)
    latest = {}
    for row in sorted(orders_before, key=lambda r: (r[5], r[6])):
        latest[row[0]] = row
    known_customers = {}
    for row in sorted(customers_before, key=lambda r: r[4]):
        known_customers[row[0]] = row
    counted: dict[str, int] = {}

    def count(kind: str) -> None:
        counted[kind] = counted.get(kind, 0) + 1

    for oid, customer, order_ts, status, amount, _updated, _landed in new_orders:
        if oid not in latest:
            if amount is None:
                count("missing_amount")
            elif order_ts >= previous_newest:
                count("new_order")
            elif order_ts < previous_newest - dt.timedelta(days=7):
                count("late_order")
        elif normalised_text(status) == "cancelled":
            assert normalised_text(latest[oid][3]) in ("completed", "fulfilled")
            count("cancellation")
        elif amount != latest[oid][4] and (customer, order_ts, status) == latest[oid][1:4]:
            count("corrected_amount")
    for cid, _email, segment, flag, _updated in new_customers:
        before = known_customers[cid]
        if flag is True and before[3] is not True:
            count("new_test_user")
        elif normalised_text(segment or "") != normalised_text(before[2] or ""):
            count("segment_move")
    assert counted == {
        "new_order": 79,
        "missing_amount": 1,
        "late_order": 1,
        "cancellation": 1,
        "corrected_amount": 1,
        "segment_move": 1,
        "new_test_user": 1,
    }
    assert kinds == counted
    assert len(new_orders) == 83 and len(new_customers) == 2  # nothing else appended

    # Landed after the previous data, before the run; the newest exactly at the bound given.
    landed = [r[6] for r in new_orders] + [r[4] for r in new_customers]
    assert min(landed) > previous_newest
    assert max(landed) == max(r[6] for r in new_orders) == run_at - dt.timedelta(minutes=30)
    assert all(r[5] == r[6] for r in new_orders)  # updated_at is when the change landed

    # Seeded: the same tables give the same day.
    again = sample_next_day.next_day(orders_before, customers_before, landed_until=run_at - dt.timedelta(minutes=30))
    assert sorted(again[0], key=repr) == sorted(new_orders, key=repr)
