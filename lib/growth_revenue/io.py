"""Reading the raw tables and publishing the outputs: the edges of the job.

A location is either a path (anything with a '/' or a URI scheme) or a catalog table name
(`table`, `schema.table` or `catalog.schema.table`). Names are validated and quoted, never
pasted into SQL as they came.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from growth_revenue.contract import ContractError, conform

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_TABLE_NAME = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER}){{0,2}}$")


@dataclass(frozen=True)
class Location:
    """Where a table lives: a filesystem/object-store path or a catalog name."""

    path: str | None = None
    name: str | None = None

    @staticmethod
    def parse(text: str) -> "Location":
        text = text.strip()
        if "/" in text or ":" in text or text.startswith("."):
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
        return ".".join(f"`{part}`" for part in self.name.split("."))

    def __str__(self) -> str:
        return self.path if self.path is not None else self.name


# --- reading -------------------------------------------------------------------------------


def read_raw(spark: SparkSession, location: Location, table: str) -> DataFrame:
    """A raw table conformed to its contract; ContractError names the table on any problem."""
    try:
        if location.name is not None:
            df = spark.read.table(location.quoted_name)
        elif DeltaTable.isDeltaTable(spark, location.path):
            df = spark.read.format("delta").load(location.path)
        else:
            df = _read_parquet(spark, location, table)
    except AnalysisException as exc:
        raise ContractError(f"{table}: cannot read {location}: {_first_line(exc)}") from exc
    return conform(df, table)


def _read_parquet(spark: SparkSession, location: Location, table: str) -> DataFrame:
    jvm_path = spark._jvm.org.apache.hadoop.fs.Path(location.path)
    fs = jvm_path.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(jvm_path):
        raise ContractError(f"{table}: no table at {location} (path does not exist)")
    try:
        df = spark.read.parquet(location.path)
        df.schema  # forces the footer read, so a non-Parquet folder fails here, with the table name
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not a table we can read"
        raise ContractError(
            f"{table}: {location} is neither a Delta table nor readable Parquet: {_first_line(exc)}"
        ) from exc
    return df


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- writing -------------------------------------------------------------------------------


def delta_table(spark: SparkSession, location: Location) -> DeltaTable | None:
    """The Delta table at `location`, or None when it does not exist yet."""
    if location.name is not None:
        return DeltaTable.forName(spark, location.quoted_name) if spark.catalog.tableExists(location.name) else None
    return DeltaTable.forPath(spark, location.path) if DeltaTable.isDeltaTable(spark, location.path) else None


def version_of(spark: SparkSession, location: Location) -> int | None:
    """Current Delta version of the table, None if it does not exist."""
    table = delta_table(spark, location)
    if table is None:
        return None
    return table.history(1).select("version").first()[0]


def last_commit(spark: SparkSession, location: Location) -> tuple[int, int | None]:
    """(version, rows written) of the table's latest commit, from the Delta log alone."""
    row = delta_table(spark, location).history(1).select("version", "operationMetrics").first()
    written = (row["operationMetrics"] or {}).get("numOutputRows")
    return row["version"], int(written) if written is not None else None


def _save(writer, location: Location) -> None:
    if location.name is not None:
        writer.saveAsTable(location.quoted_name)
    else:
        writer.save(location.path)


def overwrite(df: DataFrame, location: Location, partition_by: tuple[str, ...] = ()) -> None:
    """Replace the whole table in one Delta commit (readers see old or new, never half)."""
    if partition_by:
        # One task per partition value: a few files per date instead of one per date per task.
        df = df.repartition(*partition_by)
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    _save(writer, location)


def replace_where(df: DataFrame, location: Location, predicate: str) -> None:
    """Atomically replace the rows matching `predicate` (built by the caller from typed values)."""
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    _save(writer, location)


def append(df: DataFrame, location: Location) -> None:
    _save(df.write.format("delta").mode("append"), location)
