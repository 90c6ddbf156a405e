"""The quality gate: the checks that guard publishing, the engine that verifies them, their record.

This is the gate's public face; what a constraint is lives in checks.py (`KINDS`, one entry per
constraint kind), read by the two engines, which give the same rows:

- `deequ` (deequ_engine.py): PyDeequ's VerificationSuite, wherever the Deequ jar is on the classpath;
- `spark` (spark_engine.py): the same Deequ metric definitions computed with plain Spark
  aggregations, for where Deequ cannot run (a Spark line whose Deequ build is not served,
  Databricks serverless).

Anomaly checks compare this run's metrics with the previous published run's in the metrics
repository (metrics.py): through Deequ's RelativeRateOfChangeStrategy with the deequ engine, by
the same rule on the driver with the spark engine. They are Warning-level.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from pyspark import inheritable_thread_target
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from growth_revenue import deequ_engine, spark_engine, sparkutil, tables
from growth_revenue.checks import (
    FAILURE,
    SUCCESS,
    AnomalyRule,
    Check,
    Level,
    QuarantineRule,
    Result,
    Rule,
    rate_bounds,
)
from growth_revenue.metrics import MART_ROWS, REPORT_REVENUE, RunMetrics

__all__ = [  # the public face: checks.py's declarations that callers use are re-exported
    "FAILURE",
    "RESULTS_SCHEMA",
    "SUCCESS",
    "WATCHED_METRICS",
    "AnomalyRule",
    "Check",
    "Level",
    "QuarantineRule",
    "Result",
    "Rule",
    "anomaly_results",
    "choose_engine",
    "deequ_absence",
    "deequ_available",
    "engine_for",
    "freshness_summary",
    "gate_checks",
    "is_normal_change",
    "quarantine_results",
    "rate_bounds",
    "relative_change",
    "report_summary",
    "results_frame",
    "verify",
]


# --- what the gate checks ------------------------------------------------------------------


def freshness_summary(raw_orders: DataFrame, reference_time: dt.datetime, max_age_hours: float) -> DataFrame:
    """One row: the newest raw _ingested_at, its age at `reference_time` and the margin left.

    Only rows that had landed by the reference time count: a backfill of a past date is judged
    on what had arrived by the end of that date, not on what landed since.
    """
    reference = F.lit(reference_time).cast(T.TimestampType())
    landed = raw_orders.where(F.col("_ingested_at") <= reference)
    newest = landed.agg(F.max("_ingested_at").alias("newest_ingested_at"))
    age_hours = (F.unix_micros(reference) - F.unix_micros(F.col("newest_ingested_at"))) / 3.6e9
    return newest.select(
        "newest_ingested_at",
        reference.alias("reference_time"),
        age_hours.alias("age_hours"),
        (F.lit(float(max_age_hours)) - age_hours).alias("freshness_margin_hours"),
    )


def report_summary(report: DataFrame) -> DataFrame:
    """One row: how many segments the report has."""
    return report.agg(F.count(F.lit(1)).alias("segment_count"))


def gate_checks(mart_flagged: DataFrame, report: DataFrame, freshness: DataFrame) -> list[Check]:
    """The checks that stand between the staged tables and publishing them.

    `mart_flagged` is the staged mart with customer_kind (transforms.with_test_customer_flag).
    """
    return [
        Check(
            tables.MART,
            "mart integrity",
            Level.ERROR,
            mart_flagged,
            (
                Rule("non_negative", "revenue", "revenue is never negative"),
                Rule("complete", "revenue", "revenue is never null"),
                Rule("unique", "order_id", "order_id is unique"),
                Rule("contained_in", "customer_kind", "no order of a test user", allowed=("real",)),
            ),
        ),
        Check(
            tables.REPORT,
            "report integrity",
            Level.ERROR,
            report,
            (Rule("non_negative", "revenue", "segment revenue is never negative"),),
        ),
        Check(
            tables.RAW_ORDERS,
            "freshness",
            Level.ERROR,
            freshness,
            (
                Rule("complete", "newest_ingested_at", "raw_orders has rows"),
                Rule("non_negative", "freshness_margin_hours", "newest _ingested_at is within the freshness bound"),
            ),
        ),
        Check(
            tables.REPORT,
            "report coverage",
            Level.WARNING,
            report_summary(report),
            (Rule("positive", "segment_count", "at least one active segment in the window"),),
        ),
    ]


# What the anomaly checks watch: (analyzer, column, table, in plain words).
WATCHED_METRICS = (
    (*MART_ROWS, tables.MART, "mart row count"),
    (*REPORT_REVENUE, tables.REPORT, "total 30-day revenue"),
)


def relative_change(previous: float, current: float) -> float:
    if previous == 0:
        return 0.0 if current == 0 else float("inf")
    return current / previous - 1


def is_normal_change(previous: float, current: float, max_change: float) -> bool:
    """Deequ's RelativeRateOfChangeStrategy (order 1), with the JVM's double arithmetic: the ratio
    current / previous lies within the bounds (inclusive); x / 0 is infinite, 0 / 0 is no anomaly."""
    lower, upper = rate_bounds(max_change)
    if previous == 0:
        return current == 0
    ratio = current / previous
    return lower <= ratio <= upper


def anomaly_results(
    current: RunMetrics, previous: RunMetrics | None, max_change: float, deequ_judge=None
) -> list[Result]:
    """Warning-level: each watched metric may move at most `max_change` (relative) since the previous run.

    `previous` is the newest published run before this as-of date; a first run has nothing to compare.
    `deequ_judge(analyzer, column, value, max_decrease, max_increase)`, when given, is Deequ's anomaly
    check against the metrics repository (deequ_engine.newest_point_is_normal), and decides the status.
    """
    results = []
    for analyzer, column, table, what in WATCHED_METRICS:
        rule = AnomalyRule(
            analyzer, column, f"{what} changed by at most {max_change:.0%} since the previous run", max_change
        )
        check = Check(table, "anomaly", Level.WARNING, None, (rule,))
        measured = current.get(analyzer, column)
        if measured is None:
            raise ValueError(f"this run's metrics have no {analyzer}({column or ''}) to watch")
        now = measured.value
        before = previous.get(analyzer, column) if previous is not None else None
        if previous is None or before is None:
            results.append(Result(check, rule, SUCCESS, None, f"{what} {_number(now)}; no earlier run to compare with"))
            continue
        if deequ_judge is not None:
            normal = deequ_judge(analyzer, column, now, *rate_bounds(max_change))
        else:
            normal = is_normal_change(before.value, now, max_change)
        change = relative_change(before.value, now)
        message = (
            f"{what} {_number(now)} vs {_number(before.value)} as of {previous.as_of}: "
            f"{change:+.1%} (bound ±{max_change:.0%})"
        )
        results.append(Result(check, rule, SUCCESS if normal else FAILURE, change, message))
    return results


def quarantine_results(reasons: dict[str, int], published: int, max_share: float) -> list[Result]:
    """Any quarantined revenue order is a Warning; more than `max_share` of them is an Error.

    `reasons` counts the quarantined orders by reason, `published` the orders that reached the mart.
    """
    quarantined = sum(reasons.values())
    share = quarantined / (quarantined + published) if quarantined else 0.0
    detail = ", ".join(f"{count:,} {reason}" for reason, count in sorted(reasons.items()) if count)
    said = f"{quarantined:,} of {quarantined + published:,} revenue orders quarantined ({share:.2%})" + (
        f": {detail}" if detail else ""
    )
    checks = (
        (Level.WARNING, QuarantineRule("no revenue order is quarantined", None), quarantined == 0, float(quarantined)),
        (
            Level.ERROR,
            QuarantineRule(f"at most {max_share * 100:g}% of revenue orders are quarantined", max_share),
            share <= max_share,
            share,
        ),
    )
    return [
        Result(
            Check(tables.QUARANTINE, "quarantine", level, None, (rule,)), rule, SUCCESS if ok else FAILURE, metric, said
        )
        for level, rule, ok, metric in checks
    ]


def _number(value: float) -> str:
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"


# --- engines -------------------------------------------------------------------------------
# Which engine runs, and the dispatch to it. Each engine measures every rule with Deequ's metric
# definitions (checks.py); `_judge` turns the measurements into the same Result rows, so
# dq_check_results cannot tell which engine ran.


def deequ_available(spark: SparkSession) -> bool:
    """Whether the Deequ jar is on the session's classpath (py4j resolves classes through the loader
    that holds spark.jars.packages, which java.lang.Class.forName does not see)."""
    from py4j.java_gateway import JavaClass

    try:
        return isinstance(sparkutil.jvm(spark).com.amazon.deequ.VerificationSuite, JavaClass)
    except Exception:  # noqa: BLE001 - no JVM gateway (e.g. Spark Connect): no Deequ
        return False


def deequ_absence(spark: SparkSession) -> str:
    """Why Deequ is not verifying, for the run's log."""
    from growth_revenue import jars

    line = jars.installed_line()
    if deequ_available(spark):
        return "on the classpath, not chosen (quality.engine: spark)"
    return f"{line.deequ_package} is not on the classpath of this Spark {line.name} session"


