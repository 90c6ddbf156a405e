"""Publishing: a verified run's writes, each one atomic Delta commit, in an order a crash cannot break.

`publish` writes a run's outputs in order; `Publisher` does each write, tagged with the run id
and retried on a Delta conflict (writing.with_conflict_retries). Every Delta write of a run goes through here.
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from growth_revenue import delta_log, mart_layout, mart_state, reading, stages, tables, transforms, writing
from growth_revenue.caching import CacheScope
from growth_revenue.config import Config
from growth_revenue.locations import Location
from growth_revenue.planning import CustomerProfiles
from growth_revenue.sparkutil import single_row
from growth_revenue.staging import StagedMart

log = logging.getLogger("growth_revenue")

DELETION_VECTORS = "delta.enableDeletionVectors"


class Publisher:
    """Writes one run's outputs: each write tagged with the run id and retried on a Delta conflict."""

    def __init__(self, spark: SparkSession, config: Config, output: Location, run_id: str):
        self._spark, self._output, self._run_id = spark, output, run_id
        self._retries, self._backoff = config.publish.conflict_retries, config.publish.conflict_backoff_seconds
        self._days_per_file = config.incremental.mart_days_per_file
        self._resort_share = config.incremental.mart_resort_share
        self._resort_min_bytes = int(config.incremental.mart_resort_min_mb * 2**20)
        # Deletion vectors let a MERGE mark replaced rows instead of rewriting their files.
        self.deletion_vectors = {DELETION_VECTORS: "true"} if config.incremental.deletion_vectors else {}

    @property
    def run_id(self) -> str:
        return self._run_id

    def overwrite(
        self,
        df: DataFrame,
        table: str,
        ranged: mart_layout.RangedFiles | None = None,
        user_metadata: str | None = None,
        properties: dict[str, str] | None = None,
        plain_columns: tuple[str, ...] = (),
    ) -> int:
        metadata = user_metadata or self._run_id
        return self._write(
            table,
            "",
            lambda location: writing.overwrite(df, location, ranged, metadata, properties, self._run_id, plain_columns),
        )

    def mart(self, staged: StagedMart, state: mart_state.MartState, previous: mart_state.MartState | None) -> int:
        """The staged mart change and the state it reflects, in one commit; the mart's version after it."""
        metadata = state.to_metadata()
        if staged.mode == mart_state.FULL:
            return self.overwrite(
                staged.rows,
                tables.MART,
                mart_layout.RangedFiles(mart_layout.COLUMN, self._ranges(staged.rows)),
                metadata,
                self.deletion_vectors,
                transforms.MART_HIGH_CARDINALITY_COLUMNS,
            )
        if staged.changed_rows:
            changes = staged.changes
            if changes is None:
                raise ValueError("an incremental mart change with changed rows has no MERGE source (staged.changes)")
            return self._write(
                tables.MART,
                "merge",
                lambda location: writing.merge_by_key(
                    changes,
                    location,
                    "order_id",
                    transforms.MART_COLUMNS,
                    staged.replaced.condition(writing.TARGET),
                    metadata,
                ),
            )
        if previous is None:
            raise ValueError("an incremental mart change has no previous run's state to follow")
        if _position(state) != _position(previous):
            # New raw rows that change no mart row: the watermark still moves, in a data-free commit.
            return self._write(
                tables.MART, "watermark only", lambda location: writing.record_metadata(self._spark, location, metadata)
            )
        mart = self._output.child(tables.MART)
        log.info("%s unchanged: nothing landed since run %s's watermark", mart, previous.run_id)
        version = delta_log.version_of(self._spark, mart)
        if version is None:
            raise RuntimeError(f"{mart} is not a Delta table: the incremental run found no mart to leave unchanged")
        return version

    def sort_mart_if_due(self) -> None:
        """Re-sort the mart into date ranges when the nightly MERGEs or another OPTIMIZE mixed them.

        Data-preserving, so the state stays on the MERGE's commit. Another run committing first
        only postpones it: the next run finds it due again.
        """
        mart = self._output.child(tables.MART)
        size, partitioning = delta_log.size_and_partitioning(self._spark, mart)
        if partitioning:
            log.info(
                "%s is partitioned by %s (an earlier release): its next full rebuild writes date-ranged files",
                mart,
                ", ".join(partitioning),
            )
            return
        commits = delta_log.history(self._spark, mart, mart_layout.HISTORY_LIMIT)
        reason = mart_layout.clustering_due(commits, size, self._resort_share, self._resort_min_bytes)
        if reason is None:
            return
        files = self._ranges(reading.read_output(self._spark, mart))
        log.info("re-sorting %s into %d ranges of %s: %s", mart, files, mart_layout.COLUMN, reason)
        target_size = mart_layout.max_file_bytes(size, files)
        try:
            self._write(
                tables.MART,
                f"re-sorted by {mart_layout.COLUMN}",
                lambda location: writing.sort_into_ranges(
                    self._spark, location, mart_layout.COLUMN, target_size, self._run_id
                ),
            )
        except writing.ConflictError as exc:
            log.warning("%s not re-sorted (%s): the next run tries again", mart, exc)

    def _ranges(self, mart: DataFrame) -> int:
        """How many files of `days_per_file` order dates the mart's rows need."""
        column = F.col(mart_layout.COLUMN)
        first, last = single_row(mart.agg(F.min(column), F.max(column)))
        return mart_layout.ranges(first, last, self._days_per_file)

    def replace_snapshot(self, df: DataFrame, table: str, as_of: dt.date) -> int:
        predicate = f"as_of_date = DATE'{as_of.isoformat()}'"  # from a date object, never from text
        return self._write(
            table, f"snapshot {as_of}", lambda location: writing.replace_where(df, location, predicate, self._run_id)
        )

    def append(self, df: DataFrame, table: str) -> int:
        return self._write(table, "", lambda location: writing.append(df, location, self._run_id))

    def upsert(self, df: DataFrame, table: str, key: str, properties: dict[str, str] | None = None) -> int:
        return self._write(
            table, "merge", lambda location: writing.upsert_changed(df, location, key, self._run_id, properties)
        )

    def _write(self, table: str, detail: str, write) -> int:
        location = self._output.child(table)
        log.info("publishing %s to %s", table, location)
        retries = writing.with_conflict_retries(lambda: write(location), location, self._retries, self._backoff)
        version, operation_metrics = delta_log.commit_of_run(self._spark, location, self._run_id)
        log.info(
            "wrote %s: Delta version %d, %s%s%s",
            location,
            version,
            _rows_written(operation_metrics),
            f", {detail}" if detail else "",
            f", after {retries} retried conflict(s)" if retries else "",
        )
        return version


