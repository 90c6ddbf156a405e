"""Publishing the outputs: Delta writes, the mart's MERGE, commit metadata, and retries when
another writer committed first. An edge of the job."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from delta import exceptions as delta_exceptions
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from growth_revenue.delta_log import delta_table, existing_table, table_properties
from growth_revenue.locations import Location
from growth_revenue.mart_layout import RangedFiles
from growth_revenue.sparkutil import first_line, session_conf

log = logging.getLogger("growth_revenue")


def _save(writer, location: Location) -> None:
    if location.name is not None:
        writer.saveAsTable(location.quoted_name)
    else:
        writer.save(location.path)


def _writer(df: DataFrame, mode: str, user_metadata: str | None):
    writer = df.write.format("delta").mode(mode)
    # The run id (and, on the mart, the run's watermark) in the commit's userMetadata: `DESCRIBE
    # HISTORY` says which run wrote each version, and the next run finds where this one stopped.
    return writer.option("userMetadata", user_metadata) if user_metadata else writer


def overwrite(
    df: DataFrame,
    location: Location,
    ranged: RangedFiles | None = None,
    user_metadata: str | None = None,
    properties: dict[str, str] | None = None,
    run_id: str | None = None,
    plain_columns: tuple[str, ...] = (),
) -> None:
    """Replace the whole table in one Delta commit (readers see old or new, never half).

    `properties` are Delta table properties the table must have. A new table is created with
    them; an existing one lacking them gets them in a commit of its own first, tagged `run_id`
    only, so a crash in between leaves no commit that claims this run's data.
    `ranged`: the rows go into files that each hold one range of a column's values (the ranges
    from a sample of the rows), sorted within, so a filter on the column skips files by their
    statistics. An existing table's partitioning is replaced by the new write's (overwriteSchema).
    `plain_columns` are stored without a Parquet dictionary (see `_without_dictionary`).
    """
    if properties:
        ensure_properties(df.sparkSession, location, properties, run_id)
    if ranged is not None:
        df = df.repartitionByRange(ranged.files, ranged.column).sortWithinPartitions(ranged.column)
    writer = _writer(df, "overwrite", user_metadata).option("overwriteSchema", "true")
    for key, value in (properties or {}).items():
        writer = writer.option(key, value)  # applied when the write creates the table
    if ranged is not None:
        writer = writer.option("maxRecordsPerFile", ranged.max_rows_per_file)
    with session_conf(df.sparkSession, _without_dictionary(plain_columns)):
        _save(writer, location)


def ensure_properties(
    spark: SparkSession, location: Location, properties: dict[str, str], run_id: str | None = None
) -> None:
    """Give an existing table the `properties` it lacks, in a commit of its own tagged `run_id` only,
    so a crash right after it leaves no commit that claims a run's data. No table: nothing to do.
    """
    existing = delta_table(spark, location)
    if existing is None:
        return
    current = table_properties(existing)
    if missing := {key: value for key, value in properties.items() if current.get(key) != value}:
        with _commit_metadata(spark, run_id or ""):
            _set_properties(spark, location, missing)


def replace_where(df: DataFrame, location: Location, predicate: str, user_metadata: str | None = None) -> None:
    """Atomically replace the rows matching `predicate` (built by the caller from typed values).

    New columns are merged into the table's schema, so a column added by a new release (such as
    the report's mart_version) does not break a table written by an older one.
    """
    writer = _writer(df, "overwrite", user_metadata).option("replaceWhere", predicate).option("mergeSchema", "true")
    _save(writer, location)


def append(df: DataFrame, location: Location, user_metadata: str | None = None) -> None:
    _save(_writer(df, "append", user_metadata), location)


_SPREAD_SMALL_WRITES = {"spark.sql.adaptive.coalescePartitions.minPartitionSize": "1b"}


def _without_dictionary(columns: tuple[str, ...]) -> dict[str, str]:
    """Parquet writer settings that store `columns` plain. On a column with a new value on almost
    every row the writer builds a dictionary of every value only to fall back to plain encoding.
    Spark hands session settings to each write's Parquet writer.
    """
    return {f"parquet.enable.dictionary#{column}": "false" for column in columns}


TARGET, SOURCE = "t", "s"  # the MERGE's aliases of the table and of the change, for conditions built elsewhere


def merge_by_key(
    changes: DataFrame,
    location: Location,
    key: str,
    columns: tuple[str, ...],
    target_rows: Column,
    user_metadata: str,
) -> None:
    """Apply `changes` to the table in one Delta commit: delete, update or insert each key's row.

    Each change row has the table's `columns`, and `_present` (false: delete the key's row).
    `target_rows` is a condition on the table's columns (alias TARGET) that every row to update
    or delete meets: the MERGE reads only the files that can hold one (by their statistics, or
    partition values) and joins only the rows that meet it with the change.
    """
    spark = changes.sparkSession
    table = existing_table(spark, location)
    condition = (F.col(f"{TARGET}.`{key}`") == F.col(f"{SOURCE}.`{key}`")) & target_rows
    values: dict[str, str | Column] = {f"`{c}`": f"{SOURCE}.`{c}`" for c in columns}
    # The MERGE's new rows are a few MB, so adaptive execution would coalesce them into one task
    # (on a mart partitioned by an earlier release: writing every date's file in turn, as customer
    # changes touch every date); without its 1 MB floor it spreads them over the cores.
    with _commit_metadata(spark, user_metadata), session_conf(spark, _SPREAD_SMALL_WRITES):
        (
            table.alias(TARGET)
            .merge(changes.alias(SOURCE), condition)
            .whenMatchedDelete(condition=f"NOT {SOURCE}._present")
            .whenMatchedUpdate(condition=f"{SOURCE}._present", set=values)
            .whenNotMatchedInsert(condition=f"{SOURCE}._present", values=values)
            .execute()
        )


def sort_into_ranges(
    spark: SparkSession, location: Location, column: str, max_file_bytes: int, user_metadata: str
) -> None:
    """Re-sort the table's files into ranges of `column`, in one data-preserving OPTIMIZE commit.

    A ZORDER BY one column sorts every row by it and cuts files of about `max_file_bytes`: each
    file then holds one range of the column again (a plain OPTIMIZE only packs small files together).
    """
    table = existing_table(spark, location)
    size = {"spark.databricks.delta.optimize.maxFileSize": str(max_file_bytes)}
    with _commit_metadata(spark, user_metadata), session_conf(spark, size):
        table.optimize().executeZOrderBy(column)


def upsert_changed(
    rows: DataFrame, location: Location, key: str, user_metadata: str, properties: dict[str, str] | None = None
) -> None:
    """Insert the `rows` whose key the table lacks and update those that differ, in one Delta commit.

    Rows equal to the table's are left alone, so the commit only touches what changed.
    `properties` as in `overwrite`: a table lacking them gets them first.
    """
    if properties:
        ensure_properties(rows.sparkSession, location, properties, user_metadata)
    table = existing_table(rows.sparkSession, location)
    values = [c for c in rows.columns if c != key]
    differs = " OR ".join(f"NOT ({TARGET}.`{c}` <=> {SOURCE}.`{c}`)" for c in values) or "FALSE"
    with _commit_metadata(rows.sparkSession, user_metadata):
        (
            table.alias(TARGET)
            .merge(rows.alias(SOURCE), f"{TARGET}.`{key}` = {SOURCE}.`{key}`")
            .whenMatchedUpdateAll(condition=differs)
            .whenNotMatchedInsertAll()
            .execute()
        )


def record_metadata(spark: SparkSession, location: Location, user_metadata: str) -> None:
    """A commit that changes no data and carries `user_metadata` (a watermark that moved alone)."""
    with _commit_metadata(spark, user_metadata):
        _set_properties(spark, location, {"growth_revenue.state_recorded": "true"})


def _set_properties(spark: SparkSession, location: Location, properties: dict[str, str]) -> None:
    """One ALTER TABLE commit; keys and values are the job's own constants, never input."""
    target = location.quoted_name if location.name is not None else f"delta.`{location.file_path.replace('`', '``')}`"
    assignments = ", ".join(f"'{key}' = '{value}'" for key, value in properties.items())
    spark.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ({assignments})")


