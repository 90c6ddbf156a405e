"""Whole runs in process: what gets published, what is left alone, and what a rerun does."""

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakehouse import Lakehouse
from rows import customer, order, ts

from growth_revenue import pipeline, sparkutil, tables, transforms
from growth_revenue.contract import ContractError
from growth_revenue.exit_codes import ExitCode
from growth_revenue.locations import Location
from growth_revenue.pipeline import RunRequest

AS_OF = dt.date(2026, 11, 25)
NIGHTLY = ts("2026-11-25 07:00:00")

ORDERS = [
    order("O1", "C1", "2026-11-20 10:00:00", amount="100.00", ingested_at="2026-11-25 06:00:00"),
    order("O2", "C2", "2026-11-21 10:00:00", status=" FULFILLED ", amount="50.00"),
    order("O3", "T1", "2026-11-22 10:00:00", amount="999.00"),  # test user
    order("O4", "C1", "2026-11-23 10:00:00", status="cancelled", amount="70.00"),
]
CUSTOMERS = [
    customer("C1", email="a@shop.io", segment="Enterprise"),
    customer("C2", email="b@shop.io", segment=" smb"),
    customer("T1", email="qa@example.com", segment="smb"),
]


@pytest.fixture
def lakehouse(spark, tmp_path):
    """Raw tables of ORDERS and CUSTOMERS under tmp_path; runs default to AS_OF at NIGHTLY."""
    lakehouse = Lakehouse(spark, tmp_path, as_of=AS_OF, run_at=NIGHTLY)
    lakehouse.write(ORDERS, CUSTOMERS)
    return lakehouse


def test_a_good_run_publishes_the_mart_the_report_and_the_check_results(spark, config, lakehouse):
    outcome = lakehouse.run(config)
    assert outcome.exit_code == ExitCode.OK

    mart = lakehouse.output(tables.MART).select("order_id", "customer_segment", "revenue")
    expected_mart = spark.createDataFrame(
        [("O1", "enterprise", Decimal("100.00")), ("O2", "smb", Decimal("50.00"))],
        "order_id string, customer_segment string, revenue decimal(18,2)",
    )
    assert_df_equality(mart, expected_mart, ignore_row_order=True, ignore_nullable=True)

    report = lakehouse.output(tables.REPORT).select(
        "as_of_date", "window_start", "window_end", "customer_segment", "revenue", "order_count", "customer_count"
    )
    expected_report = spark.createDataFrame(
        [
            (AS_OF, dt.date(2026, 10, 26), dt.date(2026, 11, 24), "enterprise", Decimal("100.00"), 1, 1),
            (AS_OF, dt.date(2026, 10, 26), dt.date(2026, 11, 24), "smb", Decimal("50.00"), 1, 1),
        ],
        "as_of_date date, window_start date, window_end date, customer_segment string, revenue decimal(38,2), "
        "order_count long, customer_count long",
    )
    assert_df_equality(report, expected_report, ignore_row_order=True, ignore_nullable=True)

    dq = lakehouse.output(tables.DQ_RESULTS)
    assert dq.where(f"run_id = '{outcome.run_id}'").count() == 12  # 8 gate constraints, 2 quarantine, 2 anomaly checks
    assert dq.where("status = 'Failure'").count() == 0


def test_rerunning_an_as_of_replaces_its_snapshot_and_keeps_the_others(spark, config, lakehouse):
    # Something landed on 11-24 too, so that day's snapshot passes the freshness rule.
    lakehouse.write(
        orders=ORDERS + [order("O5", "C2", "2026-11-23 12:00:00", amount="5.00", ingested_at="2026-11-24 06:00:00")],
        customers=CUSTOMERS,
    )
    assert lakehouse.run(config, as_of=dt.date(2026, 11, 24)).exit_code == ExitCode.OK
    first = lakehouse.run(config)
    second = lakehouse.run(config)
    report = lakehouse.output(tables.REPORT)
    assert report.where(f"as_of_date = DATE'{AS_OF}'").count() == 2  # two segments, not four
    assert {r["run_id"] for r in report.where(f"as_of_date = DATE'{AS_OF}'").collect()} == {second.run_id}
    assert report.where("as_of_date = DATE'2026-11-24'").count() == 2  # the other snapshot is untouched
    assert first.report_rows == [
        {**row, "computed_at": first.report_rows[i]["computed_at"], "run_id": first.run_id}
        for i, row in enumerate(second.report_rows)
    ]


