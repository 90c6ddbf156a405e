"""One run of the nightly job, end to end: read, apply the rules, verify, publish.

`_run` is the flow of a run in one function, cut into the stages `run` reports the cost of
(growth_revenue.stages); everything it calls is either a pure transform (transforms, quality) or
an edge (io).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import time
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from growth_revenue import incremental, io, metrics, quality, stages, tables, transforms
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
    full_refresh: bool = False  # rebuild the mart from scratch instead of applying what changed


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int
    run_id: str
    results: list[quality.Result]
    report_rows: list[dict]
    mode: str = incremental.FULL  # how the mart was staged: full rebuild or incremental
    verify_seconds: float = 0.0  # wall time of the quality verification
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
    log.info("run %s: as-of %s, window %s..%s (%s), run time %s", run_id, request.as_of,
             window_start, window_end, rules.reporting_timezone, request.run_timestamp.isoformat())

    # Each stage's cost is logged when the run ends, published or not (growth_revenue.stages).
    with stages.Stages(spark, run_id, config.observability.stage_metrics_dir) as timed:
        outcome = _run(spark, config, request, run_id, timed)
    return dataclasses.replace(outcome, stages=timed.costs)


def _run(spark: SparkSession, config: Config, request: RunRequest, run_id: str, timed: stages.Stages) -> RunOutcome:
    rules = config.rules
    # Extract
    timed.start("read and decide")
    orders_version = io.raw_version(spark, request.raw_orders)
    raw_orders = io.read_raw(spark, request.raw_orders, tables.RAW_ORDERS, orders_version)
    customers_version = io.raw_version(spark, request.raw_customers)
    raw_customers = io.read_raw(spark, request.raw_customers, tables.RAW_CUSTOMERS, customers_version)
    log.info("read %s from %s%s and %s from %s", tables.RAW_ORDERS, request.raw_orders,
             f" (version {orders_version})" if orders_version is not None else "", tables.RAW_CUSTOMERS,
             request.raw_customers)
    decision, previous_profiles = _decide(spark, config, request, orders_version)
    log.info("mart: %s run (%s)", decision.mode, decision.reason)

    # Transform: rules 1-6, staged in memory (nothing is written yet). A full run stages every
    # order; an incremental run only the orders whose mart row may have changed.
    timed.start("customer profiles")
    profiles = _customer_profiles(spark, config, request, raw_customers, customers_version, decision,
                                  previous_profiles)
    reference = freshness_reference(request.as_of, request.run_timestamp, rules.reporting_timezone)
    bounds = transforms.plausible_order_ts(request.run_timestamp, rules.max_future_skew_hours,
                                           rules.earliest_order_date, rules.reporting_timezone)
    staged = None
    report = None
    try:
        timed.start("stage mart")
        if decision.mode == incremental.INCREMENTAL:
            staged = _stage_change(spark, config, request, raw_orders, profiles, decision.state, reference, bounds)
        else:
            staged = _stage_rebuild(config, raw_orders, profiles.current, bounds)
        computed_at = dt.datetime.now(dt.timezone.utc)
        report = transforms.revenue_by_segment(staged.after, request.as_of, rules.report_window_days, computed_at,
                                               run_id).persist()
        quarantine = transforms.with_run_columns(staged.quarantine, request.as_of, run_id)

        # Audit: nothing is published unless every Error-level constraint holds. The mart's
        # constraints are verified on the staged rows only: the rows already published passed
        # them when they were staged, and the MERGE's key keeps order_id unique across both.
        timed.start("verify")
        freshness = quality.freshness_summary(staged.freshness_input, reference, config.quality.freshness_max_age_hours)
        staged_rows = transforms.with_test_customer_flag(staged.rows, profiles.current)
        checks = quality.gate_checks(staged_rows, report, freshness)
        engine = quality.choose_engine(spark, config.quality.engine)
        log.info("verifying %d constraints with the %s engine%s", sum(len(c.rules) for c in checks), engine,
                 "" if engine == "deequ" else f" (Deequ: {quality.deequ_absence(spark)})")
        verify_started = time.monotonic()
        results = quality.verify(spark, checks, engine)
        verify_seconds = time.monotonic() - verify_started
        log.info("verified in %.1fs", verify_seconds)
        results += quality.quarantine_results(staged.quarantined, staged.mart_rows, config.quality.quarantine_max_share)

        # Anomalies (Warning): this run's metrics against the previous published run's
        history = _metrics_repository(spark, config, request.output, engine)
        current = metrics.published_metrics(request.as_of, staged.mart_rows, _total_revenue(report))
        if history is not None:
            deequ_judge = None
            if engine == "deequ":
                from growth_revenue import deequ_engine

                history.make_readable_by_deequ()
                deequ_judge = functools.partial(deequ_engine.newest_point_is_normal, spark, history.path,
                                                request.as_of)
            results += quality.anomaly_results(current, history.previous(request.as_of),
                                               config.quality.anomaly_max_relative_change, deequ_judge)
        for result in results:
            level = log.error if result.blocks_publishing else log.warning if result.status == quality.FAILURE else log.info
            level("check %s", result.plain())
        dq_rows = quality.results_frame(spark, results, run_id, request.as_of)  # recorded pass or fail

        publisher = _Publisher(spark, config, request.output, run_id)
        failed = sum(r.blocks_publishing for r in results)
        if failed:
            timed.start("publish dq results")
            publisher.append(dq_rows, tables.DQ_RESULTS)
            log.error("quality gate failed (%d Error constraint(s)): nothing published; %s, %s and %s left as "
                      "they were", failed, tables.MART, tables.QUARANTINE, tables.REPORT)
            return RunOutcome(EXIT_QUALITY_GATE, run_id, results, [], staged.mode, verify_seconds)

        # Publish: each write is one atomic Delta commit. The order matters for a crash between
        # two of them: the mart's commit carries the watermark it reflects, the report names the
        # mart version it was computed from, and every write replaces what it writes, so a rerun
        # converges (README "What happens when...").
        # The report is checkpointed (in the JVM: no Python on executors): the mart's MERGE below
        # would otherwise drop its cache (it reads the mart) and have it recomputed for the write.
        timed.start("publish report rows")
        report_frame = report.localCheckpoint(eager=True)
        report_rows = report_frame.orderBy(F.desc("revenue"), "customer_segment").collect()
        # After a commit Delta re-plans every cached query over the table (listing its files again):
        # seconds per run for the caches over the mart, which nothing reads after this point.
        for frame in (report, *staged.cached_from_mart):
            frame.unpersist()
        timed.start("publish customer state")
        state = _state_after(publisher, staged, profiles, decision, _rule_inputs(config, request),
                             orders_version, customers_version, run_id, bounds)
        timed.start("publish mart")
        mart_version = publisher.mart(staged, state, decision.state)
        timed.start("publish quarantine")
        publisher.overwrite(quarantine, tables.QUARANTINE)
        timed.start("publish report")
        publisher.replace_snapshot(transforms.with_mart_version(report_frame, mart_version), tables.REPORT,
                                   request.as_of)
        timed.start("publish dq results")
        publisher.append(dq_rows, tables.DQ_RESULTS)
        if history is not None:  # only published runs become the baseline the next run is compared with
            history.save(current)
            log.info("saved metrics for %s to %s", request.as_of, history.path)

        return RunOutcome(EXIT_OK, run_id, results, [row.asDict() for row in report_rows], staged.mode,
                          verify_seconds)
    finally:
        # A long-lived session (notebook, Databricks) must not keep a failed run's caches. Newest
        # first: uncaching a frame that later caches were built on makes Spark re-plan each of those
        # (re-running Delta's file listing), which cost more than the run's own queries.
        for frame in reversed((*profiles.cached, *(staged.cached if staged else ()), report)):
            if frame is not None:
                frame.unpersist()


@dataclass(frozen=True)
class StagedMart:
    """The mart change a run has computed and not written yet."""

    mode: str  # full | incremental
    rows: DataFrame  # the mart rows computed by this run (every row for a rebuild): what the gate verifies
    after: DataFrame  # the mart's rows once the change is applied (may be cut to the report's window)
    mart_rows: int  # how many rows the mart holds once the change is applied
    quarantine: DataFrame  # quarantine_orders once the change is applied, without the run columns
    quarantined: dict[str, int]  # its revenue orders by quarantine reason
    changes: DataFrame | None  # incremental: the MERGE source (incremental.mart_changes)
    changed_rows: int  # mart rows inserted, updated or deleted
    target_dates: list[dt.date]  # incremental: the partitions holding rows to update or delete
    watermark: str | None  # newest raw_orders._ingested_at the mart reflects
    customers_changed: bool
    freshness_input: DataFrame  # raw_orders rows the freshness check reads
    cached: tuple[DataFrame, ...]
    cached_from_mart: tuple[DataFrame, ...]  # those read from the published mart, newest first


def _decide(spark: SparkSession, config: Config, request: RunRequest,
            orders_version: int | None) -> tuple[incremental.Decision, DataFrame | None]:
    """Full or incremental (incremental.decide), and the customer profiles the last run used."""
    output = request.output
    # The newest commit carries the last run's state unless another writer committed since.
    commits = io.history(spark, output.child(tables.MART), limit=1)
    if commits and incremental.MartState.from_metadata(commits[0]["userMetadata"]) is None:
        commits = io.history(spark, output.child(tables.MART))
    decision = incremental.decide(commits, _rule_inputs(config, request), request.full_refresh)
    if decision.mode == incremental.FULL:
        return decision, None
    rewritten = _rewrite_since(spark, request.raw_orders, decision.state.raw_orders_version, orders_version)
    if rewritten:
        return incremental.Decision(incremental.FULL, f"{tables.RAW_ORDERS} {rewritten} since run "
                                                      f"{decision.state.run_id}; the watermark sees appends only"), None
    if io.delta_table(spark, output.child(tables.QUARANTINE)) is None:
        return incremental.Decision(incremental.FULL, f"{tables.QUARANTINE} is missing"), None
    version = decision.state.customer_state_version
    try:
        previous = io.read_output(spark, output.child(tables.CUSTOMER_STATE), version)
        previous.schema  # resolves the version now, so a vacuumed or missing state falls back here
    except Exception as exc:  # noqa: BLE001 - any unreadable state means "rebuild", never a wrong mart
        return incremental.Decision(incremental.FULL, f"{tables.CUSTOMER_STATE} version {version} is unreadable: "
                                                      f"{str(exc).strip().splitlines()[0]}"), None
    return decision, previous


def _rewrite_since(spark: SparkSession, location: Location, read_before: int | None,
                   version: int | None) -> str | None:
    """How a raw Delta table changed other than by appends since version `read_before`, or None."""
    if version is None or read_before is None:
        return None
    commits = io.history(spark, location, limit=max(version - read_before, 0) + 1)
    return incremental.raw_rewrite(read_before, commits)


@dataclass(frozen=True)
class CustomerProfiles:
    """This run's customer profiles, and the ones whose change since the last run is to be found."""

    current: DataFrame  # every customer's profile (the classification and the state use these)
    previous: DataFrame | None  # the last run's profiles of the customers that may have changed
    recomputed: DataFrame | None  # their profiles now (incremental.customer_changes compares the two)
    cached: tuple[DataFrame, ...]
    carried_over: bool = False  # `current` is the state with `recomputed` applied: only those can differ


