"""The quality gate: which constraints guard publishing, and the engines that verify them.

Constraints are declared once, in Deequ's vocabulary and without Python lambdas (a lambda
makes pydeequ start a py4j callback server). Two engines verify them and give the same rows:

- `deequ`: PyDeequ's VerificationSuite, used when the Deequ jar is on the classpath;
- `spark`: the same metrics computed with plain Spark aggregations, used when it is not
  (see README "Quality engines" for why the Deequ jar is opt-in here).

Anomaly checks compare this run's metrics with the previous run's from the metrics repository
(metrics.py) the way Deequ's RelativeRateOfChangeStrategy does; they are Warning-level.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import Enum

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from growth_revenue import tables
from growth_revenue.metrics import MART_ROWS, REPORT_REVENUE, RunMetrics


class Level(str, Enum):
    ERROR = "Error"
    WARNING = "Warning"


SUCCESS, FAILURE = "Success", "Failure"


@dataclass(frozen=True)
class Rule:
    """One constraint: `kind` is a Deequ constraint, `says` is the rule in plain words."""

    kind: str  # non_negative | positive | complete | unique | contained_in
    column: str
    says: str
    allowed: tuple[str, ...] = ()

    @property
    def deequ_name(self) -> str:
        name = {
            "non_negative": "isNonNegative",
            "positive": "isPositive",
            "complete": "isComplete",
            "unique": "isUnique",
            "contained_in": "isContainedIn",
        }[self.kind]
        extra = f", [{', '.join(self.allowed)}]" if self.allowed else ""
        return f"{name}({self.column}{extra})"


@dataclass(frozen=True)
class AnomalyRule:
    """Deequ's RelativeRateOfChangeStrategy on one metric: |current / previous - 1| <= max_change."""

    analyzer: str  # Deequ analyzer of the watched metric: Size, Sum
    column: str | None
    says: str
    max_change: float
    kind = "relative_change"

    @property
    def deequ_name(self) -> str:
        return (f"anomaly({self.analyzer}({self.column or ''}), RelativeRateOfChangeStrategy("
                f"maxRateDecrease={1 - self.max_change:g}, maxRateIncrease={1 + self.max_change:g}))")


@dataclass(frozen=True)
class QuarantineRule:
    """How many revenue orders went to quarantine_orders: none (Warning), at most a share (Error)."""

    says: str
    max_share: float | None  # None: any quarantined order breaks the rule
    column = None
    kind = "quarantine"

    @property
    def deequ_name(self) -> str:
        if self.max_share is None:
            return f"hasSize({tables.QUARANTINE}, _ == 0)"
        return f"ratio(Size({tables.QUARANTINE}), Size(revenue orders)) <= {self.max_share:g}"


@dataclass(frozen=True)
class Check:
    """Rules verified on one DataFrame at one level, recorded against `dataset`."""

    dataset: str
    name: str
    level: Level
    data: DataFrame | None  # None for checks decided on the driver from stored metrics (anomalies)
    rules: tuple[Rule | AnomalyRule | QuarantineRule, ...]


@dataclass(frozen=True)
class Result:
    check: Check
    rule: Rule | AnomalyRule | QuarantineRule
    status: str
    metric_value: float | None
    message: str

    @property
    def blocks_publishing(self) -> bool:
        return self.status == FAILURE and self.check.level is Level.ERROR

    def plain(self) -> str:
        verdict = "ok    " if self.status == SUCCESS else ("FAILED" if self.blocks_publishing else "WARN  ")
        return f"{verdict} [{self.check.level.value}] {self.check.dataset}: {self.rule.says} - {self.message}"


# --- what the gate checks ------------------------------------------------------------------


def freshness_summary(
    raw_orders: DataFrame, reference_time: dt.datetime, max_age_hours: float
) -> DataFrame:
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