def engine_for(configured: str, deequ_on_classpath: bool) -> str:
    """The engine that runs for `quality.engine` (auto | deequ | spark)."""
    if configured == "auto":
        return "deequ" if deequ_on_classpath else "spark"
    if configured == "deequ" and not deequ_on_classpath:
        raise RuntimeError(
            "quality.engine is 'deequ' but the Deequ jar is not on the classpath (set-up records whether "
            "it resolved in <spark.ivy_dir>/<line>/resolved.json; on a cluster, install it as a library)"
        )
    return configured


def choose_engine(spark: SparkSession, configured: str) -> str:
    # `spark` needs no look at the classpath (nor a JVM gateway to look with).
    return engine_for(configured, configured != "spark" and deequ_available(spark))


def verify(spark: SparkSession, checks: list[Check], engine: str) -> list[Result]:
    """One Result per rule of every check, in the checks' order, whichever engine measures them.

    The checks are measured side by side, one thread each: they are independent, and each is a few
    Spark jobs over small frames whose time is mostly the driver's planning and scheduling, which
    the scheduler then overlaps (the bench's verification share). Each thread inherits the caller's
    local properties, so its jobs keep the caller's job group (the run's stage, growth_revenue.stages).
    """

    def measured(check: Check) -> list[Result]:
        data, rules = _measured(check)
        if engine == "deequ":
            rows, measures = deequ_engine.verify(
                spark, data, check.level is Level.ERROR, f"{check.dataset} {check.name}", rules
            )
            verdicts = [(m.passed, m.metric) for m in measures]
        else:
            rows, verdicts = spark_engine.measure(data, rules)
        return _judge(check, rules, rows, verdicts)

    with ThreadPoolExecutor(max_workers=max(1, len(checks)), thread_name_prefix="verify") as pool:
        per_check = list(pool.map(inheritable_thread_target(measured), checks))
    return [result for results in per_check for result in results]