def _customer_profiles(spark: SparkSession, config: Config, request: RunRequest, raw_customers: DataFrame,
                       customers_version: int | None, decision: incremental.Decision,
                       previous: DataFrame | None) -> CustomerProfiles:
    """Every customer's profile from raw (a full run, or when the appended rows cannot be told apart),
    or only those of the customers with a raw_customers row appended since the last run.
    """
    rules = config.rules
    appended, why_not = (None, "") if previous is None else _customers_appended(spark, request, decision.state,
                                                                                  customers_version)
    if appended is None:
        current = transforms.customer_profiles(raw_customers, rules.test_email_domains,
                                               rules.unknown_segment).persist()
        if previous is not None:
            log.info("customer profiles: every customer's recomputed (%s)", why_not)
        return CustomerProfiles(current, previous, current, (current,))
    ids = appended.where(F.col("customer_id").isNotNull()).select("customer_id").distinct().persist()
    # Their complete history, so the latest version wins exactly as in a rebuild.
    recomputed = transforms.customer_profiles(raw_customers.join(ids, "customer_id", "left_semi"),
                                              rules.test_email_domains, rules.unknown_segment).persist()
    current = incremental.updated_profiles(previous, recomputed, ids).persist()
    log.info("customer profiles: %d customers with %s rows appended since version %d recomputed, the others' "
             "carried over", ids.count(), tables.RAW_CUSTOMERS, decision.state.raw_customers_version)
    return CustomerProfiles(current, previous.join(ids, "customer_id", "left_semi"), recomputed,
                            (ids, recomputed, current), carried_over=True)