def publish(
    publisher: Publisher,
    timed: stages.Stages,
    caches: CacheScope,
    *,
    as_of: dt.date,
    decision: mart_state.Decision,
    profiles: CustomerProfiles,
    staged: StagedMart,
    report: DataFrame,
    quarantine: DataFrame,
    dq_rows: DataFrame,
    rule_inputs: dict,
    orders_version: int | None,
    customers_version: int | None,
    bounds: tuple[dt.datetime, dt.datetime],
) -> list[Row]:
    """Writes a verified run's outputs; the report's rows, largest revenue first.

    Each write is one atomic Delta commit. The order matters for a crash between two of them: the
    mart's commit carries the watermark it reflects, the report names the mart version it was
    computed from, and every write replaces what it writes, so a rerun converges (README "What
    happens when...").
    """
    # The report is checkpointed (in the JVM: no Python on executors): the mart's MERGE below
    # would otherwise drop its cache (it reads the mart) and have it recomputed for the write.
    timed.start("publish report rows")
    report_frame = report.localCheckpoint(eager=True)
    report_rows = report_frame.orderBy(F.desc("revenue"), "customer_segment").collect()
    # After a commit Delta re-plans every cached query over the table (listing its files again):
    # seconds per run for the caches over the mart, which nothing reads after this point.
    caches.release(report, *caches.reading(tables.MART))
    timed.start("publish customer state")
    state = _state_after(publisher, staged, profiles, decision, rule_inputs, orders_version, customers_version, bounds)
    timed.start("publish mart")
    mart_version = publisher.mart(staged, state, decision.state)
    timed.start("publish quarantine")
    publisher.overwrite(quarantine, tables.QUARANTINE)
    timed.start("publish report")
    publisher.replace_snapshot(transforms.with_mart_version(report_frame, mart_version), tables.REPORT, as_of)
    timed.start("publish dq results")
    publisher.append(dq_rows, tables.DQ_RESULTS)
    timed.start("mart upkeep")
    publisher.sort_mart_if_due()
    return report_rows


def _state_after(
    publisher: Publisher,
    staged: StagedMart,
    profiles: CustomerProfiles,
    decision: mart_state.Decision,
    rule_inputs: dict,
    orders_version: int | None,
    customers_version: int | None,
    bounds: tuple[dt.datetime, dt.datetime],
) -> mart_state.MartState:
    """The state the mart's commit will carry; writes the customer profiles first when they changed.

    The profiles go first: a crash before the mart commit leaves the mart naming the previous
    profiles version, so the next run compares against what the mart was really built from.
    When only the recomputed customers can differ, only their changed rows are merged in: the
    nightly write follows the customers that changed, not the number of customers.
    """
    customer_version = decision.state.customer_state_version if decision.state else None
    if customer_version is not None and staged.customers_changed and profiles.carried_over:
        if profiles.recomputed is None:
            raise ValueError("carried-over customer profiles have no recomputed profiles to merge")
        customer_version = publisher.upsert(
            profiles.recomputed, tables.CUSTOMER_STATE, "customer_id", publisher.deletion_vectors
        )
    elif staged.customers_changed or customer_version is None:
        customer_version = publisher.overwrite(
            profiles.current, tables.CUSTOMER_STATE, properties=publisher.deletion_vectors
        )
    return mart_state.MartState(
        run_id=publisher.run_id,
        mode=staged.mode,
        orders_watermark=staged.watermark,
        customer_state_version=customer_version,
        raw_orders_version=orders_version,
        rules=rule_inputs,
        raw_customers_version=customers_version,
        latest_order_ts=bounds[1].isoformat(),
    )


def _position(state: mart_state.MartState) -> tuple:
    """Where in the raw data a state stands; a run that moves it must commit it, even with no row changed."""
    return state.orders_watermark, state.customer_state_version, state.raw_orders_version, state.raw_customers_version


def _rows_written(metrics: dict[str, str]) -> str:
    if "numTargetRowsInserted" in metrics:  # a MERGE
        return ", ".join(
            f"{metrics.get(f'numTargetRows{kind}', 0)} rows {kind.lower()}"
            for kind in ("Inserted", "Updated", "Deleted")
        )
    return f"{metrics.get('numOutputRows', 0)} rows written"
