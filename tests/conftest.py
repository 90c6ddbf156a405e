"""One SparkSession for the whole test run (UI off, few shuffle partitions) and frame builders."""

from __future__ import annotations

import dataclasses

import pytest
from pyspark.sql import SparkSession

from growth_revenue import jars, quality
from growth_revenue.config import load_config
from growth_revenue.sample_data import CUSTOMERS_SCHEMA, ORDERS_SCHEMA
from growth_revenue.session import get_spark, stop_spark


@pytest.fixture(scope="session")
def config():
    return load_config()


# The suite's runs are a few rows each, and compiling generated code for every query costs more CPU
# than running it: this session interprets (Spark's own test suites run both ways). The subprocess
# tests (spark-submit.sh, the cross-line run, the demo, the bench) run the job as configured.
INTERPRETED = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}


@pytest.fixture(scope="session")
def spark(config):
    settings = dataclasses.replace(
        config.spark,
        master="local[2]",
        shuffle_partitions=2,
        driver_memory="4g",
        conf={**config.spark.conf, **INTERPRETED},
    )
    session = get_spark(settings)
    yield session
    stop_spark(session)


@pytest.fixture(scope="session")
def deequ(spark):
    """For tests of the real Deequ engine: its jar must be there on the default line; a line whose
    Deequ build set-up could not fetch (recorded in .ivy/<line>/resolved.json) skips them."""
    if quality.deequ_available(spark):
        return True
    line = jars.installed_line()
    if line.name == jars.DEFAULT_LINE:
        pytest.fail(f"Deequ ({line.deequ_package}) is not on the classpath of the default line {line.name}")
    pytest.skip(f"Spark {line.name}: {line.deequ_package} did not resolve at set-up")


@pytest.fixture(autouse=True, scope="module")
def fresh_caches_per_module():
    """Drops cached frames and Delta snapshots after each module: its tables were in its own tmp dirs.

    One session runs the whole suite over hundreds of small Delta tables. In CI (2026-11-26) its 2g
    heap once filled until a broadcast of a few rows failed; cached snapshots are the likely cause.
    """
    yield
    spark = SparkSession.getActiveSession()
    if spark is not None:
        spark.catalog.clearCache()
        spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()


@pytest.fixture
def make_orders(spark):
    return lambda rows: spark.createDataFrame(rows, ORDERS_SCHEMA)


@pytest.fixture
def make_customers(spark):
    return lambda rows: spark.createDataFrame(rows, CUSTOMERS_SCHEMA)
