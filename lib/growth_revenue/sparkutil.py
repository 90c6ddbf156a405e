"""Small helpers around the Spark session: typed accessors pyspark's annotations leave Optional,
session settings for the span of one action, and one-line error reasons."""

from __future__ import annotations

import contextlib
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession


def jvm(spark: SparkSession) -> Any:
    """The session's py4j view of the JVM (None only for a context that never started)."""
    view = spark.sparkContext._jvm
    if view is None:
        raise RuntimeError("the SparkContext has no JVM: it was stopped")
    return view


def single_row(df: DataFrame) -> Row:
    """The one row of a query that always has one (an aggregate without grouping, DESCRIBE DETAIL)."""
    row = df.first()
    if row is None:
        raise ValueError(f"expected one row, the query returned none: {df}")
    return row


def first_line(exc: Exception) -> str:
    """An exception's message cut to its first line for one-line reasons; its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def session_conf(spark: SparkSession, settings: dict[str, str]):
    """Spark session settings for the duration of one write or action; the previous values come back after it."""
    previous: dict[str, str | None] = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)