def test_a_failed_gate_leaves_both_tables_at_their_previous_version(spark, config, lakehouse):
    assert lakehouse.run(config).exit_code == ExitCode.OK
    before = (lakehouse.version(tables.MART), lakehouse.version(tables.REPORT))

    lakehouse.write(orders=ORDERS + [order("O9", "C2", "2026-11-24 10:00:00", amount="-5.00")], customers=CUSTOMERS)
    outcome = lakehouse.run(config)

    assert outcome.exit_code == ExitCode.QUALITY_GATE
    assert (lakehouse.version(tables.MART), lakehouse.version(tables.REPORT)) == before
    failed = lakehouse.output(tables.DQ_RESULTS).where(f"run_id = '{outcome.run_id}' AND status = 'Failure'")
    assert [(r["dataset"], r["constraint"]) for r in failed.collect()] == [(tables.MART, "isNonNegative(revenue)")]


def test_a_test_user_order_leaking_past_the_filter_blocks_publishing(spark, config, lakehouse, monkeypatch):
    real_counted_orders = transforms.counted_orders

    def leaky(classified):  # a broken test-user filter, on purpose
        return real_counted_orders(classified.withColumn("is_test_customer", transforms.F.lit(False)))

    monkeypatch.setattr(transforms, "counted_orders", leaky)
    outcome = lakehouse.run(config)
    assert outcome.exit_code == ExitCode.QUALITY_GATE
    assert lakehouse.version(tables.MART) is None and lakehouse.version(tables.REPORT) is None
    blocked = [r for r in outcome.results if r.blocks_publishing]
    assert [r.rule.says for r in blocked] == ["no order of a test user"]


def test_stale_data_fails_the_nightly_run_but_a_backfill_of_its_date_passes(spark, config, lakehouse):
    # The lakehouse's newest _ingested_at is 2026-11-25 06:00.
    late_run = ts("2026-11-26 07:00:00")
    assert lakehouse.run(config, as_of=dt.date(2026, 11, 26), at=late_run).exit_code == 3
    assert lakehouse.run(config, as_of=AS_OF, at=late_run).exit_code == ExitCode.OK


def test_an_empty_window_publishes_with_a_warning(spark, config, lakehouse):
    lakehouse.write(
        orders=[order("O1", "C1", "2026-01-05 10:00:00", ingested_at="2026-11-25 06:00:00")], customers=CUSTOMERS
    )
    outcome = lakehouse.run(config)
    assert outcome.exit_code == ExitCode.OK
    assert outcome.report_rows == []
    warned = [r for r in outcome.results if r.status == "Failure"]
    assert [(r.check.level.value, r.rule.says) for r in warned] == [
        ("Warning", "at least one active segment in the window")
    ]


def test_a_missing_contract_column_names_the_table_and_column(spark, config, lakehouse):
    lakehouse.rewrite(tables.RAW_ORDERS, lambda orders: orders.drop("amount"))
    with pytest.raises(ContractError, match=r"raw_orders: missing contract column 'amount'"):
        lakehouse.run(config)
    assert lakehouse.version(tables.MART) is None


def test_a_mistyped_contract_column_names_the_table_column_and_types(spark, config, lakehouse):
    lakehouse.rewrite(tables.RAW_ORDERS, lambda orders: orders.withColumn("amount", orders["amount"].cast("string")))
    with pytest.raises(ContractError, match=r"raw_orders: column 'amount' has type string, expected decimal"):
        lakehouse.run(config)


