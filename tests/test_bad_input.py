"""Bad input gets a clear error, and nothing is published.

Each row of CASES below is one way the input can go wrong, run through the command line
(`cli.main_in_session`) against a copy of one published baseline lakehouse:

- `breaks` changes the copied raw tables (or returns extra command-line arguments, which win
  over the defaults: `--as-of` given twice takes the last one);
- `exit_code` and `says` are the outcome: the job's exit code, and a fragment of its log
  (stderr). For a failing run the fragment must be on an ERROR line;
- `publishes` says whether the run replaces `mart_orders_enriched` and the as-of snapshot of
  `rpt_30day_revenue_by_segment`. When it does not, the Delta versions of the mart, the report
  and `quarantine_orders` must be the baseline's; only a failed quality gate (exit 3) records
  its results in `dq_check_results`;
- `then`, for the runs that publish, checks what was published.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from lakehouse import Lakehouse
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from rows import customer, order, ts

from growth_revenue import quality, tables
from growth_revenue.exit_codes import ExitCode

OK, INPUT_ERROR, USAGE, GATE = ExitCode.OK, ExitCode.INPUT_ERROR, ExitCode.USAGE, ExitCode.QUALITY_GATE
AS_OF = "2026-11-25"
RUN_TIMESTAMP = "2026-11-25T07:00:00Z"
FRESH = "2026-11-25 06:00:00"  # one hour before the run: within the 24 h freshness bound

UNICODE_SEGMENT = "Ünternehmen 企業 🚀"
LONG_SEGMENT = "Ab" * 5_000  # 10,000 characters
NEAR_MAX_AMOUNT = "9999999999999999.99"  # the largest decimal(18,2)


@dataclass(frozen=True)
class Case:
    id: str  # the rule the case proves
    breaks: Callable[[Lakehouse], list[str] | None]  # breaks the copied input; may return extra argv
    exit_code: int
    says: str  # fragment of the job's log; on an ERROR line when the run fails
    publishes: bool
    then: Callable[[Lakehouse, str], None] | None = None  # (lake, log): what the run published


CASES = [
    # Input contract: exit 1, before any rule runs
    Case(
        "missing_raw_table_is_an_input_error",
        lambda lake: shutil.rmtree(lake.raw_path(tables.RAW_ORDERS)),
        INPUT_ERROR,
        "raw_orders: no table at",
        False,
    ),
    Case(
        "folder_neither_delta_nor_parquet_is_an_input_error",
        lambda lake: replace_with_csv_folder(lake),
        INPUT_ERROR,
        "neither a Delta table nor readable Parquet",
        False,
    ),
    Case(
        "missing_contract_column_is_named",
        lambda lake: lake.rewrite(tables.RAW_ORDERS, lambda df: df.drop("amount")),
        INPUT_ERROR,
        "raw_orders: missing contract column 'amount'",
        False,
    ),
    Case(
        "amount_as_string_breaks_the_contract",
        lambda lake: lake.rewrite(tables.RAW_ORDERS, as_string("amount")),
        INPUT_ERROR,
        "raw_orders: column 'amount' has type string",
        False,
    ),
    Case(
        "order_ts_as_string_breaks_the_contract",
        lambda lake: lake.rewrite(tables.RAW_ORDERS, as_string("order_ts")),
        INPUT_ERROR,
        "raw_orders: column 'order_ts' has type string",
        False,
    ),
    # Quality gate: exit 3, results recorded, nothing published
    Case("empty_raw_orders_fail_the_gate", lambda lake: lake.write(orders=[]), GATE, "raw_orders has rows", False),
    Case(
        "stale_raw_orders_fail_the_freshness_bound",
        lambda lake: lake.write(orders=good_orders(3, ingested_at="2026-11-23 06:00:00")),
        GATE,
        "within the freshness bound",
        False,
    ),
    Case(
        "negative_revenue_fails_the_gate",
        lambda lake: lake.write(orders=good_orders(3) + [order("NEG", amount="-5.00", ingested_at=FRESH)]),
        GATE,
        "revenue is never negative",
        False,
    ),
    Case(
        "quarantine_above_its_share_fails_the_gate",
        lambda lake: lake.write(orders=good_orders(2) + [order("Q1", amount=None, ingested_at=FRESH)]),
        GATE,
        "of revenue orders are quarantined",
        False,
    ),
    # Row-level problems within quarantine.quarantine_max_share (1%): published without them
    Case(
        "null_order_id_is_quarantined",
        lambda lake: lake.write(orders=good_orders(150) + [order(None, "C1", amount="7.00", ingested_at=FRESH)]),
        OK,
        "revenue orders quarantined",
        True,
        lambda lake, log: assert_quarantined(lake, log, (None, "7.00", "missing_order_id")),
    ),
    Case(
        "null_order_ts_is_quarantined",
        lambda lake: lake.write(orders=good_orders(150) + [without_order_ts(order("Q2", amount="7.00"))]),
        OK,
        "revenue orders quarantined",
        True,
        lambda lake, log: assert_quarantined(lake, log, ("Q2", "7.00", "missing_order_ts")),
    ),
    Case(
        "null_amount_on_a_revenue_order_is_quarantined",
        lambda lake: lake.write(orders=good_orders(150) + [order("Q3", amount=None, ingested_at=FRESH)]),
        OK,
        "revenue orders quarantined",
        True,
        lambda lake, log: assert_quarantined(lake, log, ("Q3", None, "missing_amount")),
    ),
    Case(
        "null_amount_on_a_cancelled_order_is_not_quarantined",
        lambda lake: lake.write(
            orders=good_orders(3) + [order("X1", status="cancelled", amount=None, ingested_at=FRESH)]
        ),
        OK,
        "no revenue order is quarantined - 0 of 3 revenue orders quarantined",
        True,
        lambda lake, log: assert_mart_ids_and_empty_quarantine(lake, good_ids(3)),
    ),
    # Content edge cases: published exactly
    Case(
        "exact_ties_pick_the_same_version_in_written_order",
        lambda lake: lake.write(orders=good_orders(2) + TIED_VERSIONS),
        OK,
        "rule 1 latest version: 7 raw order rows -> 3 orders (4 superseded versions removed)",
        True,
        lambda lake, log: assert_tie_winner(lake),
    ),
    Case(
        "exact_ties_pick_the_same_version_in_reverse_order",
        lambda lake: lake.write(orders=list(reversed(good_orders(2) + TIED_VERSIONS))),
        OK,
        "rule 1 latest version: 7 raw order rows -> 3 orders (4 superseded versions removed)",
        True,
        lambda lake, log: assert_tie_winner(lake),
    ),
    Case(
        "non_ascii_and_long_segments_are_kept_exactly",
        lambda lake: lake.write(
            customers=[
                customer("C1", "a@shop.io", f"  {UNICODE_SEGMENT} "),
                customer("C2", "b@shop.io", f" {LONG_SEGMENT}  "),
            ]
        ),
        OK,
        "published, exit 0",
        True,
        lambda lake, log: assert_segments(
            lake, {UNICODE_SEGMENT.lower(): Decimal("20.00"), LONG_SEGMENT.lower(): Decimal("20.00")}
        ),
    ),
    Case(
        "revenue_near_the_decimal_limit_sums_exactly",
        lambda lake: lake.write(orders=good_orders(500, customer_id="C1", amount=NEAR_MAX_AMOUNT)),
        OK,
        "published, exit 0",
        True,
        lambda lake, log: assert_exact_sum(lake, "enterprise", Decimal(NEAR_MAX_AMOUNT) * 500, 500),
    ),
    # Usage: exit 2, before Spark reads anything
    Case(
        "as_of_after_the_run_date_is_a_usage_error",
        lambda lake: ["--as-of", "2026-11-26"],
        USAGE,
        "is after the run date",
        False,
    ),
    Case("malformed_as_of_is_a_usage_error", lambda lake: ["--as-of", "2026-13-45"], USAGE, "is not a date", False),
    Case(
        "unknown_config_key_is_a_usage_error",
        lambda lake: config_file(lake, "rules:\n  revenue_status: [completed]\n"),
        USAGE,
        "unknown key 'rules.revenue_status'",
        False,
    ),
    Case(
        "wrongly_typed_config_value_is_a_usage_error",
        lambda lake: config_file(lake, "quality:\n  freshness_max_age_hours: soon\n"),
        USAGE,
        "'quality.freshness_max_age_hours' should be a valid number",
        False,
    ),
]

# Five versions of D1 share updated_at and _ingested_at; each loser differs from the winner in the
# one tie-break column named beside it, so dropping any tie-break leaves the choice to file order.
_TIED = {"updated_at": "2026-11-21 00:00:00", "ingested_at": FRESH}
TIED_VERSIONS = [
    order("D1", "C1", "2026-11-20 11:00:00", status="fulfilled", amount="30.00", **_TIED),  # status ascending
    order("D1", "C1", "2026-11-20 11:00:00", status="completed", amount="20.00", **_TIED),  # amount descending
    order("D1", "C2", "2026-11-20 11:00:00", status="completed", amount="30.00", **_TIED),  # customer_id ascending
    order("D1", "C1", "2026-11-20 10:00:00", status="completed", amount="30.00", **_TIED),  # order_ts descending
    order("D1", "C1", "2026-11-20 11:00:00", status="completed", amount="30.00", **_TIED),  # the winner
]
TIE_WINNER = ("D1", "C1", "2026-11-20 11:00:00", "completed", Decimal("30.00"))


# --- the baseline and the lakehouse copied from it -------------------------------------------


def config_file(lake: Lakehouse, text: str) -> list[str]:
    """A job config with `text` for the run; the options that pass it."""
    path = lake.root / "job.yaml"
    path.write_text(text)
    return ["--config", str(path)]


def good_orders(n: int, customer_id: str | None = None, amount: str = "10.00", ingested_at: str = FRESH):
    """n completed orders in the report window (1-24 Nov), alternating C1/C2 unless one is given."""
    return [
        order(
            f"G{i:03d}",
            customer_id or ("C1", "C2")[i % 2],
            f"2026-11-{1 + i % 24:02d} 10:00:00",
            amount=amount,
            ingested_at=ingested_at,
        )
        for i in range(n)
    ]


def good_ids(n: int) -> set[str]:
    return {row[0] for row in good_orders(n)}


BASELINE_CUSTOMERS = [customer("C1", "a@shop.io", "Enterprise"), customer("C2", "b@shop.io", " smb")]


@pytest.fixture(scope="module")
def baseline(spark, tmp_path_factory):
    """A published lakehouse: raw tables, and the outputs of one good run over them."""
    lake = Lakehouse(spark, tmp_path_factory.mktemp("baseline"), run_at=RUN_TIMESTAMP)
    lake.write(orders=good_orders(4), customers=BASELINE_CUSTOMERS)
    assert lake.cli("--as-of", AS_OF) == OK
    versions = lake.versions()
    assert None not in versions.values(), versions  # every output exists before a case breaks anything
    return lake.root, versions


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, spark, baseline, tmp_path, capsys):
    root, before = baseline
    lake = Lakehouse(spark, tmp_path / "lake", run_at=RUN_TIMESTAMP)
    shutil.copytree(root, lake.root)
    extra_argv = case.breaks(lake) or []
    capsys.readouterr()  # only the run's own log below

    code = lake.cli("--as-of", AS_OF, *extra_argv)
    log = capsys.readouterr().err

    assert code == case.exit_code, log
    after = lake.versions()
    if case.publishes:
        assert after[tables.MART] == before[tables.MART] + 1
        assert after[tables.REPORT] == before[tables.REPORT] + 1
        assert case.says in log, log
        case.then(lake, log)
    else:
        errors = [line for line in log.splitlines() if " ERROR growth_revenue: " in line]
        assert any(case.says in line for line in errors), log
        recorded = case.exit_code == GATE  # a failed gate appends its results; nothing else is written
        if recorded and quality.deequ_available(spark):  # on the default line: failed through Deequ itself
            assert "constraints with the deequ engine" in log, log
        assert after == {**before, tables.DQ_RESULTS: before[tables.DQ_RESULTS] + recorded}


# --- breaking the input ----------------------------------------------------------------------


def replace_with_csv_folder(lake: Lakehouse) -> None:
    shutil.rmtree(lake.raw_path(tables.RAW_ORDERS))
    lake.raw_path(tables.RAW_ORDERS).mkdir()
    (lake.raw_path(tables.RAW_ORDERS) / "orders.csv").write_text("order_id,amount\nO1,10.00\n")


def as_string(column: str) -> Callable[[DataFrame], DataFrame]:
    return lambda df: df.withColumn(column, F.col(column).cast("string"))


def without_order_ts(row: tuple) -> tuple:
    order_id, customer_id, _order_ts, status, amount, _updated_at, _ingested = row
    return order_id, customer_id, None, status, amount, ts(FRESH), ts(FRESH)


# --- what a publishing run published ---------------------------------------------------------


def report(lake: Lakehouse) -> DataFrame:
    return lake.output(tables.REPORT).where(F.col("as_of_date") == F.lit(dt.date.fromisoformat(AS_OF)))


def assert_quarantined(lake: Lakehouse, log: str, expected: tuple) -> None:
    """One bad revenue order among 150 good ones: quarantined, not in the mart, a WARN line."""
    quarantine = (
        lake.output(tables.QUARANTINE).select("order_id", F.col("amount").cast("string"), "quarantine_reason").collect()
    )
    assert [tuple(row) for row in quarantine] == [expected]
    assert {row["order_id"] for row in lake.output(tables.MART).select("order_id").collect()} == good_ids(150)
    assert re.search(r"check WARN +\[Warning\] quarantine_orders: .*1 of 151 revenue orders quarantined", log), log


def assert_mart_ids_and_empty_quarantine(lake: Lakehouse, ids: set[str]) -> None:
    assert {row["order_id"] for row in lake.output(tables.MART).select("order_id").collect()} == ids
    assert lake.output(tables.QUARANTINE).count() == 0


def assert_tie_winner(lake: Lakehouse) -> None:
    chosen = (
        lake.output(tables.MART)
        .where("order_id = 'D1'")
        .select("order_id", "customer_id", F.col("order_ts").cast("string"), "status", "revenue")
        .collect()
    )
    assert [tuple(row) for row in chosen] == [TIE_WINNER]


def assert_segments(lake: Lakehouse, revenue_by_segment: dict[str, Decimal]) -> None:
    assert len(LONG_SEGMENT.lower()) == 10_000
    mart_segments = {row[0] for row in lake.output(tables.MART).select("customer_segment").distinct().collect()}
    assert mart_segments == set(revenue_by_segment)
    assert {
        row[0]: row[1] for row in report(lake).select("customer_segment", "revenue").collect()
    } == revenue_by_segment


def assert_exact_sum(lake: Lakehouse, segment: str, total: Decimal, orders: int) -> None:
    published = report(lake)
    assert published.schema["revenue"].dataType == T.DecimalType(38, 2)
    rows = published.where(F.col("customer_segment") == segment).select("revenue", "order_count").collect()
    assert [tuple(row) for row in rows] == [(total, orders)]
    assert total == Decimal("4999999999999999995.00")  # 19 integer digits: beyond decimal(18,2)