def _measured(check: Check) -> tuple[DataFrame, tuple[Rule, ...]]:
    """What an engine measures of a gate check: its rows, and its rules, every one a `Rule`."""
    rules = tuple(rule for rule in check.rules if isinstance(rule, Rule))
    if check.data is None or len(rules) != len(check.rules):
        raise TypeError(f"{check.dataset} {check.name}: an engine verifies only Rules over rows; this check is not one")
    return check.data, rules


def _judge(check: Check, rules: tuple[Rule, ...], rows: int, verdicts: list[tuple[bool, float | None]]) -> list[Result]:
    if rows == 0:
        # Deequ fails every metric on empty data; for a gate, "no row breaks the rule" holds.
        return [Result(check, rule, SUCCESS, None, "no rows to check") for rule in rules]
    return [
        Result(check, rule, SUCCESS if passed else FAILURE, metric, _describe(rule, passed, metric, rows))
        for rule, (passed, metric) in zip(rules, verdicts, strict=True)
    ]


def _describe(rule: Rule, passed: bool, metric: float | None, rows: int) -> str:
    if passed:
        return f"all {rows:,} rows comply"
    if metric is None:
        return f"{rule.column} is null in all {rows:,} rows"
    return rule.failure(metric, rows)


# --- recording -----------------------------------------------------------------------------

RESULTS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("as_of_date", T.DateType(), False),
        T.StructField("dataset", T.StringType(), False),
        T.StructField("check", T.StringType(), False),
        T.StructField("level", T.StringType(), False),
        T.StructField("constraint", T.StringType(), False),
        T.StructField("status", T.StringType(), False),
        T.StructField("message", T.StringType(), True),
        T.StructField("metric_value", T.DoubleType(), True),
    ]
)


def results_frame(spark: SparkSession, results: list[Result], run_id: str, as_of: dt.date) -> DataFrame:
    """The rows appended to dq_check_results for one run."""
    rows = [
        (
            run_id,
            as_of,
            r.check.dataset,
            r.check.name,
            r.check.level.value,
            r.rule.deequ_name,
            r.status,
            r.message,
            r.metric_value,
        )
        for r in results
    ]
    # Literal rows built in the JVM: spark.createDataFrame(list) would make an executor start a
    # Python worker, so a cluster's workers would need the driver's interpreter for 10 rows.
    literal_rows = [
        F.struct(
            *[
                F.lit(value).cast(field.dataType).alias(field.name)
                for value, field in zip(row, RESULTS_SCHEMA.fields, strict=True)
            ]
        )
        for row in rows
    ]
    if not literal_rows:
        return spark.createDataFrame([], RESULTS_SCHEMA)
    return spark.range(1).select(F.inline(F.array(*literal_rows)))
