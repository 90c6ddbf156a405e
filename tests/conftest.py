"""One SparkSession for the whole test run (UI off, few shuffle partitions), plus row builders."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from growth_revenue.config import load_config
from growth_revenue.sample_data import CUSTOMERS_SCHEMA, ORDERS_SCHEMA
from growth_revenue.session import get_spark, stop_spark

UTC = dt.timezone.utc


@pytest.fixture(scope="session")
def config():
    return load_config()


@pytest.fixture(scope="session")
def spark(config):
    settings = dataclasses.replace(config.spark, master="local[2]", shuffle_partitions=2, driver_memory="2g")
    session = get_spark(settings)
    yield session
    stop_spark(session)


def ts(text: str) -> dt.datetime:
    """'2026-11-24 23:59:59' as a UTC instant."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def order(order_id, customer_id="C1", order_ts="2026-11-20 12:00:00", status="completed", amount="10.00",
          updated_at=None, ingested_at=None):
    """One raw_orders row; updated_at and _ingested_at default to order_ts."""
    updated = ts(updated_at or order_ts)
    return (order_id, customer_id, ts(order_ts), status, None if amount is None else Decimal(amount), updated,
            ts(ingested_at) if ingested_at else updated)


def customer(customer_id, email=None, segment="smb", is_test_user=False, updated_at="2026-01-01 00:00:00"):
    """One raw_customers row."""
    return (customer_id, email, segment, is_test_user, ts(updated_at))


@pytest.fixture
def make_orders(spark):
    return lambda rows: spark.createDataFrame(rows, ORDERS_SCHEMA)


@pytest.fixture
def make_customers(spark):
    return lambda rows: spark.createDataFrame(rows, CUSTOMERS_SCHEMA)