def _customers_appended(spark: SparkSession, request: RunRequest, state: incremental.MartState,
                        customers_version: int | None) -> tuple[DataFrame | None, str]:
    """The raw_customers rows appended since the last run, or None and why they cannot be told apart."""
    since = state.raw_customers_version
    if customers_version is None:
        return None, f"{tables.RAW_CUSTOMERS} is not a Delta table"
    if since is None:
        return None, f"run {state.run_id} recorded no {tables.RAW_CUSTOMERS} version"
    rewritten = _rewrite_since(spark, request.raw_customers, since, customers_version)
    if rewritten:
        return None, f"{tables.RAW_CUSTOMERS} {rewritten} since run {state.run_id}"
    try:
        return io.rows_appended(spark, request.raw_customers, tables.RAW_CUSTOMERS, since, customers_version), ""
    except Exception as exc:  # noqa: BLE001 - a layout, a vacuumed version or a catalog forbidding paths
        reason = str(exc).strip().splitlines()[0]
        return None, f"the files appended to {tables.RAW_CUSTOMERS} cannot be read alone: {reason}"


def _rule_inputs(config: Config, request: RunRequest) -> dict:
    rules = config.rules
    return incremental.rule_inputs(rules.revenue_statuses, rules.test_email_domains, rules.unknown_segment,
                                   rules.reporting_timezone, rules.earliest_order_date, rules.max_future_skew_hours,
                                   str(request.raw_orders), str(request.raw_customers))


