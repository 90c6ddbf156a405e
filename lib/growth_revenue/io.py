"""Reading the raw tables and publishing the outputs: the edges of the job.

A location is either a path (anything with a '/' or a URI scheme) or a catalog table name
(`table`, `schema.table` or `catalog.schema.table`). Names are validated and quoted, never
pasted into SQL as they came.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from delta import exceptions as delta_exceptions
from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from growth_revenue import sparkutil
from growth_revenue.contract import ContractError, conform
from growth_revenue.sparkutil import single_row

log = logging.getLogger("growth_revenue")

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_TABLE_NAME = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER}){{0,2}}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_USERINFO = re.compile(r"://[^/@:]*:[^/@]*@")  # user:secret@ (abfss://container@account is fine)


@dataclass(frozen=True)
class Location:
    """Where a table lives: a filesystem/object-store path or a catalog name."""

    path: str | None = None
    name: str | None = None

    @staticmethod
    def parse(text: str) -> "Location":
        text = text.strip()
        if _CONTROL.search(text):
            raise ValueError(f"a table path or name must not contain control characters: {text!r}")
        if "/" in text or ":" in text or text.startswith("."):
            if _USERINFO.search(text):
                # A key in the URI would end up in logs and Spark's plans: credentials come from the
                # environment or the platform instead (README "Credentials").
                raise ValueError(f"a table path must not carry credentials: {_USERINFO.sub('://***@', text)}")
            return Location(path=text)
        if not _TABLE_NAME.match(text):
            raise ValueError(f"not a table path or catalog.schema.table name: {text!r}")
        return Location(name=text)

    def child(self, table: str) -> "Location":
        """The output table `table` inside this directory or schema."""
        if self.path is not None:
            return Location(path=f"{self.path.rstrip('/')}/{table}")
        return Location(name=f"{self.name}.{table}")

    @property
    def quoted_name(self) -> str:
        if self.name is None:
            raise ValueError(f"{self} is a path, not a catalog table name")
        return ".".join(f"`{part}`" for part in self.name.split("."))

    @property
    def file_path(self) -> str:
        """The path of a path location (what Spark's and Delta's path APIs take)."""
        if self.path is None:
            raise ValueError(f"{self} is a catalog table name, not a path")
        return self.path

    def __str__(self) -> str:
        return self.path if self.path is not None else str(self.name)


# --- reading -------------------------------------------------------------------------------


def raw_version(spark: SparkSession, location: Location) -> int | None:
    """The current Delta version of a raw table, None when it is not a Delta table (Parquet, a view)."""
    try:
        return version_of(spark, location)
    except (AnalysisException, ValueError):  # a catalog table that is not Delta, or no table at all
        return None


def read_raw(spark: SparkSession, location: Location, table: str, version: int | None = None) -> DataFrame:
    """A raw table conformed to its contract; ContractError names the table on any problem.

    `version` pins a Delta table to one version, so every pass of a run (the changed rows, their
    history, the watermark) sees the same rows while upstream keeps appending.
    """
    reader = _delta_reader(spark, version)
    try:
        if location.name is not None:
            df = (spark.read if version is None else reader).table(location.quoted_name)
        elif DeltaTable.isDeltaTable(spark, location.file_path):
            df = reader.load(location.file_path)
        else:
            df = _read_parquet(spark, location, table)
    except AnalysisException as exc:
        raise ContractError(f"{table}: cannot read {location}: {first_line(exc)}") from exc
    return conform(df, table)


def rows_appended(spark: SparkSession, location: Location, table: str, since: int, version: int) -> DataFrame:
    """The rows of the raw Delta table in the data files added after version `since`, up to `version`.

    When every commit in between was an append (incremental.raw_rewrite), these are exactly the
    rows that landed, and reading them costs what landed, not the table's size. A compaction
    (OPTIMIZE) adds files of old rows: they come back too, more work but never a wrong answer.
    The files are read as Parquet with the table's schema, which is right only for a table
    without partition columns or column mapping; ValueError says which one it has.
    """
    detail = single_row(existing_table(spark, location).detail())
    if detail["partitionColumns"]:
        raise ValueError(f"it is partitioned (by {', '.join(detail['partitionColumns'])})")
    mapping = (detail["properties"] or {}).get("delta.columnMapping.mode", "none")
    if mapping != "none":
        raise ValueError(f"it uses column mapping ({mapping})")
    now = read_output(spark, location, version)
    added = files_added(spark, detail["location"], since, version)
    rows = spark.read.schema(now.schema).parquet(*added) if added else now.where(F.lit(False))
    return conform(rows, table)


def files_added(spark: SparkSession, table_root: str, since: int, version: int) -> list[str]:
    """The data files that the commits after version `since` added and that version `version` still has.

    Read from those commits' own entries in the Delta log (one small JSON file each, on the
    driver): neither version's whole file list is rebuilt. A commit file the log no longer has
    (log retention) raises, and the caller falls back to reading everything.
    """
    hadoop = sparkutil.jvm(spark).org.apache.hadoop.fs
    root = hadoop.Path(table_root)
    fs = root.getFileSystem(spark._jsc.hadoopConfiguration())
    added: dict[str, None] = {}
    for commit in range(since + 1, version + 1):
        stream = fs.open(hadoop.Path(root, f"_delta_log/{commit:020d}.json"))
        try:
            text = sparkutil.jvm(spark).org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()
        for line in text.splitlines():
            action = json.loads(line) if line.strip() else {}
            if "add" in action:
                added[action["add"]["path"]] = None
            elif "remove" in action:  # compacted away by a later commit of the range
                added.pop(action["remove"]["path"], None)
    # Entries hold URI-encoded paths, relative to the table's root unless absolute (as Delta resolves them).
    paths = (hadoop.Path(sparkutil.jvm(spark).java.net.URI(path)) for path in added)
    return [(path if path.isAbsolute() else hadoop.Path(root, path)).toString() for path in paths]


def _read_parquet(spark: SparkSession, location: Location, table: str) -> DataFrame:
    jvm_path = sparkutil.jvm(spark).org.apache.hadoop.fs.Path(location.file_path)
    fs = jvm_path.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(jvm_path):
        raise ContractError(f"{table}: no table at {location} (path does not exist)")
    try:
        df = spark.read.parquet(location.file_path)
        df.schema  # forces the footer read, so a non-Parquet folder fails here, with the table name
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not a table we can read"
        raise ContractError(
            f"{table}: {location} is neither a Delta table nor readable Parquet: {first_line(exc)}"
        ) from exc
    return df


def first_line(exc: Exception) -> str:
    """An exception's message cut to its first line for one-line reasons; its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_output(spark: SparkSession, location: Location, version: int | None = None) -> DataFrame:
    """One of the job's own Delta tables, at `version` when given (time travel)."""
    reader = _delta_reader(spark, version)
    return reader.table(location.quoted_name) if location.name is not None else reader.load(location.path)


