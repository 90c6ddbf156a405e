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


def base_conf(settings: SparkSettings) -> dict[str, str]:
    """Settings every run needs, wherever the session comes from."""
    return {
        # order_date is derived with from_utc_timestamp, which is only right in a UTC session.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.autoBroadcastJoinThreshold": str(settings.broadcast_threshold_mb * 1024 * 1024),
        "spark.sql.adaptive.enabled": "true",
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
            "--name", self.name,
            "--master", self.master,
            "--driver-memory", self.driver_memory,
            "--packages", ",".join(self.packages),
            "--exclude-packages", ",".join(self.exclude_packages),
        ]
        for key, value in self.conf.items():
            options += ["--conf", f"{key}={value}"]
        return options


def submit_settings(config_path: str | None, base_dir: str | Path | None = None) -> SubmitSettings:
    """The options for one launch; a relative `spark.ivy_dir` is anchored at `base_dir` (default: here).

    A scheduler passes the project checkout as `base_dir`: its workers run spark-submit from a
    directory of their own.
    """
    settings = load_config(config_path).spark
    return SubmitSettings(
        name=settings.app_name,
        master=settings.master,
        driver_memory=settings.driver_memory,
        packages=tuple(jars.packages(settings.include_deequ_package)),
        exclude_packages=jars.EXCLUDED_PACKAGES,
        conf={
            **DELTA_CONF,
            "spark.jars.ivy": str(Path(base_dir or Path.cwd()) / settings.ivy_dir),
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