def _stage_rebuild(config: Config, raw_orders: DataFrame, profiles: DataFrame,
                   bounds: tuple[dt.datetime, dt.datetime]) -> StagedMart:
    """Every order through rules 1-5."""
    rules = config.rules
    classified, rule_effects = _observed(
        transforms.classify_orders(raw_orders, profiles, rules.revenue_statuses, rules.unknown_segment, bounds))
    # One cached pass over the orders feeds both the mart and the quarantine.
    counted = _materialised(transforms.counted_orders(classified))
    mart = transforms.mart_orders(counted, rules.reporting_timezone)
    mart_rows = mart.count()
    quarantined = _log_rule_effects(rule_effects, mart_rows, "mart rows staged")
    quarantine = transforms.quarantined_orders(counted)
    (watermark,) = raw_orders.agg(_iso_instant(F.max("_ingested_at"))).first()
    return StagedMart(incremental.FULL, mart, mart, mart_rows, quarantine, quarantined, None, mart_rows, [],
                      watermark, True, raw_orders, (counted,), ())


def _stage_change(spark: SparkSession, config: Config, request: RunRequest, raw_orders: DataFrame,
                  profiles: CustomerProfiles, state: incremental.MartState, reference: dt.datetime,
                  bounds: tuple[dt.datetime, dt.datetime]) -> StagedMart:
    """Only the mart rows that may have changed since `state` (see the incremental module)."""
    rules, output = config.rules, request.output
    watermark = state.watermark
    cutoff = watermark - dt.timedelta(hours=config.incremental.lookback_hours) if watermark else None
    landed = incremental.landed_after(raw_orders, cutoff)
    landed_rows, newest = landed.agg(F.count(F.lit(1)), _iso_instant(F.max("_ingested_at"))).first()
    customers = incremental.customer_changes(profiles.previous, profiles.recomputed, rules.unknown_segment).persist()
    by_action = dict.fromkeys(incremental.ACTIONS, 0) | {
        row[0]: row[1] for row in customers.groupBy("action").count().collect()}
    # Raw history is read by customer only for test users who became real: nothing else brings
    # back orders the mart does not hold.
    former_test_users = (incremental.customers_to(customers, incremental.RECOMPUTE)
                         if by_action[incremental.RECOMPUTE] else None)
    # Orders whose order_ts this run's time makes plausible (or, when the time went back, no longer).
    # Collected (a few ids at most), so no cached frame reads the outputs this run rewrites: Delta
    # recomputes such caches after each commit, and they would then miss the orders just moved.
    mart, published_quarantine = (io.read_output(spark, output.child(table)) for table in (tables.MART,
                                                                                          tables.QUARANTINE))
    redated = incremental.redated_orders(published_quarantine, mart, bounds, state.latest_order_ts,
                                         rules.reporting_timezone)
    redated = spark.createDataFrame([(row.order_id,) for row in redated.collect()], "order_id string")
    affected = incremental.affected_orders(landed, raw_orders, former_test_users, redated).persist()
    lowest, highest, affected_orders = affected.agg(F.min("order_id"), F.max("order_id"), F.count(F.lit(1))).first()
    affected_range = (lowest, highest)
    history = incremental.history_of(raw_orders, affected, affected_range, cutoff, former_test_users, landed)

    classified, rule_effects = _observed(
        transforms.classify_orders(history, profiles.current, rules.revenue_statuses, rules.unknown_segment, bounds))
    counted = _materialised(transforms.counted_orders(classified))
    recomputed_rows = transforms.mart_orders(counted, rules.reporting_timezone)

    # The mart's current rows of the affected orders and of relabelled or removed customers, in
    # one pass. Edited customers' rows can lie in any partition; without them, first find which
    # partitions hold the affected orders (order_id only, files skipped by their order_id range)
    # and read those alone.
    edited = by_action[incremental.RELABEL] + by_action[incremental.REMOVE]
    target_dates = None if edited else [
        row[0] for row in incremental.key_range(mart.select("order_id", "order_date"), "order_id", *affected_range)
        .join(affected, "order_id", "left_semi").select("order_date").distinct().collect()]
    current = incremental.current_rows(mart, affected, customers, target_dates).persist()
    current_rows = current.count()  # one pass over the mart for both
    staged = recomputed_rows.unionByName(incremental.relabelled(current, customers, affected)).persist()
    staged_rows = staged.count()
    _log_rule_effects(rule_effects, staged_rows, "mart rows recomputed or relabelled")
    target_dates = [row[0] for row in current.select("order_date").distinct().collect()]
    # Checkpointed, so the MERGE's source does not depend on the mart it changes (see run), then
    # cached: the cache knows its size, which lets the MERGE broadcast it instead of shuffling the mart.
    changes = incremental.mart_changes(current, staged).localCheckpoint(eager=True).persist()
    changed_rows = changes.count()
    mart_rows = mart.count() - current_rows + staged_rows

    removed = incremental.customers_to(customers, incremental.REMOVE)
    quarantine = incremental.untouched_quarantine(published_quarantine, affected, cutoff, former_test_users, removed)
    quarantine = quarantine.unionByName(transforms.quarantined_orders(counted)).persist()
    quarantined = dict.fromkeys(transforms.QUARANTINE_REASONS, 0) | {
        row[0]: row[1] for row in quarantine.groupBy("quarantine_reason").count().collect()}

    window_start, window_end = transforms.report_window(request.as_of, rules.report_window_days)
    replaced = current.select("order_id").unionByName(affected)
    after = incremental.mart_after(mart.where(F.col("order_date").between(window_start, window_end)), replaced,
                                   staged)
    # The newest landed row is the newest of all when it is old enough to count for freshness.
    landed_by_reference = landed.where(F.col("_ingested_at") <= F.lit(reference).cast("timestamp"))
    freshness_input = landed if landed_by_reference.limit(1).count() else raw_orders
    newest = max(filter(None, (state.orders_watermark, newest)), key=dt.datetime.fromisoformat, default=None)
    log.info("incremental: %d raw_orders rows landed after %s (watermark %s minus %gh look-back); customers "
             "changed: %s; %d orders recomputed from raw, %d mart rows to insert, update or delete",
             landed_rows, cutoff.isoformat() if cutoff else "the beginning", state.orders_watermark,
             config.incremental.lookback_hours, ", ".join(f"{n} {action}" for action, n in by_action.items()),
             affected_orders, changed_rows)
    return StagedMart(incremental.INCREMENTAL, staged, after, mart_rows, quarantine, quarantined, changes,
                      changed_rows, target_dates, newest, sum(by_action.values()) > 0, freshness_input,
                      (customers, affected, counted, current, staged, changes, quarantine), (staged, current))