def request(raw_orders: Path, raw_customers: Path, output: Path) -> RunRequest:
    """A nightly run over tables at these paths (not a lakehouse's layout)."""
    return RunRequest(
        as_of=AS_OF,
        run_timestamp=NIGHTLY,
        raw_orders=Location(path=str(raw_orders)),
        raw_customers=Location(path=str(raw_customers)),
        output=Location(path=str(output)),
    )


def test_a_missing_raw_table_is_an_input_error_naming_it(spark, config, tmp_path):
    with pytest.raises(ContractError, match=r"raw_orders: no table at .*nowhere"):
        pipeline.run(spark, config, request(tmp_path / "nowhere", tmp_path / "nowhere2", tmp_path / "out"))


def test_parquet_raw_tables_are_accepted(spark, config, lakehouse):
    for name in ("raw_orders", "raw_customers"):
        lakehouse.raw(name).write.parquet(str(lakehouse.root / f"{name}_parquet"))
    parquet = request(lakehouse.root / "raw_orders_parquet", lakehouse.root / "raw_customers_parquet", lakehouse.out)
    assert pipeline.run(spark, config, parquet).exit_code == ExitCode.OK
    assert lakehouse.output(tables.MART).count() == 2


def test_catalog_table_names_work_for_inputs_and_outputs(spark, config, make_orders, make_customers, tmp_path):
    # Catalog outputs have no directory to keep the metrics repository in: it is configured.
    config = dataclasses.replace(
        config,
        quality=dataclasses.replace(config.quality, metrics_repository=str(tmp_path / "metrics" / "dq_metrics.json")),
    )
    spark.sql("CREATE DATABASE IF NOT EXISTS growth_test")
    try:
        make_orders(ORDERS).write.format("delta").mode("overwrite").saveAsTable("growth_test.raw_orders")
        make_customers(CUSTOMERS).write.format("delta").mode("overwrite").saveAsTable("growth_test.raw_customers")
        catalog = RunRequest(
            as_of=AS_OF,
            run_timestamp=NIGHTLY,
            raw_orders=Location.parse("growth_test.raw_orders"),
            raw_customers=Location.parse("growth_test.raw_customers"),
            output=Location.parse("growth_test"),
        )
        assert pipeline.run(spark, config, catalog).exit_code == ExitCode.OK
        assert pipeline.run(spark, config, catalog).exit_code == ExitCode.OK  # rerun replaces its snapshot
        assert spark.table(f"growth_test.{tables.MART}").count() == 2
        assert spark.table(f"growth_test.{tables.REPORT}").count() == 2
        assert spark.table(f"growth_test.{tables.DQ_RESULTS}").count() == 24
        assert (tmp_path / "metrics" / "dq_metrics.json").is_file()
    finally:
        spark.sql("DROP DATABASE IF EXISTS growth_test CASCADE")


def test_a_folder_that_is_not_a_table_is_an_input_error_naming_it(spark, config, tmp_path):
    (tmp_path / "not_a_table").mkdir()
    (tmp_path / "not_a_table" / "orders.csv").write_text("order_id,amount\nO1,10.00\n")
    with pytest.raises(ContractError, match=r"raw_orders: .*not_a_table is neither a Delta table nor readable Parquet"):
        pipeline.run(spark, config, request(tmp_path / "not_a_table", tmp_path / "nowhere", tmp_path / "out"))


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (RuntimeError(""), "RuntimeError"),  # no message: the error's type, never an IndexError
        (ValueError(" \n\t "), "ValueError"),
        (OSError("  [PATH_NOT_FOUND] gone\n\tat org.apache.spark.sql.errors"), "[PATH_NOT_FOUND] gone"),
    ],
)
def test_a_fallback_or_error_reason_is_the_first_line_of_the_error_or_its_type(error, reason):
    # What the run logs as the reason for a full rebuild (an unreadable state, unreadable appended files).
    assert sparkutil.first_line(error) == reason
