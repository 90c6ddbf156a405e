"""Two typed accessors pyspark's annotations leave Optional, for code that is past the point where
they can be None."""

from __future__ import annotations

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
