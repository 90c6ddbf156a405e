"""One SparkSession for the whole test run (UI off, few shuffle partitions) and frame builders."""

from __future__ import annotations

import dataclasses

import pytest

from growth_revenue.config import load_config
from growth_revenue.sample_data import CUSTOMERS_SCHEMA, ORDERS_SCHEMA
from growth_revenue.session import get_spark, stop_spark


@pytest.fixture(scope="session")
def config():
    return load_config()


@pytest.fixture(scope="session")
def spark(config):
    settings = dataclasses.replace(config.spark, master="local[2]", shuffle_partitions=2, driver_memory="2g")
    session = get_spark(settings)
    yield session
    stop_spark(session)


@pytest.fixture
def make_orders(spark):
    return lambda rows: spark.createDataFrame(rows, ORDERS_SCHEMA)


@pytest.fixture
def make_customers(spark):
    return lambda rows: spark.createDataFrame(rows, CUSTOMERS_SCHEMA)