def anomaly_results(current: RunMetrics, previous: RunMetrics | None, max_change: float) -> list[Result]:
    """Warning-level: each watched metric may move at most `max_change` (relative) since the previous run.

    `previous` is the newest published run before this as-of date; a first run has nothing to compare.
    """
    results = []
    for analyzer, column, table, what in WATCHED_METRICS:
        rule = AnomalyRule(analyzer, column, f"{what} changed by at most {max_change:.0%} since the previous run",
                           max_change)
        check = Check(table, "anomaly", Level.WARNING, None, (rule,))
        now = current.get(analyzer, column).value
        before = previous.get(analyzer, column) if previous is not None else None
        if before is None:
            results.append(Result(check, rule, SUCCESS, None, f"{what} {_number(now)}; no earlier run to compare with"))
            continue
        change = relative_change(before.value, now)
        status = SUCCESS if abs(change) <= max_change else FAILURE
        message = (f"{what} {_number(now)} vs {_number(before.value)} as of {previous.as_of}: "
                   f"{change:+.1%} (bound ±{max_change:.0%})")
        results.append(Result(check, rule, status, change, message))
    return results


def quarantine_results(reasons: dict[str, int], published: int, max_share: float) -> list[Result]:
    """Any quarantined revenue order is a Warning; more than `max_share` of them is an Error.

    `reasons` counts the quarantined orders by reason, `published` the orders that reached the mart.
    """
    quarantined = sum(reasons.values())
    share = quarantined / (quarantined + published) if quarantined else 0.0
    detail = ", ".join(f"{count:,} {reason}" for reason, count in sorted(reasons.items()) if count)
    said = (f"{quarantined:,} of {quarantined + published:,} revenue orders quarantined ({share:.2%})"
            + (f": {detail}" if detail else ""))
    checks = (
        (Level.WARNING, QuarantineRule("no revenue order is quarantined", None), quarantined == 0, float(quarantined)),
        (Level.ERROR, QuarantineRule(f"at most {max_share * 100:g}% of revenue orders are quarantined", max_share),
         share <= max_share, share),
    )
    return [
        Result(Check(tables.QUARANTINE, "quarantine", level, None, (rule,)), rule, SUCCESS if ok else FAILURE,
               metric, said)
        for level, rule, ok, metric in checks
    ]


def _number(value: float) -> str:
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"


# --- engines -------------------------------------------------------------------------------


def deequ_available(spark: SparkSession) -> bool:
    try:
        spark._jvm.java.lang.Class.forName("com.amazon.deequ.VerificationSuite")
        return True
    except Exception:  # noqa: BLE001 - py4j raises its own error types for a missing class
        return False


def choose_engine(spark: SparkSession, configured: str) -> str:
    if configured == "auto":
        return "deequ" if deequ_available(spark) else "spark"
    if configured == "deequ" and not deequ_available(spark):
        raise RuntimeError(
            "quality.engine is 'deequ' but the Deequ jar is not on the classpath "
            "(set spark.include_deequ_package: true, or install it as a cluster library)"
        )
    return configured


def verify(spark: SparkSession, checks: list[Check], engine: str) -> list[Result]:
    results = []
    for check in checks:
        if engine == "deequ":
            rows = check.data.count()
            if rows == 0:
                results += _vacuous(check)
            else:
                results += _verify_with_deequ(spark, check, rows)
        else:
            results += _verify_with_spark(check)
    return results


def _vacuous(check: Check) -> list[Result]:
    # Deequ fails every metric on empty data; for a gate, "no row breaks the rule" holds.
    return [Result(check, rule, SUCCESS, None, "no rows to check") for rule in check.rules]


_BREAKS = {
    "non_negative": lambda column, rule: column < 0,
    "positive": lambda column, rule: column <= 0,
    "complete": lambda column, rule: column.isNull(),
    # Like Deequ, a null complies with a value rule; completeness is its own rule.
    "contained_in": lambda column, rule: ~column.isin(list(rule.allowed)),
}