def _materialised(observed: DataFrame) -> DataFrame:
    """`observed` cached, and filled by an action of its own, which also reports its Observation.

    On Spark 3.5 the Observation can otherwise wait forever: when adaptive execution finds the
    cached rows empty at run time (say every recomputed order was cancelled), its
    AQEPropagateEmptyRelation rule replaces the cached scan with an empty relation, and the metrics
    collected inside it are never reported. The rule is left out of this one action.
    """
    cached = observed.persist()
    with io.session_conf(cached.sparkSession, {"spark.sql.adaptive.optimizer.excludedRules":
                                                "org.apache.spark.sql.execution.adaptive.AQEPropagateEmptyRelation"}):
        cached.count()
    return cached


def _observed(classified: DataFrame) -> tuple[DataFrame, Observation]:
    """The rule counts are observed while the staged mart is materialised: no extra pass over the data."""
    rule_effects = Observation("rule_effects")
    return classified.observe(rule_effects, *_rule_effect_metrics()), rule_effects


def _iso_instant(column: Column) -> Column:
    """A timestamp as ISO-8601 text with its offset (the session runs in UTC), for the mart's state."""
    return F.date_format(column, "yyyy-MM-dd'T'HH:mm:ss.SSSSSSxxx")


def _state_after(publisher: "_Publisher", staged: StagedMart, profiles: CustomerProfiles,
                 decision: incremental.Decision, rule_inputs: dict, orders_version: int | None,
                 customers_version: int | None, run_id: str,
                 bounds: tuple[dt.datetime, dt.datetime]) -> incremental.MartState:
    """The state the mart's commit will carry; writes the customer profiles first when they changed.

    The profiles go first: a crash before the mart commit leaves the mart naming the previous
    profiles version, so the next run compares against what the mart was really built from.
    When only the recomputed customers can differ, only their changed rows are merged in: the
    nightly write follows the customers that changed, not the number of customers.
    """
    customer_version = decision.state.customer_state_version if decision.state else None
    if customer_version is not None and staged.customers_changed and profiles.carried_over:
        customer_version = publisher.upsert(profiles.recomputed, tables.CUSTOMER_STATE, "customer_id",
                                            publisher.deletion_vectors)
    elif staged.customers_changed or customer_version is None:
        customer_version = publisher.overwrite(profiles.current, tables.CUSTOMER_STATE,
                                               properties=publisher.deletion_vectors)
    return incremental.MartState(run_id, staged.mode, staged.watermark, customer_version, orders_version,
                                 rule_inputs, customers_version, bounds[1].isoformat())


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