def _commit_metadata(spark: SparkSession, user_metadata: str):
    """userMetadata for commits that take no writer option (MERGE, ALTER TABLE): a session setting."""
    return session_conf(spark, {"spark.databricks.delta.commitInfo.userMetadata": user_metadata})


# --- conflicts between runs ----------------------------------------------------------------

# Delta's optimistic concurrency: another writer committed to the table between this run's
# read of it and its commit. Redoing the whole write against the new version is safe: each of
# our writes replaces a well-defined part of the table (all of it, or one as-of snapshot).
CONFLICTS = (
    delta_exceptions.ConcurrentAppendException,
    delta_exceptions.ConcurrentDeleteReadException,
    delta_exceptions.ConcurrentDeleteDeleteException,
    delta_exceptions.ConcurrentTransactionException,
    delta_exceptions.ConcurrentWriteException,
    delta_exceptions.MetadataChangedException,
    delta_exceptions.ProtocolChangedException,
    delta_exceptions.DeltaConcurrentModificationException,
)


class ConflictError(RuntimeError):
    """Another run kept changing the table: the write was retried and gave up."""


def with_conflict_retries(write: Callable[[], None], location: Location, retries: int, backoff_seconds: float) -> int:
    """Run `write`, redoing it when another writer committed first; returns how many retries it took."""
    for attempt in range(retries + 1):
        try:
            write()
            return attempt
        except CONFLICTS as exc:
            if attempt == retries:
                raise ConflictError(
                    f"{location}: another run changed the table while this one wrote it; "
                    f"retried {retries} time(s), giving up ({first_line(exc)})"
                ) from exc
            wait = backoff_seconds * 2**attempt
            log.warning(
                "%s: another run committed first (%s); retry %d of %d in %.1fs",
                location,
                type(exc).__name__,
                attempt + 1,
                retries,
                wait,
            )
            time.sleep(wait)
    raise AssertionError("unreachable")
