"""One run of the nightly job, end to end: extract, stage, verify, publish.

`_run` is the flow of a run in one function, cut into the stages `run` reports the cost of
(growth_revenue.stages). transforms is pure; the reading and writing is in what `_run` calls:
reading reads the raw tables; planning decides full or incremental and computes the customer
profiles; staging reads the published outputs and computes the mart change in memory, caching in
the run's CacheScope (growth_revenue.caching); `_verify` runs the quality checks against the
metrics repository; publishing does every Delta write; and this run's metrics are saved to the
repository here, once the run is published.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import time
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from growth_revenue import (
    mart_state,
    metrics,
    planning,
    publishing,
    quality,
    reading,
    sparkutil,
    stages,
    staging,
    tables,
    transforms,
)
from growth_revenue.caching import CacheScope
from growth_revenue.config import Config
from growth_revenue.exit_codes import ExitCode
from growth_revenue.launch import ADAPTIVE_EXECUTION
from growth_revenue.locations import Location
from growth_revenue.planning import CustomerProfiles
from growth_revenue.staging import StagedMart

log = logging.getLogger("growth_revenue")


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    as_of: dt.date
    run_timestamp: dt.datetime  # timezone-aware
    raw_orders: Location
    raw_customers: Location
    output: Location  # directory or schema holding the output tables
    full_refresh: bool = False  # rebuild the mart from scratch instead of applying what changed


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    exit_code: ExitCode
    run_id: str
    results: list[quality.Result]
    report_rows: list[dict]
    mode: str  # how the mart was staged: full rebuild or incremental
    verify_seconds: float  # wall time of the quality verification
    stages: tuple[stages.StageCost, ...] = ()  # what each stage of the run cost


def new_run_id(as_of: dt.date, run_timestamp: dt.datetime) -> str:
    stamp = run_timestamp.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{as_of:%Y%m%d}-{stamp}-{uuid.uuid4().hex[:8]}"


def freshness_reference(as_of: dt.date, run_timestamp: dt.datetime, reporting_timezone: str) -> dt.datetime:
    """min(run time, start of the day after as-of): a backfill is judged as of its own date."""
    day_after = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(0), ZoneInfo(reporting_timezone))
    return min(run_timestamp, day_after).astimezone(dt.timezone.utc)


def run(spark: SparkSession, config: Config, request: RunRequest) -> RunOutcome:
    rules = config.rules
    run_id = new_run_id(request.as_of, request.run_timestamp)
    window_start, window_end = transforms.report_window(request.as_of, rules.report_window_days)
    log.info(
        "run %s: as-of %s, window %s..%s (%s), run time %s",
        run_id,
        request.as_of,
        window_start,
        window_end,
        rules.reporting_timezone,
        request.run_timestamp.isoformat(),
    )

    # Each stage's cost is logged when the run ends, published or not (growth_revenue.stages).
    with stages.Stages(spark, run_id, config.observability.stage_metrics_dir) as timed:
        outcome = _run(spark, config, request, run_id, timed)
    return dataclasses.replace(outcome, stages=timed.costs)


def _run(spark: SparkSession, config: Config, request: RunRequest, run_id: str, timed: stages.Stages) -> RunOutcome:
    rules = config.rules
    # Extract: the raw tables, and whether the mart is rebuilt or changed
    timed.start("read and decide")
    orders_version = reading.raw_version(spark, request.raw_orders)
    raw_orders = reading.read_raw(spark, request.raw_orders, tables.RAW_ORDERS, orders_version)
    customers_version = reading.raw_version(spark, request.raw_customers)
    raw_customers = reading.read_raw(spark, request.raw_customers, tables.RAW_CUSTOMERS, customers_version)
    log.info(
        "read %s from %s%s and %s from %s",
        tables.RAW_ORDERS,
        request.raw_orders,
        f" (version {orders_version})" if orders_version is not None else "",
        tables.RAW_CUSTOMERS,
        request.raw_customers,
    )
    decision, previous_profiles = planning.decide(spark, config, request, orders_version)
    log.info("mart: %s run (%s)", decision.mode, decision.reason)

    # Every frame the run caches lives in this scope: released when the run ends, published or not.
    with CacheScope() as caches:
        # Stage: rules 1-6, in memory (nothing is written yet). A full run stages every order; an
        # incremental run only the orders whose mart row may have changed.
        with _adaptive_execution(spark, config, decision.mode):
            timed.start("customer profiles")
            profiles = planning.customer_profiles(
                spark, config, request, raw_customers, customers_version, decision, previous_profiles, caches
            )
            reference = freshness_reference(request.as_of, request.run_timestamp, rules.reporting_timezone)
            bounds = transforms.plausible_order_ts(
                request.run_timestamp, rules.max_future_skew_hours, rules.earliest_order_date, rules.reporting_timezone
            )
            timed.start("stage mart")
            if decision.mode == mart_state.INCREMENTAL:
                if decision.state is None:
                    raise ValueError("an incremental run has no state of the mart's last run to continue from")
                staged = staging.stage_change(
                    spark, config, request, raw_orders, profiles, decision.state, reference, bounds, caches
                )
            else:
                staged = staging.stage_rebuild(config, raw_orders, profiles.current, bounds, caches)
            computed_at = dt.datetime.now(dt.timezone.utc)
            report = caches.persist(
                transforms.revenue_by_segment(
                    staged.after, request.as_of, rules.report_window_days, computed_at, run_id
                )
            )

            # Verify: nothing is published unless every Error-level constraint holds.
            timed.start("verify")
            verified = _verify(spark, config, request, run_id, staged, profiles, report, reference)
        publisher = publishing.Publisher(spark, config, request.output, run_id)
        if verified.failed:
            timed.start("publish dq results")
            publisher.append(verified.dq_rows, tables.DQ_RESULTS)
            log.error(
                "quality gate failed (%d Error constraint(s)): nothing published; %s, %s and %s left as they were",
                verified.failed,
                tables.MART,
                tables.QUARANTINE,
                tables.REPORT,
            )
            return RunOutcome(
                exit_code=ExitCode.QUALITY_GATE,
                run_id=run_id,
                results=verified.results,
                report_rows=[],
                mode=staged.mode,
                verify_seconds=verified.seconds,
            )

        # Publish: every write, in the order publishing.publish explains
        report_rows = publishing.publish(
            publisher,
            timed,
            caches,
            as_of=request.as_of,
            decision=decision,
            profiles=profiles,
            staged=staged,
            report=report,
            quarantine=transforms.with_run_columns(staged.quarantine, request.as_of, run_id),
            dq_rows=verified.dq_rows,
            rule_inputs=planning.rule_inputs(config, request),
            orders_version=orders_version,
            customers_version=customers_version,
            bounds=bounds,
        )
        _keep_as_baseline(verified, request.as_of)
        return RunOutcome(
            exit_code=ExitCode.OK,
            run_id=run_id,
            results=verified.results,
            report_rows=[row.asDict() for row in report_rows],
            mode=staged.mode,
            verify_seconds=verified.seconds,
        )


def _adaptive_execution(spark: SparkSession, config: Config, mode: str) -> contextlib.AbstractContextManager:
    """Adaptive execution off while an incremental run stages and verifies, unless the config keeps it.

    Its change is thousands of rows in about a hundred small queries: adaptive execution would run
    each query stage as a Spark job of its own and re-plan between them, which costs more than its
    run-time choices save there. A full rebuild's large shuffles keep it, and so does every write
    (publishing runs after this scope; the MERGE spreads its new rows with it).
    """
    if mode == mart_state.INCREMENTAL and not config.incremental.adaptive_execution:
        return sparkutil.session_conf(spark, {ADAPTIVE_EXECUTION: "false"})
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Verification:
    """What the quality gate and the anomaly checks found about a staged run."""

    results: list[quality.Result]
    seconds: float  # wall time of the quality verification
    dq_rows: DataFrame  # the results as dq_check_results rows: recorded, pass or fail
    run_metrics: metrics.RunMetrics  # this run's metrics: the next run's baseline once published
    repository: metrics.MetricsRepository | None  # where the baselines are kept; None: no anomaly checks

    @property
    def failed(self) -> int:
        """How many Error-level constraints failed: any one of them blocks publishing."""
        return sum(r.blocks_publishing for r in self.results)


def _verify(
    spark: SparkSession,
    config: Config,
    request: RunRequest,
    run_id: str,
    staged: StagedMart,
    profiles: CustomerProfiles,
    report: DataFrame,
    reference: dt.datetime,
) -> Verification:
    """The quality gate (Error) and the anomaly checks (Warning), each result logged.

    The mart's constraints are verified on the staged rows only: the rows already published passed
    them when they were staged, and the MERGE's key keeps order_id unique across both.
    """
    freshness = quality.freshness_summary(staged.freshness_input, reference, config.quality.freshness_max_age_hours)
    staged_rows = transforms.with_test_customer_flag(staged.rows, profiles.current)
    checks = quality.gate_checks(staged_rows, report, freshness)
    engine = quality.choose_engine(spark, config.quality.engine)
    log.info(
        "verifying %d constraints with the %s engine%s",
        sum(len(c.rules) for c in checks),
        engine,
        "" if engine == "deequ" else f" (Deequ: {quality.deequ_absence(spark)})",
    )
    verify_started = time.monotonic()
    results = quality.verify(spark, checks, engine)
    verify_seconds = time.monotonic() - verify_started
    log.info("verified in %.1fs", verify_seconds)
    results += quality.quarantine_results(
        staged.quarantined_by_reason, staged.mart_rows, config.quality.quarantine_max_share
    )

    # Anomalies (Warning): this run's metrics against the previous published run's
    repository = _metrics_repository(spark, config, request.output, engine)
    run_metrics = metrics.published_metrics(request.as_of, staged.mart_rows, _total_revenue(report))
    if repository is not None:
        deequ_judge = None
        if engine == "deequ":
            from growth_revenue import deequ_engine

            repository.make_readable_by_deequ()
            deequ_judge = functools.partial(deequ_engine.newest_point_is_normal, spark, repository.path, request.as_of)
        results += quality.anomaly_results(
            run_metrics, repository.previous(request.as_of), config.quality.anomaly_max_relative_change, deequ_judge
        )
    for result in results:
        level = log.error if result.blocks_publishing else log.warning if result.status == quality.FAILURE else log.info
        level("check %s", result.plain())
    dq_rows = quality.results_frame(spark, results, run_id, request.as_of)  # recorded pass or fail
    return Verification(
        results=results, seconds=verify_seconds, dq_rows=dq_rows, run_metrics=run_metrics, repository=repository
    )


def _keep_as_baseline(verified: Verification, as_of: dt.date) -> None:
    """Only published runs become the baseline the next run is compared with."""
    if verified.repository is not None:
        verified.repository.save(verified.run_metrics)
        log.info("saved metrics for %s to %s", as_of, verified.repository.path)


def run_range(spark: SparkSession, config: Config, requests: list[RunRequest]) -> ExitCode:
    """A backfill: one run per as-of date, oldest first; each date's snapshot is replaced, no other.

    A date whose gate fails is recorded and the next date still runs; an input error stops the
    range (it would fail every date). Returns the most serious exit code.
    """
    outcomes: dict[dt.date, ExitCode] = {}
    for request in requests:
        outcomes[request.as_of] = run(spark, config, request).exit_code
    failed = [str(day) for day, code in outcomes.items() if code != ExitCode.OK]
    log.info(
        "backfill %s..%s: %d published, %d quality gate failed%s",
        requests[0].as_of,
        requests[-1].as_of,
        len(outcomes) - len(failed),
        len(failed),
        f" ({', '.join(failed)})" if failed else "",
    )
    return ExitCode.QUALITY_GATE if failed else ExitCode.OK


def _metrics_repository(
    spark: SparkSession, config: Config, output: Location, engine: str
) -> metrics.MetricsRepository | None:
    path = config.quality.metrics_repository
    if path is None and output.path is not None:
        path = f"{output.path.rstrip('/')}/{tables.METRICS_REPOSITORY}"
    if path is None:
        log.warning("anomaly checks skipped: outputs are catalog tables and quality.metrics_repository is not set")
        return None
    return metrics.MetricsRepository(spark, path, deequ=engine == "deequ")


def _total_revenue(report: DataFrame) -> float:
    total = sparkutil.single_row(report.agg(F.sum("revenue")))[0]
    return float(total or 0)