DELETION_VECTORS = "delta.enableDeletionVectors"


class _Publisher:
    """Writes one run's outputs: each write tagged with the run id and retried on a Delta conflict."""

    def __init__(self, spark: SparkSession, config: Config, output: Location, run_id: str):
        self._spark, self._output, self._run_id = spark, output, run_id
        self._retries, self._backoff = config.publish.conflict_retries, config.publish.conflict_backoff_seconds
        # Deletion vectors let a MERGE mark replaced rows instead of rewriting their files.
        self.deletion_vectors = {DELETION_VECTORS: "true"} if config.incremental.deletion_vectors else {}

    def overwrite(self, df: DataFrame, table: str, partition_by: tuple[str, ...] = (),
                  user_metadata: str | None = None, properties: dict[str, str] | None = None,
                  plain_columns: tuple[str, ...] = ()) -> int:
        metadata = user_metadata or self._run_id
        return self._write(table, "", lambda location: io.overwrite(df, location, partition_by, metadata, properties,
                                                                    self._run_id, plain_columns))

    def mart(self, staged: StagedMart, state: incremental.MartState, previous: incremental.MartState | None) -> int:
        """The staged mart change and the state it reflects, in one commit; the mart's version after it."""
        metadata = state.to_metadata()
        if staged.mode == incremental.FULL:
            return self.overwrite(staged.rows, tables.MART, ("order_date",), metadata, self.deletion_vectors,
                                  transforms.MART_HIGH_CARDINALITY_COLUMNS)
        if staged.changed_rows:
            return self._write(tables.MART, "merge", lambda location: io.merge_by_key(
                staged.changes, location, "order_id", transforms.MART_COLUMNS, staged.target_dates, metadata))
        if _position(state) != _position(previous):
            # New raw rows that change no mart row: the watermark still moves, in a data-free commit.
            return self._write(tables.MART, "watermark only",
                               lambda location: io.record_metadata(self._spark, location, metadata))
        mart = self._output.child(tables.MART)
        log.info("%s unchanged: nothing landed since run %s's watermark", mart, previous.run_id)
        return io.version_of(self._spark, mart)

    def replace_snapshot(self, df: DataFrame, table: str, as_of: dt.date) -> int:
        predicate = f"as_of_date = DATE'{as_of.isoformat()}'"  # from a date object, never from text
        return self._write(table, f"snapshot {as_of}",
                           lambda location: io.replace_where(df, location, predicate, self._run_id))

    def append(self, df: DataFrame, table: str) -> int:
        return self._write(table, "", lambda location: io.append(df, location, self._run_id))

    def upsert(self, df: DataFrame, table: str, key: str, properties: dict[str, str] | None = None) -> int:
        return self._write(table, "merge", lambda location: io.upsert_changed(df, location, key, self._run_id,
                                                                            properties))

    def _write(self, table: str, detail: str, write) -> int:
        location = self._output.child(table)
        log.info("publishing %s to %s", table, location)
        retries = io.with_conflict_retries(lambda: write(location), location, self._retries, self._backoff)
        version, metrics = io.commit_of_run(self._spark, location, self._run_id)
        log.info("wrote %s: Delta version %d, %s%s%s", location, version, _rows_written(metrics),
                 f", {detail}" if detail else "", f", after {retries} retried conflict(s)" if retries else "")
        return version


