"""The Deequ engine: the gate's constraints through PyDeequ's VerificationSuite, the anomaly checks
through Deequ's RelativeRateOfChangeStrategy against its own FileSystemMetricsRepository.

Each rule becomes the Deequ Check method its kind declares (checks.KINDS). Lambda-free throughout:
a Python assertion would make py4j start a callback server that keeps the process alive. PyDeequ's
methods on a column alone pass Deequ's own default assertion (`Check.IsOne`, from the JVM), so they
are called through PyDeequ. A method that also takes the rule's values (`isContainedIn`) goes to
Deequ's Scala overload `(column, values)`, whose default is `Check.IsOne` too: PyDeequ's own always
passes a Python lambda (its default `is_one`).

The watched metrics (the mart's row count, the report's total revenue) reach Deequ as analyzer
states (`NumMatches`, `SumState`): the run has already counted them, and Deequ's
`runOnAggregatedStates` turns states into metrics without scanning the mart. It is Deequ's
mechanism for incremental metrics; the alternative, `Size()` over the mart, would read every
row of it each night.

Only pydeequ and the JVM are touched here; the constraint declarations live in checks.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from growth_revenue import sparkutil
from growth_revenue.checks import Rule
from growth_revenue.metrics import RESULT_TAGS, date_key


@dataclass(frozen=True)
class Measured:
    """Deequ's verdict on one constraint: its status and the metric it was judged on."""

    passed: bool
    metric: float | None  # None when Deequ could not compute it (e.g. only nulls to check)


def verify(
    spark: SparkSession, data: DataFrame, level_is_error: bool, description: str, rules: tuple[Rule, ...]
) -> tuple[int, list[Measured]]:
    """(rows, one verdict per rule in order) from one VerificationSuite run over `data`."""
    from pydeequ.checks import Check, CheckLevel
    from pydeequ.verification import VerificationSuite

    jvm, gateway = sparkutil.jvm(spark), spark.sparkContext._gateway
    if gateway is None:
        raise RuntimeError("the SparkContext has no py4j gateway: it was stopped")
    check = Check(spark, CheckLevel.Error if level_is_error else CheckLevel.Warning, description)
    for rule in rules:
        method = rule.constraint.deequ_method
        if rule.constraint.takes_values:
            values = gateway.new_array(jvm.java.lang.String, len(rule.allowed))
            for i, value in enumerate(rule.allowed):
                values[i] = value
            check._Check = getattr(check._Check, method)(rule.column, values)
        else:
            getattr(check, method)(rule.column)
    size = jvm.com.amazon.deequ.analyzers.Size(jvm.scala.Option.apply(None))
    builder = VerificationSuite(spark).onData(data).addCheck(check)
    builder._VerificationRunBuilder.addRequiredAnalyzer(size)  # the row count, in the same scan
    outcome = builder.run().verificationRun
    rows = _metric_value(outcome.metrics().get(size))
    [check_result] = list(jvm.scala.collection.JavaConverters.seqAsJavaList(outcome.checkResults().values().toSeq()))
    constraints = jvm.scala.collection.JavaConverters.seqAsJavaList(check_result.constraintResults())
    # Deequ reports constraints in the order they were added.
    verdicts = [Measured(c.status().toString() == "Success", _metric_value(c.metric())) for c in constraints]
    if len(verdicts) != len(rules):
        raise RuntimeError(f"Deequ returned {len(verdicts)} constraint results for {len(rules)} constraints")
    return int(rows or 0), verdicts