def _delta_reader(spark: SparkSession, version: int | None):
    reader = spark.read.format("delta")
    return reader if version is None else reader.option("versionAsOf", version)


# --- writing -------------------------------------------------------------------------------


def delta_table(spark: SparkSession, location: Location) -> DeltaTable | None:
    """The Delta table at `location`, or None when it does not exist yet."""
    if location.name is not None:
        if not spark.catalog.tableExists(location.name):
            return None
        parts = location.name.split(".")
        if len(parts) == 3 and parts[0] == "spark_catalog":
            # Delta 3's forName parses at most database.table; in the session catalog that is the same table.
            return DeltaTable.forName(spark, Location(name=".".join(parts[1:])).quoted_name)
        return DeltaTable.forName(spark, location.quoted_name)
    path = location.file_path
    return DeltaTable.forPath(spark, path) if DeltaTable.isDeltaTable(spark, path) else None


def existing_table(spark: SparkSession, location: Location) -> DeltaTable:
    """The Delta table at `location`, which the caller has read or written already."""
    table = delta_table(spark, location)
    if table is None:
        raise ContractError(f"no Delta table at {location}")
    return table


def table_properties(table: DeltaTable) -> dict[str, str]:
    return single_row(table.detail().select("properties"))[0] or {}


def version_of(spark: SparkSession, location: Location) -> int | None:
    """Current Delta version of the table, None if it does not exist."""
    table = delta_table(spark, location)
    if table is None:
        return None
    return single_row(table.history(1).select("version"))[0]


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


def overwrite(df: DataFrame, location: Location, partition_by: tuple[str, ...] = (),
              user_metadata: str | None = None, properties: dict[str, str] | None = None,
              run_id: str | None = None, plain_columns: tuple[str, ...] = ()) -> None:
    """Replace the whole table in one Delta commit (readers see old or new, never half).

    `properties` are Delta table properties the table must have. A new table is created with
    them; an existing one lacking them gets them in a commit of its own first, tagged `run_id`
    only, so a crash in between leaves no commit that claims this run's data.
    `plain_columns` are stored without a Parquet dictionary (see `_without_dictionary`).
    """
    if properties:
        ensure_properties(df.sparkSession, location, properties, run_id)
    if partition_by:
        # One task per partition value: a few files per date instead of one per date per task.
        df = df.repartition(*partition_by)
    writer = _writer(df, "overwrite", user_metadata).option("overwriteSchema", "true")
    for key, value in (properties or {}).items():
        writer = writer.option(key, value)  # applied when the write creates the table
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    with session_conf(df.sparkSession, _without_dictionary(plain_columns)):
        _save(writer, location)


