"""Reading the raw tables (held to the input contract) and the job's own outputs: an edge of the job."""

from __future__ import annotations

import json
import logging

from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from growth_revenue import sparkutil
from growth_revenue.contract import ContractError, conform
from growth_revenue.delta_log import existing_table, version_of
from growth_revenue.locations import Location
from growth_revenue.sparkutil import first_line, single_row

log = logging.getLogger("growth_revenue")


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

    When every commit in between was an append (mart_state.raw_rewrite), these are exactly the
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
        _ = df.schema  # forces the footer read, so a non-Parquet folder fails here, with the table name
    except Exception as exc:  # any reader failure means "not a table we can read"
        raise ContractError(
            f"{table}: {location} is neither a Delta table nor readable Parquet: {first_line(exc)}"
        ) from exc
    return df


def read_output(spark: SparkSession, location: Location, version: int | None = None) -> DataFrame:
    """One of the job's own Delta tables, at `version` when given (time travel)."""
    reader = _delta_reader(spark, version)
    return reader.table(location.quoted_name) if location.name is not None else reader.load(location.path)


def _delta_reader(spark: SparkSession, version: int | None):
    reader = spark.read.format("delta")
    return reader if version is None else reader.option("versionAsOf", version)
