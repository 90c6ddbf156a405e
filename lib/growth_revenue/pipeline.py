"""One run of the nightly job, end to end: read, apply the rules, verify, publish.

`run` is the flow of a run in one function; everything it calls is either a pure transform
(transforms, quality) or an edge (io).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from growth_revenue import io, metrics, quality, tables, transforms
from growth_revenue.config import Config
from growth_revenue.io import Location

log = logging.getLogger("growth_revenue")

EXIT_OK, EXIT_INPUT_ERROR, EXIT_USAGE, EXIT_QUALITY_GATE, EXIT_CONFLICT = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class RunRequest:
    as_of: dt.date
    run_timestamp: dt.datetime  # timezone-aware
    raw_orders: Location
    raw_customers: Location
    output: Location  # directory or schema holding the output tables


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int
    run_id: str
    results: list[quality.Result]
    report_rows: list[dict]


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
    log.info("run %s: as-of %s, window %s..%s (%s), run time %s", run_id, request.as_of,
             window_start, window_end, rules.reporting_timezone, request.run_timestamp.isoformat())

    # Extract
    raw_orders = io.read_raw(spark, request.raw_orders, tables.RAW_ORDERS)
    raw_customers = io.read_raw(spark, request.raw_customers, tables.RAW_CUSTOMERS)
    log.info("read %s from %s and %s from %s", tables.RAW_ORDERS, request.raw_orders,
             tables.RAW_CUSTOMERS, request.raw_customers)

    # Transform: rules 1-6, staged in memory (nothing is written yet)
    profiles = transforms.customer_profiles(raw_customers, rules.test_email_domains, rules.unknown_segment).persist()
    classified = transforms.classify_orders(raw_orders, profiles, rules.revenue_statuses, rules.unknown_segment)
    # The rule counts are observed while the staged mart is materialised: no extra pass over the data.
    rule_effects = Observation("rule_effects")
    classified = classified.observe(rule_effects, *_rule_effect_metrics())
    mart = transforms.mart_orders(classified, rules.reporting_timezone).persist()
    computed_at = dt.datetime.now(dt.timezone.utc)
    report = transforms.revenue_by_segment(mart, request.as_of, rules.report_window_days, computed_at, run_id).persist()
    quarantine = None
    try:
        mart_rows = mart.count()
        quarantined = _log_rule_effects(rule_effects, mart_rows)
        # Without a quarantined row, limit(0) lets Spark skip recomputing the staged orders; with
        # some, they are computed once here rather than again at write time.
        quarantine = transforms.quarantined_orders(classified)
        quarantine = transforms.with_run_columns(quarantine if sum(quarantined.values()) else quarantine.limit(0),
                                                 request.as_of, run_id).persist()

        # Audit: nothing is published unless every Error-level constraint holds
        reference = freshness_reference(request.as_of, request.run_timestamp, rules.reporting_timezone)
        freshness = quality.freshness_summary(raw_orders, reference, config.quality.freshness_max_age_hours)
        checks = quality.gate_checks(transforms.with_test_customer_flag(mart, profiles), report, freshness)
        engine = quality.choose_engine(spark, config.quality.engine)
        log.info("verifying %d constraints with the %s engine", sum(len(c.rules) for c in checks), engine)
        results = quality.verify(spark, checks, engine)
        results += quality.quarantine_results(quarantined, mart_rows, config.quality.quarantine_max_share)

        # Anomalies (Warning): this run's metrics against the previous published run's
        history = _metrics_repository(spark, config, request.output)
        current = metrics.published_metrics(request.as_of, mart_rows, _total_revenue(report))
        if history is not None:
            results += quality.anomaly_results(current, history.previous(request.as_of),
                                               config.quality.anomaly_max_relative_change)
        for result in results:
            level = log.error if result.blocks_publishing else log.warning if result.status == quality.FAILURE else log.info
            level("check %s", result.plain())
        dq_rows = quality.results_frame(spark, results, run_id, request.as_of)  # recorded pass or fail

        publisher = _Publisher(spark, config, request.output, run_id)
        failed = sum(r.blocks_publishing for r in results)
        if failed:
            publisher.append(dq_rows, tables.DQ_RESULTS)
            log.error("quality gate failed (%d Error constraint(s)): nothing published; %s, %s and %s left as "
                      "they were", failed, tables.MART, tables.QUARANTINE, tables.REPORT)
            return RunOutcome(EXIT_QUALITY_GATE, run_id, results, [])

        # Publish: each write is one atomic Delta commit. The order matters for a crash between
        # two of them: the report names the mart version it was computed from, and every write
        # replaces what it writes, so a rerun converges (README "What happens when...").
        mart_version = publisher.overwrite(mart, tables.MART, partition_by=("order_date",))
        publisher.overwrite(quarantine, tables.QUARANTINE)
        publisher.replace_snapshot(transforms.with_mart_version(report, mart_version), tables.REPORT, request.as_of)
        publisher.append(dq_rows, tables.DQ_RESULTS)
        if history is not None:  # only published runs become the baseline the next run is compared with
            history.save(current)
            log.info("saved metrics for %s to %s", request.as_of, history.path)

        report_rows = [row.asDict() for row in report.orderBy(F.desc("revenue"), "customer_segment").collect()]
        return RunOutcome(EXIT_OK, run_id, results, report_rows)
    finally:
        # A long-lived session (notebook, Databricks) must not keep a failed run's caches.
        for frame in (mart, profiles, report, quarantine):
            if frame is not None:
                frame.unpersist()


def run_range(spark: SparkSession, config: Config, requests: list[RunRequest]) -> int:
    """A backfill: one run per as-of date, oldest first; each date's snapshot is replaced, no other.

    A date whose gate fails is recorded and the next date still runs; an input error stops the
    range (it would fail every date). Returns the most serious exit code.
    """
    outcomes: dict[dt.date, int] = {}
    for request in requests:
        outcomes[request.as_of] = run(spark, config, request).exit_code
    failed = [str(day) for day, code in outcomes.items() if code != EXIT_OK]
    log.info("backfill %s..%s: %d published, %d quality gate failed%s", requests[0].as_of, requests[-1].as_of,
             len(outcomes) - len(failed), len(failed), f" ({', '.join(failed)})" if failed else "")
    return EXIT_QUALITY_GATE if failed else EXIT_OK


class _Publisher:
    """Writes one run's outputs: each write tagged with the run id and retried on a Delta conflict."""

    def __init__(self, spark: SparkSession, config: Config, output: Location, run_id: str):
        self._spark, self._output, self._run_id = spark, output, run_id
        self._retries, self._backoff = config.publish.conflict_retries, config.publish.conflict_backoff_seconds

    def overwrite(self, df: DataFrame, table: str, partition_by: tuple[str, ...] = ()) -> int:
        return self._write(table, "", lambda location: io.overwrite(df, location, partition_by, self._run_id))

    def replace_snapshot(self, df: DataFrame, table: str, as_of: dt.date) -> int:
        predicate = f"as_of_date = DATE'{as_of.isoformat()}'"  # from a date object, never from text
        return self._write(table, f"snapshot {as_of}",
                           lambda location: io.replace_where(df, location, predicate, self._run_id))

    def append(self, df: DataFrame, table: str) -> int:
        return self._write(table, "", lambda location: io.append(df, location, self._run_id))

    def _write(self, table: str, detail: str, write) -> int:
        location = self._output.child(table)
        log.info("publishing %s to %s", table, location)
        retries = io.with_conflict_retries(lambda: write(location), location, self._retries, self._backoff)
        version, rows = io.commit_of_run(self._spark, location, self._run_id)
        log.info("wrote %s: Delta version %d, %s rows written%s%s", location, version, rows,
                 f", {detail}" if detail else "", f", after {retries} retried conflict(s)" if retries else "")
        return version