def _position(state: incremental.MartState) -> tuple:
    """Where in the raw data a state stands; a run that moves it must commit it, even with no row changed."""
    return state.orders_watermark, state.customer_state_version, state.raw_orders_version, state.raw_customers_version


def _rows_written(metrics: dict[str, str]) -> str:
    if "numTargetRowsInserted" in metrics:  # a MERGE
        return ", ".join(f"{metrics.get(f'numTargetRows{kind}', 0)} rows {kind.lower()}"
                         for kind in ("Inserted", "Updated", "Deleted"))
    return f"{metrics.get('numOutputRows', 0)} rows written"


def _metrics_repository(spark: SparkSession, config: Config, output: Location,
                        engine: str) -> metrics.MetricsRepository | None:
    path = config.quality.metrics_repository
    if path is None and output.path is not None:
        path = f"{output.path.rstrip('/')}/{tables.METRICS_REPOSITORY}"
    if path is None:
        log.warning("anomaly checks skipped: outputs are catalog tables and quality.metrics_repository is not set")
        return None
    return metrics.MetricsRepository(spark, path, deequ=engine == "deequ")


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


def _log_rule_effects(rule_effects: Observation, mart_rows: int, what: str) -> dict[str, int]:
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
    log.info("%s: %d", what, mart_rows)
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
