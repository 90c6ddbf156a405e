"""What one timed step cost: wall time, the peak resident memory of a process, and Spark's work.

Peak memory is the kernel's high-water mark of resident memory (VmHWM), reset before the step
(writing 5 to /proc/<pid>/clear_refs), so each step reports its own peak. For Spark that is the
JVM (driver and, in local mode, the executors); for DuckDB, this Python process.

Spark's work is summed over the stages of the jobs the step started (tagged with a job group):
rows read from files, shuffle bytes, rows written. Bytes read from files are not among them:
Parquet's vectored reads bypass the counter Spark's input metrics come from, so the files and
bytes a scan selected are taken from the scan's own metrics (growth_revenue.scanstats) instead.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pyspark.sql import SparkSession

from growth_revenue import sparkutil

T = TypeVar("T")
MIB = 2**20


def jvm_pid(spark: SparkSession) -> int:
    return sparkutil.jvm(spark).java.lang.ProcessHandle.current().pid()


def measured(action: Callable[[], T], pid: int, spark: SparkSession | None = None) -> tuple[T, dict]:
    """Runs `action`; returns its value and {seconds, peak_rss_mib[, spark]} (Spark's work if `spark`)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    group = f"bench-{uuid.uuid4().hex[:8]}"
    if spark is not None:
        spark.sparkContext.setJobGroup(group, "bench step")
    started = time.perf_counter()
    value = action()
    sample: dict[str, object] = {
        "seconds": time.perf_counter() - started,
        "peak_rss_mib": _status_kib(pid, "VmHWM") / 1024,
    }
    if spark is not None:
        sample["spark"] = spark_work(spark, group)
    return value, sample


def available_mib() -> float:
    """Memory the kernel could give a new allocation now (MemAvailable)."""
    line = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemAvailable:"))
    return int(line.split()[1]) / 1024


def _status_kib(pid: int, field: str) -> int:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


def spark_work(spark: SparkSession, group: str) -> dict:
    """Jobs, rows read, shuffle MiB and rows written by the jobs of `group` (from Spark's status store)."""
    tracker = spark.sparkContext.statusTracker()
    # The status store keeps each stage's task metrics; it is Spark-internal, but the stable public
    # tracker only has task counts. Skipped stages (a shuffle reused) report zeros.
    store = spark.sparkContext._jsc.sc().statusStore()
    jobs = tracker.getJobIdsForGroup(group)
    stage_ids = {
        stage for job in jobs if (info := tracker.getJobInfo(job)) for stage in info.stageIds
    }  # a stage can serve two jobs
    totals = {"jobs": len(jobs), "input_rows": 0, "shuffle_mib": 0.0, "output_rows": 0}
    for stage_id in stage_ids:
        stage = store.lastStageAttempt(stage_id)
        totals["input_rows"] += stage.inputRecords()
        totals["shuffle_mib"] += stage.shuffleWriteBytes() / MIB
        totals["output_rows"] += stage.outputRecords()
    return totals
