"""End to end through ./spark-submit.sh in a subprocess: exit codes and the published tables."""

import subprocess

import pytest
from chispa import assert_df_equality
from demo import AS_OF, ROOT, job_env, small_job_config
from lakehouse import Lakehouse

from growth_revenue import jars, tables

# Every line runs the exit codes; a rerun and a backfill go through the same launcher on every
# line and are checked in process on each (test_backfill, test_pipeline), so only here.
pytestmark = pytest.mark.slow
every_line = pytest.mark.every_line

NIGHTLY = "2026-11-25T07:00:00Z"


@pytest.fixture(scope="module")
def lakehouse(spark, tmp_path_factory):
    lakehouse = Lakehouse(spark, tmp_path_factory.mktemp("lakehouse"))
    lakehouse.write_sample(AS_OF, orders=3000, customers=300)
    lakehouse.job_config = small_job_config(lakehouse.root / "test.yaml", shuffle_partitions=4)
    return lakehouse


def submit(lakehouse, *args):
    command = [str(ROOT / "spark-submit.sh"), "--config", str(lakehouse.job_config), *lakehouse.argv(), *args]
    done = subprocess.run(command, cwd=ROOT, env=job_env(), capture_output=True, text=True, timeout=600)
    # Spark's PythonRunner merges the driver's stderr into its stdout: read both as one log.
    done.log = done.stdout + done.stderr
    return done


@every_line
def test_nightly_run_exits_0_and_publishes_what_the_rules_give(spark, lakehouse, config):
    done = submit(lakehouse, "--as-of", str(AS_OF), "--run-timestamp", NIGHTLY)
    assert done.returncode == 0, done.log[-3000:]
    assert f"{tables.REPORT} as of {AS_OF}" in done.stdout
    assert "rule 3 test users" in done.log and "wrote" in done.log
    # Deequ verifies wherever set-up fetched its jar for this line (on the default line, always);
    # lambda-free, so py4j's callback server, which would keep the process alive, never starts.
    line = jars.installed_line()
    engine = "deequ" if jars.deequ_resolved(ROOT / ".ivy", line) else "spark"
    assert line.name != jars.DEFAULT_LINE or engine == "deequ"
    assert f"verifying 8 constraints with the {engine} engine" in done.log
    assert "Callback server started" not in done.log

    assert_df_equality(
        lakehouse.output(tables.MART),
        lakehouse.expected_mart(config.rules),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    report = lakehouse.output(tables.REPORT)
    assert report.where(f"as_of_date = DATE'{AS_OF}'").count() >= 2
    assert lakehouse.output(tables.DQ_RESULTS).where("status = 'Failure' AND level = 'Error'").count() == 0


def test_rerun_of_the_same_as_of_leaves_the_report_identical(spark, lakehouse):
    snapshot = lambda: sorted(  # noqa: E731
        tuple(r) for r in lakehouse.output(tables.REPORT).drop("computed_at", "run_id", "mart_version").collect()
    )
    before = snapshot()
    done = submit(lakehouse, "--as-of", str(AS_OF), "--run-timestamp", NIGHTLY)
    assert done.returncode == 0, done.log[-3000:]
    assert snapshot() == before


def test_a_backfill_range_reaches_the_job_and_publishes_each_date(spark, lakehouse):
    done = submit(lakehouse, "--as-of-range", "2026-11-23", "2026-11-24", "--run-timestamp", NIGHTLY)
    assert done.returncode == 0, done.log[-3000:]
    assert "backfill 2026-11-23..2026-11-24: 2 published, 0 quality gate failed" in done.log
    dates = {r[0] for r in lakehouse.output(tables.REPORT).select("as_of_date").distinct().collect()}
    assert {str(d) for d in dates} >= {"2026-11-23", "2026-11-24", str(AS_OF)}


@every_line
def test_stale_data_exits_3_and_publishes_nothing(spark, lakehouse):
    before = (lakehouse.version(tables.MART), lakehouse.version(tables.REPORT))
    done = submit(lakehouse, "--run-timestamp", "2026-11-28T07:00:00Z")  # as-of defaults to 2026-11-28
    assert done.returncode == 3, done.log[-3000:]
    assert "FAILED [Error] raw_orders: newest _ingested_at is within the freshness bound" in done.log
    assert (lakehouse.version(tables.MART), lakehouse.version(tables.REPORT)) == before


@every_line
def test_missing_raw_table_exits_1_naming_the_table(lakehouse):
    done = submit(lakehouse, "--raw-orders", str(lakehouse.root / "nowhere"), "--run-timestamp", NIGHTLY)
    assert done.returncode == 1
    assert "raw_orders: no table at" in done.log


@every_line
def test_future_as_of_exits_2(lakehouse):
    done = submit(lakehouse, "--as-of", "2026-11-26", "--run-timestamp", NIGHTLY)
    assert done.returncode == 2
    assert "after the run date" in done.log
