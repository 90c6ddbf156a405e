"""One SparkSession for the whole test run (UI off, few shuffle partitions) and frame builders."""

from __future__ import annotations

import dataclasses

import pytest
from pyspark.sql import SparkSession

from growth_revenue.config import load_config
from growth_revenue.sample_data import CUSTOMERS_SCHEMA, ORDERS_SCHEMA
from growth_revenue.session import get_spark, stop_spark


@pytest.fixture(scope="session")
def config():
    return load_config()


@pytest.fixture(scope="session")
def spark(config):
    settings = dataclasses.replace(config.spark, master="local[2]", shuffle_partitions=2, driver_memory="4g")
    session = get_spark(settings)
    yield session
    stop_spark(session)


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
