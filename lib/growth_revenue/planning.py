"""Before staging: whether the mart is rebuilt or changed (mart_state.decide, with the checks that
need the tables), and this run's customer profiles, every customer's or only those whose raw rows
landed since the last run. Reads the raw tables and the published state (reading, delta_log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from growth_revenue import delta_log, incremental, mart_state, reading, sparkutil, tables, transforms
from growth_revenue.caching import CacheScope
from growth_revenue.config import Config
from growth_revenue.locations import Location

if TYPE_CHECKING:
    from growth_revenue.pipeline import RunRequest

log = logging.getLogger("growth_revenue")


@dataclass(frozen=True)
class CustomerProfiles:
    """This run's customer profiles, and the ones whose change since the last run is to be found."""

    current: DataFrame  # every customer's profile (the classification and the state use these)
    previous: DataFrame | None  # the last run's profiles of the customers that may have changed
    recomputed: DataFrame | None  # their profiles now (incremental.customer_changes compares the two)
    carried_over: bool = False  # `current` is the state with `recomputed` applied: only those can differ


def decide(
    spark: SparkSession, config: Config, request: RunRequest, orders_version: int | None
) -> tuple[mart_state.Decision, DataFrame | None]:
    """Full or incremental (mart_state.decide), and the customer profiles the last run used."""
    output = request.output
    # The newest commit carries the last run's state unless another writer committed since.
    commits = delta_log.history(spark, output.child(tables.MART), limit=1)
    if commits and mart_state.MartState.from_metadata(commits[0]["userMetadata"]) is None:
        commits = delta_log.history(spark, output.child(tables.MART))
    decision = mart_state.decide(commits, rule_inputs(config, request), request.full_refresh)
    if decision.mode == mart_state.FULL:
        return decision, None
    state = decision.state
    assert state is not None  # mart_state.decide gives every incremental decision its state
    rewritten = _rewrite_since(spark, request.raw_orders, state.raw_orders_version, orders_version)
    if rewritten:
        return mart_state.Decision(
            mart_state.FULL,
            f"{tables.RAW_ORDERS} {rewritten} since run {state.run_id}; the watermark sees appends only",
        ), None
    if delta_log.delta_table(spark, output.child(tables.QUARANTINE)) is None:
        return mart_state.Decision(mart_state.FULL, f"{tables.QUARANTINE} is missing"), None
    version = state.customer_state_version
    try:
        previous = reading.read_output(spark, output.child(tables.CUSTOMER_STATE), version)
        _ = previous.schema  # resolves the version now, so a vacuumed or missing state falls back here
    except Exception as exc:  # noqa: BLE001 - any unreadable state means "rebuild", never a wrong mart
        return mart_state.Decision(
            mart_state.FULL, f"{tables.CUSTOMER_STATE} version {version} is unreadable: {sparkutil.first_line(exc)}"
        ), None
    return decision, previous


def _rewrite_since(spark: SparkSession, location: Location, read_before: int | None, version: int | None) -> str | None:
    """How a raw Delta table changed other than by appends since version `read_before`, or None."""
    if version is None or read_before is None:
        return None
    commits = delta_log.history(spark, location, limit=max(version - read_before, 0) + 1)
    return mart_state.raw_rewrite(read_before, commits)


def customer_profiles(
    spark: SparkSession,
    config: Config,
    request: RunRequest,
    raw_customers: DataFrame,
    customers_version: int | None,
    decision: mart_state.Decision,
    previous: DataFrame | None,
    caches: CacheScope,
) -> CustomerProfiles:
    """Every customer's profile from raw (a full run, or when the appended rows cannot be told apart),
    or only those of the customers with a raw_customers row appended since the last run.
    """
    rules = config.rules
    state = decision.state
    appended, why_not = (
        (None, "")
        if previous is None or state is None
        else _customers_appended(spark, request, state, customers_version)
    )
    if appended is None:
        current = caches.persist(
            transforms.customer_profiles(raw_customers, rules.test_email_domains, rules.unknown_segment)
        )
        if previous is not None:
            log.info("customer profiles: every customer's recomputed (%s)", why_not)
        return CustomerProfiles(current=current, previous=previous, recomputed=current, carried_over=False)
    assert previous is not None and state is not None  # rows appended since a state: an incremental run
    ids = caches.persist(appended.where(F.col("customer_id").isNotNull()).select("customer_id").distinct())
    # Their complete history, so the latest version wins exactly as in a rebuild.
    recomputed = caches.persist(
        transforms.customer_profiles(
            raw_customers.join(ids, "customer_id", "left_semi"), rules.test_email_domains, rules.unknown_segment
        )
    )
    current = caches.persist(incremental.updated_profiles(previous, recomputed, ids))
    log.info(
        "customer profiles: %d customers with %s rows appended since version %d recomputed, the others' carried over",
        ids.count(),
        tables.RAW_CUSTOMERS,
        state.raw_customers_version,
    )
    return CustomerProfiles(
        current=current,
        previous=previous.join(ids, "customer_id", "left_semi"),
        recomputed=recomputed,
        carried_over=True,
    )


def _customers_appended(
    spark: SparkSession, request: RunRequest, state: mart_state.MartState, customers_version: int | None
) -> tuple[DataFrame | None, str]:
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
        return reading.rows_appended(spark, request.raw_customers, tables.RAW_CUSTOMERS, since, customers_version), ""
    except Exception as exc:  # noqa: BLE001 - a layout, a vacuumed version or a catalog forbidding paths
        return None, f"the files appended to {tables.RAW_CUSTOMERS} cannot be read alone: {sparkutil.first_line(exc)}"


def rule_inputs(config: Config, request: RunRequest) -> dict:
    rules = config.rules
    return mart_state.rule_inputs(
        rules.revenue_statuses,
        rules.test_email_domains,
        rules.unknown_segment,
        rules.reporting_timezone,
        rules.earliest_order_date,
        rules.max_future_skew_hours,
        str(request.raw_orders),
        str(request.raw_customers),
    )
