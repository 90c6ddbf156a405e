"""The bench's random-key shape is what it claims: keys, files and changes that no filter can skip.

The incremental run's cost on real raw tables depends on these properties, so a generator that
quietly produced time-ordered ids or sorted files would flatter every number measured on it.
"""

import datetime as dt
import itertools
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import raw_data

from growth_revenue import tables

AS_OF = dt.date(2026, 11, 25)
pytestmark = pytest.mark.slow  # the bench's own data: checked on the default line only


@pytest.fixture(scope="module")
def random_raw(spark, tmp_path_factory):
    shape = raw_data.Shape(orders=40_000, customers=4_000, days=100, as_of=AS_OF, keys=raw_data.RANDOM)
    rows_per_file, raw_data.ROWS_PER_FILE = raw_data.ROWS_PER_FILE, 5_000  # several files at this scale
    try:
        return raw_data.ensure_raw(spark, shape, tmp_path_factory.mktemp("bench") / shape.name, regenerate=False)
    finally:
        raw_data.ROWS_PER_FILE = rows_per_file


def _orders(spark, root):
    return spark.read.format("delta").load(str(root / tables.RAW_ORDERS))


def test_random_order_ids_look_like_uuids_and_are_unrelated_to_order_time(spark, random_raw):
    orders = _orders(spark, random_raw.history).where(F.col("order_id").isNotNull())
    ids = [row.order_id for row in orders.orderBy("order_ts").limit(2000).collect()]
    assert all(len(i) == 36 and [len(part) for part in i.split("-")] == [8, 4, 4, 4, 12] for i in ids)
    # In time order the ids rise about as often as they fall (sequential ids always rise).
    rises = sum(a < b for a, b in itertools.pairwise(ids))
    assert 0.4 < rises / (len(ids) - 1) < 0.6


def test_random_history_is_one_commit_whose_files_each_span_every_ingestion_time(spark, random_raw):
    path = str(random_raw.history / tables.RAW_ORDERS)
    assert spark.sql(f"DESCRIBE HISTORY delta.`{path}`").count() == 1
    spans = (
        spark.read.format("delta")
        .load(path)
        .groupBy(F.input_file_name())
        .agg(F.min("_ingested_at").alias("first"), F.max("_ingested_at").alias("last"))
        .collect()
    )
    first, last = min(r["first"] for r in spans), max(r["last"] for r in spans)
    # Each file covers almost the whole history's landing times, so min/max statistics skip none.
    assert len(spans) > 4 and all((r["last"] - r["first"]) / (last - first) > 0.9 for r in spans)


def test_random_new_day_changes_orders_of_any_age(spark, random_raw):
    nightly = _orders(spark, random_raw.nightly)
    changed = (
        nightly.groupBy("order_id")
        .agg(F.min("order_ts").alias("placed"), F.max("_ingested_at").alias("at"))
        .where(F.col("at") > dt.datetime(2026, 11, 24, 6, tzinfo=dt.timezone.utc))
        .where(F.col("placed") < dt.datetime(2026, 11, 14, tzinfo=dt.timezone.utc))
    )
    ages = [(AS_OF - row.placed.date()).days for row in changed.collect()]
    assert len(ages) > 4 and max(ages) > 60  # the sequential shape never goes past 8 weeks