def _metrics_repository(spark: SparkSession, config: Config, output: Location) -> metrics.MetricsRepository | None:
    path = config.quality.metrics_repository
    if path is None and output.path is not None:
        path = f"{output.path.rstrip('/')}/{tables.METRICS_REPOSITORY}"
    if path is None:
        log.warning("anomaly checks skipped: outputs are catalog tables and quality.metrics_repository is not set")
        return None
    return metrics.MetricsRepository(spark, path)


def _total_revenue(report: DataFrame) -> float:
    total = report.agg(F.sum("revenue")).first()[0]
    return float(total or 0)


def _rule_effect_metrics() -> list[Column]:
    revenue = F.col("is_revenue")
    counted = revenue & ~F.col("is_test_customer")
    published = F.col("quarantine_reason").isNull()
    return [
        F.sum("versions").alias("raw_rows"),
        F.count(F.lit(1)).alias("orders"),
        F.count(F.when(~revenue, 1)).alias("not_revenue"),
        F.count(F.when(revenue & F.col("is_test_customer"), 1)).alias("test_user"),
        F.count(F.when(counted & published & ~F.col("has_customer"), 1)).alias("orphans"),
        *[F.count(F.when(counted & (F.col("quarantine_reason") == reason), 1)).alias(reason)
          for reason in transforms.QUARANTINE_REASONS],
    ]


def _log_rule_effects(rule_effects: Observation, mart_rows: int) -> dict[str, int]:
    """Logs what each rule removed; returns the quarantined revenue orders by reason."""
    counts = rule_effects.get  # filled in by the action that materialised the mart
    raw_rows, orders = counts["raw_rows"] or 0, counts["orders"]
    log.info("rule 1 latest version: %d raw order rows -> %d orders (%d superseded versions removed)",
             raw_rows, orders, raw_rows - orders)
    log.info("rule 2 revenue status: %d orders removed (status not revenue on their latest version)",
             counts["not_revenue"])
    log.info("rule 3 test users: %d revenue orders removed", counts["test_user"])
    log.info("rule 4 segment: %d revenue orders kept as 'unknown' segment (no customer row or null customer_id)",
             counts["orphans"])
    quarantined = {reason: counts[reason] for reason in transforms.QUARANTINE_REASONS}
    log.info("quarantine: %d revenue orders kept out of the mart (%s)", sum(quarantined.values()),
             ", ".join(f"{reason} {count}" for reason, count in quarantined.items()))
    log.info("mart rows staged: %d", mart_rows)
    return quarantined


def format_report(rows: list[dict]) -> str:
    """The published report as a small fixed-width table."""
    if not rows:
        return "(no segment had an order in the window)"
    header = ("customer_segment", "revenue", "order_count", "customer_count")
    body = [(str(r["customer_segment"]), f"{r['revenue']:,.2f}", str(r["order_count"]), str(r["customer_count"]))
            for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    first = rows[0]
    title = f"{tables.REPORT} as of {first['as_of_date']} (orders {first['window_start']}..{first['window_end']})"
    return "\n".join([title, line(header), line(["-" * w for w in widths]), *map(line, body)])
