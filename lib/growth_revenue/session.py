"""SparkSession creation: the only place that knows about packages, Ivy and platforms."""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

from growth_revenue import jars
from growth_revenue.config import SparkSettings
from growth_revenue.launch import DELTA_CONF, INVARIANTS, base_conf

# pydeequ refuses to import without it. Set from the installed pyspark, never from the caller's shell.
os.environ["SPARK_VERSION"] = jars.installed_line().name


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def get_spark(settings: SparkSettings) -> SparkSession:
    """The session for one run: Databricks' own, the one spark-submit started, or a local one."""
    if on_databricks():
        spark = SparkSession.builder.getOrCreate()  # Delta is built in; packages are cluster libraries.
    else:
        builder = SparkSession.builder.appName(settings.app_name)
        if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit: we own the JVM
            line = jars.installed_line()
            builder = _local_builder(builder, settings, line, jars.deequ_resolved(settings.ivy_dir, line))
        spark = builder.getOrCreate()
    # A local builder and spark-submit.sh (via launch.py) already carry base_conf, and a user's own
    # --conf must win over it; launch.INVARIANTS decide what is published, so they are forced.
    runtime = base_conf(settings) if on_databricks() else {}
    runtime.update(INVARIANTS)
    for key, value in runtime.items():
        if not key.startswith("spark.databricks."):
            spark.conf.set(key, value)
    spark.sparkContext.setLogLevel("WARN")
    return spark


def local_session(settings: SparkSettings, line: jars.SparkLine, include_deequ: bool) -> SparkSession:
    """A local session with exactly these packages (set-up uses it to fetch them)."""
    return _local_builder(SparkSession.builder.appName(settings.app_name), settings, line, include_deequ).getOrCreate()


def _local_builder(
    builder: SparkSession.Builder, settings: SparkSettings, line: jars.SparkLine, include_deequ: bool
) -> SparkSession.Builder:
    builder = (
        builder.master(settings.master)
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.jars.ivy", str(jars.ivy_dir(settings.ivy_dir, line)))
        .config("spark.jars.excludes", ",".join(jars.EXCLUDED_PACKAGES))
        # Set directly rather than via configure_spark_with_delta_pip, so jars.py stays the
        # one place the coordinates are spelled (a test checks they match the delta-spark wheel).
        .config("spark.jars.packages", ",".join(jars.packages(line, include_deequ)))
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
