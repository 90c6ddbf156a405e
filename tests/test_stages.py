"""Per-stage costs of a run: what each stage's Spark jobs read, wrote and shuffled, and where it goes."""

import dataclasses
import datetime as dt
import json
import logging

import pytest
from lakehouse import Lakehouse
from rows import customer, order, ts

from growth_revenue import quality, stages, tables
from growth_revenue.checks import Check, Level, Rule
from growth_revenue.config import Observability
from growth_revenue.contract import ContractError
from growth_revenue.exit_codes import ExitCode

AS_OF = dt.date(2026, 11, 25)
ORDERS = [
    order("O1", "C1", "2026-11-20 10:00:00", amount="100.00", ingested_at="2026-11-25 06:00:00"),
    order("O2", "C2", "2026-11-21 10:00:00", amount="50.00"),
    order("O3", "C2", "2026-11-22 10:00:00", status="cancelled", amount="70.00"),
]
CUSTOMERS = [customer("C1", segment="enterprise"), customer("C2", segment="smb")]
STAGES_OF_A_PUBLISHED_RUN = [
    "read and decide",
    "customer profiles",
    "stage mart",
    "verify",
    "publish report rows",
    "publish customer state",
    "publish mart",
    "publish quarantine",
    "publish report",
    "publish dq results",
    "mart upkeep",
]


@pytest.fixture
def lakehouse(spark, tmp_path):
    lakehouse = Lakehouse(spark, tmp_path, as_of=AS_OF, run_at=ts("2026-11-25 07:00:00"))
    lakehouse.write(orders=ORDERS, customers=CUSTOMERS)
    return lakehouse


@pytest.fixture
def job_log():
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("growth_revenue")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)  # not `logger.level = ...`: setLevel also clears the logger's cached verdicts
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_run_reports_each_stage_and_writes_them_as_json_when_asked(spark, config, lakehouse, job_log):
    metrics_dir = lakehouse.root / "run-logs"
    config = dataclasses.replace(config, observability=Observability(stage_metrics_dir=str(metrics_dir)))

    outcome = lakehouse.run(config)

    assert outcome.exit_code == ExitCode.OK
    assert [cost.name for cost in outcome.stages] == STAGES_OF_A_PUBLISHED_RUN
    by_name = {cost.name: cost for cost in outcome.stages}
    assert by_name["publish mart"].rows_written == 2  # O1 and O2; O3 is cancelled
    assert by_name["publish mart"].bytes_written > 0
    assert by_name["stage mart"].spark_jobs > 0 and by_name["stage mart"].rows_read >= len(ORDERS)
    lines = [r.getMessage() for r in job_log if r.getMessage().startswith("stage ")]
    assert [line.split(":")[0] for line in lines] == [f"stage {name}" for name in STAGES_OF_A_PUBLISHED_RUN]
    written = json.loads((metrics_dir / f"{outcome.run_id}.stages.json").read_text())
    assert written == {"run_id": outcome.run_id, "stages": [dataclasses.asdict(c) for c in outcome.stages]}


def test_without_a_stage_metrics_dir_nothing_is_written_and_the_costs_are_still_kept(spark, config, lakehouse):
    assert config.observability.stage_metrics_dir is None  # the default
    before = set(lakehouse.root.rglob("*"))

    outcome = lakehouse.run(config)

    assert not list(lakehouse.root.rglob("*.stages.json"))
    new = [p for p in lakehouse.root.rglob("*") if p not in before]
    assert not [p for p in new if "out" not in p.relative_to(lakehouse.root).parts]
    assert stages.total(outcome.stages).spark_jobs > 0


def test_the_callers_job_group_is_restored_and_gets_none_of_the_runs_jobs(spark, config, lakehouse):
    sc = spark.sparkContext
    sc.setJobGroup("notebook-cell", "the caller's own group")
    try:
        assert lakehouse.run(config).exit_code == ExitCode.OK
        assert sc.getLocalProperty("spark.jobGroup.id") == "notebook-cell"
        assert sc.statusTracker().getJobIdsForGroup("notebook-cell") == []

        # A run that fails on its input restores it too.
        lakehouse.rewrite(tables.RAW_ORDERS, lambda orders: orders.drop("amount"))
        with pytest.raises(ContractError):
            lakehouse.run(config)
        assert sc.getLocalProperty("spark.jobGroup.id") == "notebook-cell"
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)


def test_a_stage_is_charged_for_the_rows_its_own_actions_read_and_write(spark, tmp_path):
    frame = spark.range(7).withColumnRenamed("id", "n")
    with stages.Stages(spark, "unit-run") as timed:
        timed.start("write")
        frame.write.parquet(str(tmp_path / "numbers"))
        timed.start("read")
        spark.read.parquet(str(tmp_path / "numbers")).collect()
        timed.start("idle")

    write, read, idle = timed.costs
    assert (write.name, write.rows_written, read.rows_read) == ("write", 7, 7)
    assert read.rows_written == 0
    assert (idle.spark_jobs, idle.rows_read, idle.rows_written) == (0, 0, 0)
    assert stages.total(timed.costs).rows_written == 7


@pytest.mark.parametrize("engine", ["spark", "deequ"])
def test_the_checks_measured_side_by_side_keep_their_order_and_charge_their_jobs_to_the_callers_stage(
    spark, engine, request
):
    if engine == "deequ":
        request.getfixturevalue("deequ")  # the real jar: required on the default line, skipped where not served
    checks = [
        Check(
            tables.MART,
            f"check {n}",
            Level.ERROR,
            spark.range(n).selectExpr("cast(id as double) as revenue"),
            (Rule("non_negative", "revenue", "revenue is never negative"),),
        )
        for n in (3, 4, 5)
    ]
    with stages.Stages(spark, "unit-run") as timed:
        timed.start("verify")
        results = quality.verify(spark, checks, engine)

    assert [r.check.name for r in results] == ["check 3", "check 4", "check 5"]
    (verify,) = timed.costs
    assert verify.spark_jobs >= len(checks)  # each check runs at least one job, in the caller's job group
