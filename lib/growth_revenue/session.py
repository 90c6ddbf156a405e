"""SparkSession creation: the only place that knows about packages, Ivy and platforms."""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import SparkSession

from growth_revenue import jars
from growth_revenue.config import SparkSettings
from growth_revenue.launch import DELTA_CONF, base_conf

# pydeequ refuses to import without it; set here so no caller's shell has to.
os.environ.setdefault("SPARK_VERSION", jars.SPARK_MINOR)


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def get_spark(settings: SparkSettings) -> SparkSession:
    """The session for one run: Databricks' own, the one spark-submit started, or a local one."""
    if on_databricks():
        spark = SparkSession.builder.getOrCreate()  # Delta is built in; packages are cluster libraries.
    else:
        builder = SparkSession.builder.appName(settings.app_name)
        if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit: we own the JVM
            builder = _local_builder(builder, settings)
        spark = builder.getOrCreate()
    # A local builder and spark-submit.sh (via launch.py) already carry base_conf, and a user's own
    # --conf must win over it; only the UTC session zone is a correctness invariant, so it is forced.
    runtime = base_conf(settings) if on_databricks() else {}
    runtime["spark.sql.session.timeZone"] = "UTC"
    for key, value in runtime.items():
        if not key.startswith("spark.databricks."):
            spark.conf.set(key, value)
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _local_builder(builder: SparkSession.Builder, settings: SparkSettings) -> SparkSession.Builder:
    builder = (
        builder.master(settings.master)
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.jars.ivy", str(Path(settings.ivy_dir).absolute()))
        .config("spark.jars.excludes", ",".join(jars.EXCLUDED_PACKAGES))
        # Set directly rather than via configure_spark_with_delta_pip, so jars.py stays the
        # one place the coordinates are spelled (a test checks they match the delta-spark wheel).
        .config("spark.jars.packages", ",".join(jars.packages(settings.include_deequ_package)))
    )
    for key, value in {**DELTA_CONF, **base_conf(settings)}.items():
        builder = builder.config(key, value)
    return builder


def stop_spark(spark: SparkSession) -> None:
    """Stop cleanly: a py4j callback server left running (pydeequ starts one) keeps the process alive."""
    gateway = spark.sparkContext._gateway
    if gateway is not None:
        gateway.shutdown_callback_server()
    if not on_databricks():
        spark.stop()
