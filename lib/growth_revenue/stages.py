"""What each stage of a run cost: wall time, Spark jobs, rows read and written, bytes.

A run is cut into named stages, one after the other (`Stages.start` ends the previous one). Each
stage tags the Spark jobs it starts with a job group, so the cost of a stage is that of the jobs
its actions started: lazily built frames are charged to the stage whose action ran them.

The figures come from Spark's own status store, which every SparkContext keeps whether or not
the UI is on: recording them runs no Spark job and reads no file. The listener that fills the
store is asynchronous, so the stages are summed once, when the run ends, after the store has
caught up. Only with `observability.stage_metrics_dir` set is anything written (one JSON file per
run); without it the cost is a few calls into the driver's memory per stage.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.sql import SparkSession

log = logging.getLogger("growth_revenue")

_GROUP = "spark.jobGroup.id"
_DESCRIPTION = "spark.job.description"
_INTERRUPT = "spark.job.interruptOnCancel"
_DRAIN_MILLIS = 10_000  # how long the end of a run waits for the status store to catch up


@dataclass(frozen=True)
class StageCost:
    name: str
    seconds: float
    spark_jobs: int
    rows_read: int  # rows the stage's Spark tasks read from files
    rows_written: int  # rows its tasks wrote to files (Delta writes)
    bytes_written: int
    bytes_shuffled: int  # shuffle bytes written between its Spark stages

    def summary(self) -> str:
        return (
            f"stage {self.name}: {self.seconds:.1f}s, {self.spark_jobs} Spark jobs, {self.rows_read:,} rows read, "
            f"{self.rows_written:,} rows written ({_mib(self.bytes_written)}), {_mib(self.bytes_shuffled)} "
            f"shuffled"
        )


def total(costs: tuple[StageCost, ...] | list[StageCost]) -> StageCost:
    """Every stage of a run summed as one."""
    return StageCost(
        "run",
        *(
            sum(getattr(c, f) for c in costs)
            for f in ("seconds", "spark_jobs", "rows_read", "rows_written", "bytes_written", "bytes_shuffled")
        ),
    )


class Stages:
    """The stages of one run, timed as they pass (a context manager).

    On leaving it, even by an exception, the caller gets its job group back and every stage's cost
    is summed, logged, written to `metrics_dir` when that is set, and kept in `costs`.
    """

    def __init__(self, spark: SparkSession, run_id: str, metrics_dir: str | None = None):
        self._sc, self._run_id, self._metrics_dir = spark.sparkContext, run_id, metrics_dir
        self._caller = tuple(self._sc.getLocalProperty(key) for key in (_GROUP, _DESCRIPTION, _INTERRUPT))
        self._laps: list[tuple[str, str, float]] = []  # (name, job group, seconds)
        self._current: tuple[str, float] | None = None
        self.costs: tuple[StageCost, ...] = ()

    def __enter__(self) -> Stages:
        return self

    def __exit__(self, *_exc) -> None:
        self.costs = self._finish()

    def start(self, name: str) -> None:
        self._end_current()
        self._current = (name, time.perf_counter())
        self._sc.setJobGroup(self._group(len(self._laps)), f"{self._run_id}: {name}")

    def _finish(self) -> tuple[StageCost, ...]:
        self._end_current()
        group, description, interrupt = self._caller
        for key, value in ((_GROUP, group), (_DESCRIPTION, description), (_INTERRUPT, interrupt)):
            self._sc.setLocalProperty(key, value)  # type: ignore[arg-type]  # None removes the property
        costs = self._costs()
        for cost in costs:
            log.info("%s", cost.summary())
        if self._metrics_dir is not None:
            path = Path(self._metrics_dir) / f"{self._run_id}.stages.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"run_id": self._run_id, "stages": [asdict(c) for c in costs]}, indent=2))
            log.info("wrote the costs of the stages to %s", path)
        return costs

    def _group(self, index: int) -> str:
        return f"{self._run_id}-stage-{index}"

    def _end_current(self) -> None:
        if self._current is not None:
            name, started = self._current
            self._laps.append((name, self._group(len(self._laps)), time.perf_counter() - started))
            self._current = None

    def _costs(self) -> tuple[StageCost, ...]:
        jsc = self._sc._jsc.sc()
        try:  # Spark-internal too; without it the last stage's figures may lag, never fail the run
            jsc.listenerBus().waitUntilEmpty(_DRAIN_MILLIS)
        except Exception as exc:  # noqa: BLE001 - Spark-internal: a lag in the figures, never a failed run
            log.debug("status store not drained: %s", exc)
        # The public status tracker has job and stage ids only; the task metrics sit in the status
        # store (Spark-internal, stable across 3.5 and 4.x). Skipped stages (a reused shuffle) are zeros.
        tracker, store = self._sc.statusTracker(), jsc.statusStore()
        costs = []
        for name, group, seconds in self._laps:
            jobs = tracker.getJobIdsForGroup(group)
            stage_ids = {s for job in jobs if (info := tracker.getJobInfo(job)) for s in info.stageIds}
            sums = dict.fromkeys(("rows_read", "rows_written", "bytes_written", "bytes_shuffled"), 0)
            for stage_id in stage_ids:
                try:
                    stage = store.lastStageAttempt(stage_id)
                except Exception:  # noqa: BLE001 - evicted from the store (spark.ui.retainedStages)
                    continue
                sums["rows_read"] += stage.inputRecords()
                sums["rows_written"] += stage.outputRecords()
                sums["bytes_written"] += stage.outputBytes()
                sums["bytes_shuffled"] += stage.shuffleWriteBytes()
            costs.append(StageCost(name, round(seconds, 3), len(jobs), **sums))
        return tuple(costs)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
