"""What a Delta table's log says: the table handle, its properties, its commits and which one a run made."""

from __future__ import annotations

import logging

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from growth_revenue.contract import ContractError
from growth_revenue.locations import Location
from growth_revenue.sparkutil import single_row

log = logging.getLogger("growth_revenue")


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


def size_and_partitioning(spark: SparkSession, location: Location) -> tuple[int, list[str]]:
    """The table's bytes (its current files) and its partition columns, from DESCRIBE DETAIL."""
    size, partitioning = single_row(existing_table(spark, location).detail().select("sizeInBytes", "partitionColumns"))
    return int(size or 0), list(partitioning or [])


def version_of(spark: SparkSession, location: Location) -> int | None:
    """Current Delta version of the table, None if it does not exist."""
    table = delta_table(spark, location)
    if table is None:
        return None
    return single_row(table.history(1).select("version"))[0]


def history(spark: SparkSession, location: Location, limit: int | None = 50) -> list[dict]:
    """The table's newest `limit` commits (all when None), newest first; [] if there is no Delta table.

    Each: version, operation, operationParameters, operationMetrics, userMetadata.
    """
    table = delta_table(spark, location)
    if table is None:
        return []
    commits = table.history(limit) if limit is not None else table.history()
    rows = commits.select("version", "operation", "operationParameters", "operationMetrics", "userMetadata").collect()
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
        row = (
            table.history(limit).where(tagged).orderBy(F.desc("version")).select("version", "operationMetrics").first()
        )
        if row is not None:
            break
    if row is None:
        return single_row(table.history(1).select("version"))[0], {}
    return row["version"], dict(row["operationMetrics"] or {})
