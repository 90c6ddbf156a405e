"""End to end through ./spark-submit.sh in a subprocess: exit codes and the published tables."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chispa import assert_df_equality

from growth_revenue import io, sample_data, tables, transforms
from growth_revenue.io import Location

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 11, 25)
NIGHTLY = "2026-11-25T07:00:00Z"


@pytest.fixture(scope="module")
def lakehouse(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("lakehouse")
    sample_data.write_lakehouse(spark, str(root / "raw"), AS_OF, orders=3000, customers=300,
                                ingested_until=dt.datetime(2026, 11, 25, 6, tzinfo=dt.timezone.utc))
    config = root / "test.yaml"
    config.write_text("spark:\n  master: local[2]\n  driver_memory: 1g\n  shuffle_partitions: 4\n"
                      f"  ivy_dir: {ROOT / '.ivy'}\n")
    return root, config


def submit(lakehouse, *args):
    root, config = lakehouse
    command = [str(ROOT / "spark-submit.sh"), "--config", str(config),
               "--raw-orders", str(root / "raw" / tables.RAW_ORDERS),
               "--raw-customers", str(root / "raw" / tables.RAW_CUSTOMERS),
               "--output-dir", str(root / "out"), *args]
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_VERSION", "PYSPARK_GATEWAY_PORT")}
    env["GROWTH_PYTHON"] = sys.executable
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    # Spark's PythonRunner merges the driver's stderr into its stdout: read both as one log.
    done.log = done.stdout + done.stderr
    return done


def version(spark, lakehouse, name):
    return io.version_of(spark, Location(path=str(lakehouse[0] / "out" / name)))


def read(spark, lakehouse, name):
    return spark.read.format("delta").load(str(lakehouse[0] / "out" / name))


def test_nightly_run_exits_0_and_publishes_what_the_rules_give(spark, lakehouse, config):
    done = submit(lakehouse, "--as-of", str(AS_OF), "--run-timestamp", NIGHTLY)
    assert done.returncode == 0, done.log[-3000:]
    assert f"{tables.REPORT} as of {AS_OF}" in done.stdout
    assert "rule 3 test users" in done.log and "wrote" in done.log

    raw = lakehouse[0] / "raw"
    orders = spark.read.format("delta").load(str(raw / tables.RAW_ORDERS))
    customers = spark.read.format("delta").load(str(raw / tables.RAW_CUSTOMERS))
    rules = config.rules
    expected = transforms.build_mart(orders, customers, rules.revenue_statuses, rules.test_email_domains,
                                     rules.unknown_segment, rules.reporting_timezone)
    assert_df_equality(read(spark, lakehouse, tables.MART), expected.select(*transforms.MART_COLUMNS),
                       ignore_row_order=True, ignore_nullable=True)
    report = read(spark, lakehouse, tables.REPORT)
    assert report.where(f"as_of_date = DATE'{AS_OF}'").count() >= 2
    assert read(spark, lakehouse, tables.DQ_RESULTS).where("status = 'Failure' AND level = 'Error'").count() == 0


def test_rerun_of_the_same_as_of_leaves_the_report_identical(spark, lakehouse):
    snapshot = lambda: sorted(  # noqa: E731
        tuple(r) for r in read(spark, lakehouse, tables.REPORT).drop("computed_at", "run_id").collect())
    before = snapshot()
    done = submit(lakehouse, "--as-of", str(AS_OF), "--run-timestamp", NIGHTLY)
    assert done.returncode == 0, done.log[-3000:]
    assert snapshot() == before


def test_stale_data_exits_3_and_publishes_nothing(spark, lakehouse):
    before = (version(spark, lakehouse, tables.MART), version(spark, lakehouse, tables.REPORT))
    done = submit(lakehouse, "--run-timestamp", "2026-11-28T07:00:00Z")  # as-of defaults to 2026-11-28
    assert done.returncode == 3, done.log[-3000:]
    assert "FAILED [Error] raw_orders: newest _ingested_at is within the freshness bound" in done.log
    assert (version(spark, lakehouse, tables.MART), version(spark, lakehouse, tables.REPORT)) == before


def test_missing_raw_table_exits_1_naming_the_table(lakehouse):
    done = submit(lakehouse, "--raw-orders", str(lakehouse[0] / "nowhere"), "--run-timestamp", NIGHTLY)
    assert done.returncode == 1
    assert "raw_orders: no table at" in done.log


def test_future_as_of_exits_2(lakehouse):
    done = submit(lakehouse, "--as-of", "2026-11-26", "--run-timestamp", NIGHTLY)
    assert done.returncode == 2
    assert "after the run date" in done.log
