"""The quality gate: every constraint shown to fail on crafted bad data, and to pass on good data."""

import datetime as dt
from decimal import Decimal

import pytest
from rows import customer, order, ts

from growth_revenue import quality, tables, transforms
from growth_revenue.pipeline import freshness_reference

AS_OF = dt.date(2026, 11, 25)
MART_DDL = "order_id string, customer_id string, revenue decimal(18,2), customer_kind string"
REPORT_DDL = "customer_segment string, revenue decimal(38,2)"


def gate(
    spark,
    mart_rows,
    report_rows=(("smb", Decimal("1.00")),),
    newest_ingested="2026-11-25 06:00:00",
    reference="2026-11-25 07:00:00",
):
    """Results of the gate on hand-made staged frames, keyed by (dataset, plain-words rule)."""
    mart = spark.createDataFrame(list(mart_rows), MART_DDL)
    report = spark.createDataFrame(list(report_rows), REPORT_DDL)
    raw = spark.createDataFrame([(ts(newest_ingested) if newest_ingested else None,)], "_ingested_at timestamp")
    freshness = quality.freshness_summary(raw, ts(reference), max_age_hours=24)
    checks = quality.gate_checks(mart, report, freshness)
    results = quality.verify(spark, checks, engine="spark")
    if quality.deequ_available(spark):  # every case also proves the two engines give the same rows
        assert [_row(r) for r in quality.verify(spark, checks, engine="deequ")] == [_row(r) for r in results]
    return {(r.check.dataset, r.rule.says): r for r in results}


def _row(result):
    return (
        result.check.dataset,
        result.check.name,
        result.check.level,
        result.rule.deequ_name,
        result.status,
        result.metric_value,
        result.message,
    )


GOOD_MART = [("O1", "C1", Decimal("10.00"), "real"), ("O2", None, Decimal("0.00"), "real")]


def failures(results):
    return {key for key, r in results.items() if r.status == quality.FAILURE}


def test_good_staged_data_passes_every_constraint(spark):
    results = gate(spark, GOOD_MART)
    assert failures(results) == set()
    assert not any(r.blocks_publishing for r in results.values())


def test_negative_mart_revenue_fails_the_gate(spark):
    results = gate(spark, GOOD_MART + [("O3", "C1", Decimal("-5.00"), "real")])
    assert failures(results) == {(tables.MART, "revenue is never negative")}
    result = results[(tables.MART, "revenue is never negative")]
    assert result.blocks_publishing
    assert result.metric_value == pytest.approx(2 / 3)
    assert "1 of 3 rows have revenue < 0" in result.message


def test_null_mart_revenue_fails_the_gate(spark):
    results = gate(spark, GOOD_MART + [("O3", "C1", None, "real")])
    assert failures(results) == {(tables.MART, "revenue is never null")}


def test_duplicate_order_id_fails_the_gate(spark):
    results = gate(spark, GOOD_MART + [("O1", "C1", Decimal("10.00"), "real")])
    assert failures(results) == {(tables.MART, "order_id is unique")}
    assert "uniqueness 0.333333" in results[(tables.MART, "order_id is unique")].message  # O2 of O1, O2, O1


def test_test_user_order_in_the_mart_fails_the_gate(spark):
    results = gate(spark, GOOD_MART + [("O3", "T1", Decimal("10.00"), "test")])
    assert failures(results) == {(tables.MART, "no order of a test user")}


def test_test_user_flag_is_looked_up_independently_of_the_mart_filter(spark, make_orders, make_customers):
    """A test user's order injected past the mart's filter is caught by the gate's own lookup."""
    customers = make_customers([customer("T1", email="qa@example.com"), customer("C1", email="a@shop.io")])
    profiles = transforms.customer_profiles(customers, ["example.com"], "unknown")
    leaked = transforms.mart_orders(
        transforms.classify_orders(
            make_orders([order("O1", "C1"), order("O2", "T1")]),
            profiles,
            ["completed"],
            "unknown",
            (ts("2000-01-01 00:00:00"), ts("2030-01-01 00:00:00")),
        ).withColumn("is_test_customer", transforms.F.lit(False)),
        "UTC",
    )
    kinds = {r["order_id"]: r["customer_kind"] for r in transforms.with_test_customer_flag(leaked, profiles).collect()}
    assert kinds == {"O1": "real", "O2": "test"}


def test_negative_report_revenue_fails_the_gate(spark):
    results = gate(spark, GOOD_MART, report_rows=[("smb", Decimal("-1.00"))])
    assert failures(results) == {(tables.REPORT, "segment revenue is never negative")}


def test_stale_raw_orders_fail_the_freshness_rule(spark):
    results = gate(spark, GOOD_MART, newest_ingested="2026-11-24 06:59:59", reference="2026-11-25 07:00:00")
    assert failures(results) == {(tables.RAW_ORDERS, "newest _ingested_at is within the freshness bound")}


def test_data_exactly_at_the_freshness_bound_passes(spark):
    results = gate(spark, GOOD_MART, newest_ingested="2026-11-24 07:00:00", reference="2026-11-25 07:00:00")
    assert failures(results) == set()