def newest_point_is_normal(
    spark: SparkSession,
    repository_path: str,
    as_of: dt.date,
    analyzer: str,
    column: str | None,
    value: float,
    max_decrease: float,
    max_increase: float,
) -> bool:
    """Deequ's anomaly check of `value` against the repository's entries dated before `as_of`.

    The caller makes sure at least one such entry exists (Deequ refuses to judge a first point).
    """
    jvm = sparkutil.jvm(spark)
    deequ = jvm.com.amazon.deequ
    none = jvm.scala.Option.apply(None)
    repository = deequ.repository.fs.FileSystemMetricsRepository(spark._jsparkSession, repository_path)
    jvm_analyzer, state = _analyzer_and_state(jvm, analyzer, column, value)
    strategy = deequ.anomalydetection.RelativeRateOfChangeStrategy(
        jvm.scala.Option.apply(float(max_decrease)), jvm.scala.Option.apply(float(max_increase)), 1
    )
    check = deequ.checks.Check(
        deequ.checks.CheckLevel.Warning(),
        f"anomaly of {analyzer}({column or ''})",
        getattr(deequ.checks.Check, "apply$default$3")(),
    )
    # Only entries before this as-of date: a backfill is compared with the date before it, and a
    # rerun never with its own earlier entry.
    before = jvm.scala.Option.apply(date_key(as_of) - 1)
    check = check.isNewestPointNonAnomalous(repository, strategy, jvm_analyzer, _tags(spark), none, before, none)
    outcome = _run_on_states(spark, [check], [(jvm_analyzer, state)])
    [check_result] = list(jvm.scala.collection.JavaConverters.seqAsJavaList(outcome.checkResults().values().toSeq()))
    return check_result.status().toString() == "Success"


def save(
    spark: SparkSession, repository_path: str, as_of: dt.date, metrics: list[tuple[str, str | None, float]]
) -> None:
    """Deequ's own repository adds (or, for a rerun, replaces) the as-of date's entry in the file."""
    jvm = sparkutil.jvm(spark)
    deequ = jvm.com.amazon.deequ
    repository = deequ.repository.fs.FileSystemMetricsRepository(spark._jsparkSession, repository_path)
    key = deequ.repository.ResultKey(date_key(as_of), _tags(spark))
    outcome = _run_on_states(spark, [], [_analyzer_and_state(jvm, *metric) for metric in metrics])
    repository.save(key, deequ.analyzers.runners.AnalyzerContext(outcome.metrics()))


def _run_on_states(spark: SparkSession, checks: list, analyzers_and_states: list):
    """Deequ's VerificationSuite over analyzer states alone: no data is read."""
    jvm = sparkutil.jvm(spark)
    deequ = jvm.com.amazon.deequ
    none = jvm.scala.Option.apply(None)
    provider = deequ.analyzers.InMemoryStateProvider()
    analysis = deequ.analyzers.Analysis(_seq(jvm, []))
    for analyzer, state in analyzers_and_states:
        provider.persist(analyzer, state)
        # An analyzer a check already asks for is not listed again: Deequ would merge its state
        # once per request (a row count of 610 became 1220).
        if not checks:
            analysis = analysis.addAnalyzer(analyzer)
    # The schema only has to offer the summed column; no rows are read.
    schema = spark._jsparkSession.parseDataType(T.StructType([T.StructField("revenue", T.DoubleType())]).json())
    return deequ.VerificationSuite().runOnAggregatedStates(
        schema, _seq(jvm, checks), _seq(jvm, [provider]), analysis, none, none, none
    )


def _analyzer_and_state(jvm, analyzer: str, column: str | None, value: float):
    analyzers = jvm.com.amazon.deequ.analyzers
    none = jvm.scala.Option.apply(None)
    if analyzer == "Size":
        return analyzers.Size(none), analyzers.NumMatches(int(value))
    if analyzer == "Sum":
        return analyzers.Sum(column, none), analyzers.SumState(float(value))
    raise ValueError(f"no Deequ state for analyzer {analyzer}")


def _metric_value(option) -> float | None:
    """A Scala Option[Metric[Double]]'s value, None when absent or failed."""
    if option.isEmpty():
        return None
    value = option.get().value()
    return float(value.get()) if value.isSuccess() else None


def _tags(spark: SparkSession):
    return sparkutil.jvm(spark).PythonUtils.toScalaMap(RESULT_TAGS)


def _seq(jvm, items: list):
    return jvm.scala.collection.JavaConverters.iterableAsScalaIterable(items).toList()