def ensure_properties(spark: SparkSession, location: Location, properties: dict[str, str],
                      run_id: str | None = None) -> None:
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


def merge_by_key(changes: DataFrame, location: Location, key: str, columns: tuple[str, ...],
                 target_dates: list[dt.date], user_metadata: str) -> None:
    """Apply `changes` to the table in one Delta commit: delete, update or insert each key's row.

    Each change row has the table's `columns`, and `_present` (false: delete the key's row).
    `target_dates` are the order_date partitions holding the rows to update or delete: the
    MERGE only reads and rewrites those, not the whole history.
    """
    spark = changes.sparkSession
    table = existing_table(spark, location)
    dates = ", ".join(f"DATE'{day.isoformat()}'" for day in sorted(set(target_dates)))
    condition = f"t.`{key}` = s.`{key}` AND " + (f"t.order_date IN ({dates})" if dates else "FALSE")
    values: dict[str, str | Column] = {f"`{c}`": f"s.`{c}`" for c in columns}
    # The MERGE writes its new rows one file per order_date they fall on. They are a few MB, so
    # adaptive execution would coalesce them into one task writing every date's file in turn
    # (customer changes touch every date); without its 1 MB floor it spreads them over the cores.
    with _commit_metadata(spark, user_metadata), session_conf(spark, _SPREAD_SMALL_WRITES):
        (table.alias("t").merge(changes.alias("s"), condition)
         .whenMatchedDelete(condition="NOT s._present")
         .whenMatchedUpdate(condition="s._present", set=values)
         .whenNotMatchedInsert(condition="s._present", values=values)
         .execute())


def upsert_changed(rows: DataFrame, location: Location, key: str, user_metadata: str,
                   properties: dict[str, str] | None = None) -> None:
    """Insert the `rows` whose key the table lacks and update those that differ, in one Delta commit.

    Rows equal to the table's are left alone, so the commit only touches what changed.
    `properties` as in `overwrite`: a table lacking them gets them first.
    """
    if properties:
        ensure_properties(rows.sparkSession, location, properties, user_metadata)
    table = existing_table(rows.sparkSession, location)
    values = [c for c in rows.columns if c != key]
    differs = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in values) or "FALSE"
    with _commit_metadata(rows.sparkSession, user_metadata):
        (table.alias("t").merge(rows.alias("s"), f"t.`{key}` = s.`{key}`")
         .whenMatchedUpdateAll(condition=differs)
         .whenNotMatchedInsertAll()
         .execute())


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


@contextlib.contextmanager
def session_conf(spark: SparkSession, settings: dict[str, str]):
    """Spark session settings for the duration of one write or action; the previous values come back after it."""
    previous: dict[str, str | None] = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def history(spark: SparkSession, location: Location, limit: int | None = 50) -> list[dict]:
    """The table's newest `limit` commits (all when None), newest first; [] if there is no Delta table.

    Each: version, operation, operationParameters, userMetadata.
    """
    table = delta_table(spark, location)
    if table is None:
        return []
    commits = table.history(limit) if limit is not None else table.history()
    rows = commits.select("version", "operation", "operationParameters", "userMetadata").collect()
    return [row.asDict() for row in rows]


def commit_of_run(spark: SparkSession, location: Location, run_id: str) -> tuple[int, dict[str, str]]:
    """(version, rows written) of the newest commit by run `run_id`: another run may have committed since.

    A commit's userMetadata is the run id, or JSON with a `run_id` (the mart's, carrying its
    watermark). Delta commits nothing when an empty table is overwritten with no rows; the
    current version then holds what the run wrote.
    """
    tagged = (F.col("userMetadata") == run_id) | (F.get_json_object("userMetadata", "$.run_id") == run_id)
    table = existing_table(spark, location)
    # Delta reads one log file per commit listed: the newest is almost always the run's own.
    for limit in (1, 100):
        row = table.history(limit).where(tagged).orderBy(F.desc("version")).select("version", "operationMetrics").first()
        if row is not None:
            break
    if row is None:
        return single_row(table.history(1).select("version"))[0], {}
    return row["version"], dict(row["operationMetrics"] or {})


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
            log.warning("%s: another run committed first (%s); retry %d of %d in %.1fs",
                        location, type(exc).__name__, attempt + 1, retries, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")