def _violation_counts(check: Check) -> tuple[int, dict[Rule, int]]:
    """(rows, rows breaking each rule), in one pass plus one per uniqueness rule."""
    simple = [rule for rule in check.rules if rule.kind in _BREAKS]
    exprs = [F.count(F.when(_BREAKS[r.kind](F.col(r.column), r), 1)).alias(f"r{i}") for i, r in enumerate(simple)]
    row = check.data.agg(F.count(F.lit(1)).alias("rows"), *exprs).first()
    counts = {rule: row[f"r{i}"] for i, rule in enumerate(simple)}
    for rule in (r for r in check.rules if r.kind == "unique"):
        duplicated = check.data.groupBy(rule.column).count().where("count > 1").agg(F.sum("count")).first()[0]
        counts[rule] = duplicated or 0
    return row["rows"], counts


def _describe(rule: Rule, broken: int, rows: int) -> str:
    if broken == 0:
        return f"all {rows:,} rows comply"
    what = {
        "non_negative": f"{rule.column} < 0",
        "positive": f"{rule.column} <= 0",
        "complete": f"{rule.column} is null",
        "unique": f"{rule.column} shared with another row",
        "contained_in": f"{rule.column} not in [{', '.join(rule.allowed)}]",
    }[rule.kind]
    return f"{broken:,} of {rows:,} rows have {what}"


def _verify_with_spark(check: Check) -> list[Result]:
    rows, counts = _violation_counts(check)
    if rows == 0:
        return _vacuous(check)
    results = []
    for rule in check.rules:
        broken = counts[rule]
        compliance = 1.0 - broken / rows
        status = SUCCESS if broken == 0 else FAILURE
        message = _describe(rule, broken, rows) + ("" if broken == 0 else f" (metric {compliance:.6g})")
        results.append(Result(check, rule, status, compliance, message))
    return results


_DEEQU_VALUE = re.compile(r"Value: ([0-9.Ee+-]+)")


def _verify_with_deequ(spark: SparkSession, check: Check, rows: int) -> list[Result]:
    from pydeequ.checks import Check as DeequCheck
    from pydeequ.checks import CheckLevel
    from pydeequ.verification import VerificationResult, VerificationSuite

    level = CheckLevel.Error if check.level is Level.ERROR else CheckLevel.Warning
    deequ_check = DeequCheck(spark, level, f"{check.dataset} {check.name}")
    for rule in check.rules:
        if rule.kind == "contained_in":
            deequ_check = deequ_check.isContainedIn(rule.column, list(rule.allowed))
        else:
            method = {"non_negative": "isNonNegative", "positive": "isPositive",
                      "complete": "isComplete", "unique": "isUnique"}[rule.kind]
            deequ_check = getattr(deequ_check, method)(rule.column)
    outcome = VerificationSuite(spark).onData(check.data).addCheck(deequ_check).run()
    rows_out = VerificationResult.checkResultsAsDataFrame(spark, outcome).collect()
    results = []
    # Deequ reports constraints in the order they were added.
    for rule, row in zip(check.rules, rows_out, strict=True):
        passed = row["constraint_status"] == SUCCESS
        found = _DEEQU_VALUE.search(row["constraint_message"] or "")
        metric = 1.0 if passed else (float(found.group(1)) if found else None)
        broken = 0 if passed or metric is None else round((1.0 - metric) * rows)
        message = _describe(rule, broken, rows) if metric is not None else row["constraint_message"]
        if not passed:
            message += f" (Deequ: {row['constraint_message']})"
        results.append(Result(check, rule, SUCCESS if passed else FAILURE, metric, message))
    return results


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
        (run_id, as_of, r.check.dataset, r.check.name, r.check.level.value, r.rule.deequ_name,
         r.status, r.message, r.metric_value)
        for r in results
    ]
    # Literal rows built in the JVM: spark.createDataFrame(list) would make an executor start a
    # Python worker, so a cluster's workers would need the driver's interpreter for 10 rows.
    literal_rows = [
        F.struct(*[F.lit(value).cast(field.dataType).alias(field.name) for value, field in zip(row, RESULTS_SCHEMA.fields)])
        for row in rows
    ]
    if not literal_rows:
        return spark.createDataFrame([], RESULTS_SCHEMA)
    return spark.range(1).select(F.inline(F.array(*literal_rows)))
