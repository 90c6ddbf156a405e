"""How the job is launched: the Spark settings derived from the config, shared by every launcher.

Imports nothing from pyspark, so an Airflow DAG (whose environment has no pyspark) can use it
to build its SparkSubmitOperator from the same facts as spark-submit.sh and the local session.

`python -m growth_revenue.launch [--config FILE]` prints spark-submit options, one per line.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from growth_revenue import jars
from growth_revenue.config import SparkSettings, load_config

# The Delta Lake session settings; Databricks has them built in.
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


# Session settings whose defaults differ between Spark 3.5 and 4.x, pinned so both lines compute the
# same rows. Spark 3.5's semantics, except where 3.5's default is to raise (EXCEPTION) on input that
# 4.x reads: CORRECTED gives what every successful 3.5 run gives. Keys only 4.x knows are accepted
# and ignored by 3.5.
SAME_ON_EVERY_LINE = {
    # 4.x turns ANSI mode on: casts, overflow and element_at raise instead of giving null.
    "spark.sql.ansi.enabled": "false",
    "spark.sql.legacy.nullInEmptyListBehavior": "true",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    "spark.sql.legacy.ctePrecedencePolicy": "CORRECTED",
    # 4.x only: decimal common types, split on an empty regex, all-missing Parquet structs.
    "spark.sql.legacy.decimal.retainFractionDigitsOnTruncate": "true",
    "spark.sql.legacy.truncateForEmptyRegexSplit": "true",
    "spark.sql.legacy.parquet.returnNullStructIfAllFieldsMissing": "true",
}


# What the published rows and files depend on: every session gets these, whatever else it is given
# (session.get_spark forces them over a user's --conf).
INVARIANTS = {
    **SAME_ON_EVERY_LINE,
    # order_date is derived with from_utc_timestamp, which is only right in a UTC session.
    "spark.sql.session.timeZone": "UTC",
    # Timestamps as Parquet INT64 microseconds, not the deprecated INT96 Spark writes by default:
    # readers that turn INT96 into nanoseconds (delta-rs, pandas) overflow outside 1677-2262.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


# Adaptive query execution: on for every session; an incremental run turns it off while it stages
# and verifies (pipeline._adaptive_execution, incremental.adaptive_execution).
ADAPTIVE_EXECUTION = "spark.sql.adaptive.enabled"


def base_conf(settings: SparkSettings) -> dict[str, str]:
    """Settings every run needs, wherever the session comes from."""
    return {
        **INVARIANTS,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.autoBroadcastJoinThreshold": str(settings.broadcast_threshold_mb * 1024 * 1024),
        ADAPTIVE_EXECUTION: "true",
        # Small Delta logs do not need 50 tasks to replay.
        "spark.databricks.delta.snapshotPartitions": "2",
        **settings.conf,
    }


@dataclass(frozen=True)
class SubmitSettings:
    """What spark-submit needs besides the master, the application and its arguments."""

    name: str
    master: str
    driver_memory: str
    packages: tuple[str, ...]
    exclude_packages: tuple[str, ...]
    conf: dict[str, str]

    def options(self) -> list[str]:
        options = [
            "--name",
            self.name,
            "--master",
            self.master,
            "--driver-memory",
            self.driver_memory,
            "--packages",
            ",".join(self.packages),
            "--exclude-packages",
            ",".join(self.exclude_packages),
        ]
        for key, value in self.conf.items():
            options += ["--conf", f"{key}={value}"]
        return options


def submit_settings(
    config_path: str | None, base_dir: str | Path | None = None, line: jars.SparkLine | None = None
) -> SubmitSettings:
    """The options for one launch on `line` (default: the installed pyspark's).

    A relative `spark.ivy_dir` is anchored at `base_dir` (default: here): a scheduler passes the
    project checkout, since its workers run spark-submit from a directory of their own. The
    Deequ jar is loaded when set-up recorded it as resolved into that line's cache.
    """
    settings = load_config(config_path).spark
    line = line or jars.installed_line()
    ivy = jars.ivy_dir(Path(base_dir or Path.cwd()) / settings.ivy_dir, line)
    return SubmitSettings(
        name=settings.app_name,
        master=settings.master,
        driver_memory=settings.driver_memory,
        packages=tuple(jars.packages(line, jars.deequ_resolved(ivy.parent, line))),
        exclude_packages=jars.EXCLUDED_PACKAGES,
        conf={
            **DELTA_CONF,
            "spark.jars.ivy": str(ivy),
            "spark.ui.showConsoleProgress": "false",
            **base_conf(settings),
        },
    )


def submit_options(config_path: str | None) -> list[str]:
    return submit_settings(config_path).options()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    print("\n".join(submit_options(args.config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
