"""Both supported Spark lines publish the same rows from the same raw data (jars.LINES).

Each line's job runs through ./spark-submit.sh in its own venv (`make venv SPARK_LINE=...`), so
the rows compared were computed by Spark 3.5 + Delta 3.3 and Spark 4.1 + Delta 4.4 respectively.
"""

import subprocess

import pytest
from demo import AS_OF, ROOT, job_env, small_job_config
from lakehouse import Lakehouse
from pyspark.sql import functions as F
from rows import order

from growth_revenue import jars, tables

# Not every_line: the test itself runs the job on every line, whichever line pytest runs on.
pytestmark = pytest.mark.slow

# Columns that name the run rather than hold a result.
RUN_COLUMNS = ("run_id", "computed_at", "mart_version")


def run_line(lakehouse, config, line):
    python = ROOT / f".venv-{line.name}" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"no venv for Spark {line.name}: run `make venv jars SPARK_LINE={line.name}`")
    env = {**job_env(), "SPARK_LINE": line.name, "GROWTH_PYTHON": str(python)}
    command = [
        str(ROOT / "spark-submit.sh"),
        "--config",
        str(config),
        *lakehouse.argv(out=lakehouse.root / f"out-{line.name}"),
        "--as-of",
        str(AS_OF),
        "--run-timestamp",
        "2026-11-25T07:00:00Z",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    return log


def rows(lakehouse, line, table):
    frame = lakehouse.output(table, out=lakehouse.root / f"out-{line.name}")
    frame = frame.drop(*RUN_COLUMNS)
    # repr of every value: a Decimal's scale, a timestamp's microseconds and a null all count.
    return frame.columns, sorted(repr(tuple(row)) for row in frame.collect())


def test_every_line_publishes_byte_identical_mart_quarantine_and_report_rows(spark, make_orders, tmp_path):
    lakehouse = Lakehouse(spark, tmp_path)
    lakehouse.write_sample(AS_OF, orders=3000, customers=300)
    # Revenue orders that cannot be published, so the quarantine has rows to compare too.
    make_orders(
        [
            order(None, ingested_at="2026-11-25 05:00:00"),
            order("Q-no-amount", amount=None, ingested_at="2026-11-25 05:00:00"),
            order("Q-no-ts", order_ts="2026-11-20 12:00:00", ingested_at="2026-11-25 05:00:00"),
        ]
    ).withColumn("order_ts", F.when(F.col("order_id") == "Q-no-ts", None).otherwise(F.col("order_ts"))).write.format(
        "delta"
    ).mode("append").save(str(lakehouse.raw_path(tables.RAW_ORDERS)))
    config = small_job_config(tmp_path / "job.yaml")
    logs = {line.name: run_line(lakehouse, config, line) for line in jars.LINES.values()}

    for line in jars.LINES.values():  # each run says which engine verified: Deequ wherever set-up fetched it
        engine = "deequ" if jars.deequ_resolved(ROOT / ".ivy", line) else "spark"
        assert f"constraints with the {engine} engine" in logs[line.name]
    reference, *others = jars.LINES.values()
    for table in (tables.MART, tables.QUARANTINE, tables.REPORT):
        expected = rows(lakehouse, reference, table)
        assert expected[1], f"{table} is empty: the comparison would prove nothing"
        for line in others:
            assert rows(lakehouse, line, table) == expected, f"{table}: Spark {line.name} differs"