def test_empty_raw_orders_fail_the_freshness_rule(spark):
    results = gate(spark, GOOD_MART, newest_ingested=None)
    assert (tables.RAW_ORDERS, "raw_orders has rows") in failures(results)


def test_empty_report_is_a_warning_that_does_not_block(spark):
    results = gate(spark, GOOD_MART, report_rows=[])
    warning = results[(tables.REPORT, "at least one active segment in the window")]
    assert warning.status == quality.FAILURE and warning.check.level is quality.Level.WARNING
    assert not any(r.blocks_publishing for r in results.values())


def test_empty_mart_passes_its_row_rules_vacuously(spark):
    results = gate(spark, [], report_rows=[])
    assert results[(tables.MART, "revenue is never negative")].status == quality.SUCCESS


def test_freshness_reference_is_the_run_time_for_a_nightly_run():
    run = ts("2026-11-25 07:00:00")
    assert freshness_reference(AS_OF, run, "UTC") == run


def test_freshness_reference_is_the_end_of_the_as_of_day_for_a_backfill():
    run = ts("2026-11-25 07:00:00")
    assert freshness_reference(dt.date(2026, 11, 1), run, "UTC") == ts("2026-11-02 00:00:00")
    assert freshness_reference(dt.date(2026, 11, 1), run, "America/New_York") == ts(
        "2026-11-02 05:00:00"
    )  # EST: DST ended on Nov 1


# (kind, column, allowed, metric over 3 rows, constraint recorded in dq_check_results, failure message)
KIND_CASES = [
    ("non_negative", "revenue", (), 2 / 3, "isNonNegative(revenue)", "1 of 3 rows have revenue < 0 (metric 0.666667)"),
    ("positive", "n", (), 0.0, "isPositive(n)", "3 of 3 rows have n <= 0 (metric 0)"),
    ("complete", "revenue", (), 1 / 3, "isComplete(revenue)", "2 of 3 rows have revenue is null (metric 0.333333)"),
    (
        "unique",
        "order_id",
        (),
        1 / 3,
        "isUnique(order_id)",
        "order_id is not unique (uniqueness 0.333333: values occurring once per non-null row, over 3 rows)",
    ),
    (
        "contained_in",
        "kind",
        ("real", "demo"),
        2 / 3,
        "isContainedIn(kind, [real, demo])",
        "1 of 3 rows have kind not in [real, demo] (metric 0.666667)",
    ),
]


@pytest.mark.parametrize(
    ("kind", "column", "allowed", "metric", "constraint", "message"), KIND_CASES, ids=[c[0] for c in KIND_CASES]
)
def test_each_constraint_kind_is_recorded_and_explained_in_its_own_words(
    kind, column, allowed, metric, constraint, message
):
    rule = quality.Rule(kind, column, "in plain words", allowed)
    assert rule.deequ_name == constraint
    assert rule.failure(metric, rows=3) == message


# (quality.engine, Deequ jar on the classpath, the engine that runs or the error raised)
ENGINE_CHOICES = [
    ("auto", True, "deequ"),
    ("auto", False, "spark"),
    ("deequ", True, "deequ"),
    ("deequ", False, RuntimeError),
    ("spark", True, "spark"),
    ("spark", False, "spark"),
]


@pytest.mark.parametrize(("configured", "deequ_on_classpath", "expected"), ENGINE_CHOICES)
def test_auto_engine_falls_back_to_spark_without_the_deequ_jar(configured, deequ_on_classpath, expected):
    if expected is RuntimeError:
        with pytest.raises(RuntimeError, match="Deequ jar is not on the classpath"):
            quality.engine_for(configured, deequ_on_classpath)
    else:
        assert quality.engine_for(configured, deequ_on_classpath) == expected


def test_results_frame_has_one_row_per_constraint(spark):
    results = list(gate(spark, GOOD_MART).values())
    frame = quality.results_frame(spark, results, "run-1", AS_OF)
    assert frame.columns == [
        "run_id",
        "as_of_date",
        "dataset",
        "check",
        "level",
        "constraint",
        "status",
        "message",
        "metric_value",
    ]
    assert frame.count() == len(results) == 8
    assert {r["constraint"] for r in frame.collect()} >= {
        "isNonNegative(revenue)",
        "isUnique(order_id)",
        "isContainedIn(customer_kind, [real])",
    }


def test_results_frame_is_built_in_the_jvm_so_executors_need_no_python(spark):
    results = list(gate(spark, GOOD_MART).values())
    frame = quality.results_frame(spark, results, "run-1", AS_OF)
    plan = frame._jdf.queryExecution().executedPlan().toString()
    assert "Range" in plan and "ExistingRDD" not in plan  # a Python-fed RDD would show as ExistingRDD
    row = frame.where("constraint = 'isUnique(order_id)'").first()
    assert (row["run_id"], row["as_of_date"], row["status"], row["metric_value"]) == ("run-1", AS_OF, "Success", 1.0)
