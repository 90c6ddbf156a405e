"""Crash safety: a run killed anywhere while publishing, two runs at once, conflicts and reruns.

The lakehouse of every case: as-of D-1 (2026-11-24) was published by its nightly run, then more
orders landed (later versions of earlier orders too, a cancellation of an order in D-1's window
and an order without an amount, which is quarantined), and the run for D (2026-11-25) starts.
"Old" is what the outputs held before that run, "new" what an uninterrupted run publishes; the
run-specific columns (run_id, computed_at, mart_version) are left out of every comparison.

The in-process tests come first: the subprocess cases (slow) run in the background meanwhile.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import pytest
from chispa import assert_df_equality
from delta.exceptions import ConcurrentAppendException
from demo import AS_OF, ROOT, job_env, small_job_config
from lakehouse import Lakehouse
from pyspark.sql import functions as F
from rows import order, ts

from growth_revenue import cli, delta_log, metrics, tables, transforms, writing
from growth_revenue.locations import Location
from growth_revenue.metrics import MetricsRepository, published_metrics, to_deequ_json

D, D1 = AS_OF, AS_OF - dt.timedelta(days=1)
NIGHTLY = {D1: "2026-11-24T07:00:00Z", D: "2026-11-25T07:00:00Z"}
D1_LANDED_UNTIL = dt.datetime(2026, 11, 24, 6, tzinfo=dt.timezone.utc)  # what D-1's run saw
RUN_COLUMNS = ("run_id", "computed_at", "mart_version")
METRICS = "metrics file"
PUBLISHED_IN_ORDER = (tables.MART, tables.QUARANTINE, tables.REPORT, tables.DQ_RESULTS, METRICS)
CONVERGED = (tables.MART, tables.QUARANTINE, tables.REPORT)  # what a rerun must make equal to an uninterrupted run
JOB_TIMEOUT = 600


# --- the lakehouse every case starts from --------------------------------------------------


@dataclasses.dataclass
class World:
    lakehouse: Lakehouse  # the raw tables as of D; root/raw_d1: raw_orders as D-1's run saw it
    config_file: Path
    base: Path  # outputs after D-1's run
    expected: Path  # outputs after an uninterrupted run for D on a copy of base
    window_days: int
    old: dict = dataclasses.field(default_factory=dict)  # output -> content in base
    new: dict = dataclasses.field(default_factory=dict)  # output -> content in expected
    frames: dict = dataclasses.field(default_factory=dict)  # CONVERGED table -> expected DataFrame, cached
    background: Background | None = None  # the subprocess cases, running while in-process tests do

    @property
    def root(self) -> Path:
        return self.lakehouse.root

    def argv(self, out: Path, as_of: dt.date = D) -> list[str]:
        raw_orders = self.root / "raw_d1" / tables.RAW_ORDERS if as_of == D1 else None
        return [
            "--config",
            str(self.config_file),
            *self.lakehouse.argv(out, raw_orders=raw_orders),
            "--as-of",
            str(as_of),
            "--run-timestamp",
            NIGHTLY[as_of],
        ]

    def copy_of_base(self, directory: Path) -> Path:
        return Path(shutil.copytree(self.base, directory / "out"))


@pytest.fixture(scope="module")
def world(request, spark, config, tmp_path_factory) -> World:
    """D-1 published, D's data landed, D's uninterrupted outputs; the selected subprocess cases started.

    The subprocess cases (a JVM each, ~20 s to start) are launched as soon as D-1 is published and
    run while this process computes the expected outputs and runs the in-process tests; each test
    then checks its own case.
    """
    root = tmp_path_factory.mktemp("crash")
    world = World(
        lakehouse=Lakehouse(spark, root),
        config_file=small_job_config(root / "job.yaml"),
        base=root / "base",
        expected=root / "expected",
        window_days=config.rules.report_window_days,
    )
    # The sample data with 8 days of history instead of 75: ~10 order_date partitions, so every
    # mart write (and every run) is quicker.
    world.lakehouse.write_sample(D, orders=600, customers=60, history_days=8)
    landed = world.lakehouse.raw(tables.RAW_ORDERS)
    landed.where(F.col("_ingested_at") <= F.lit(D1_LANDED_UNTIL)).write.format("delta").save(
        str(root / "raw_d1" / tables.RAW_ORDERS)
    )
    assert cli.main_in_session(spark, world.argv(world.base, D1)) == 0

    # What landed for D besides the generator's later rows: a cancellation of an order counted in
    # D-1's window (so D-1's snapshot cannot be recomputed from the new mart) and an order
    # without an amount (quarantined).
    start, end = transforms.report_window(D1, world.window_days)
    settled = (
        landed.groupBy("order_id")
        .agg(F.max("_ingested_at").alias("last"))
        .where(F.col("last") <= F.lit(D1_LANDED_UNTIL))
    )
    counted = (
        read(spark, world.base, tables.MART)
        .where(F.col("order_date").between(start, end))
        .join(settled, "order_id")
        .orderBy("order_id")
        .first()
    )
    late = "2026-11-25 05:00:00"
    cancelled = (counted["order_id"], counted["customer_id"], counted["order_ts"], "cancelled", counted["revenue"])
    world.lakehouse.land(
        late,
        [
            (*cancelled, ts(late), ts(late)),
            order("O9999999", None, "2026-11-24 20:00:00", amount=None, updated_at=late),
        ],
    )

    world.background = Background(world, selected_cases(request))
    request.addfinalizer(world.background.stop)

    shutil.copytree(world.base, world.expected)
    assert cli.main_in_session(spark, world.argv(world.expected)) == 0
    world.old, world.new = outputs(spark, world.base), outputs(spark, world.expected)
    world.frames = {table: read(spark, world.expected, table).drop(*RUN_COLUMNS).cache() for table in CONVERGED}
    request.addfinalizer(lambda: [frame.unpersist() for frame in world.frames.values()])
    for output in PUBLISHED_IN_ORDER:
        assert world.old[output] != world.new[output], f"{output}: the run for D must change it to tell old from new"
    new_mart = read(spark, world.expected, tables.MART)
    d1_snapshot = read(spark, world.base, tables.REPORT).where(F.col("as_of_date") == F.lit(D1))
    recomputed = transforms.revenue_by_segment(new_mart, D1, world.window_days, dt.datetime.now(), "")
    assert content(recomputed) != content(d1_snapshot), (
        "D-1's snapshot must not be reproducible from the new mart, or checking mart_version proves nothing"
    )
    return world


def read(spark, out: Path, table: str):
    return spark.read.format("delta").load(str(out / table))


def content(df) -> Counter:
    """The rows as a multiset, run-specific columns left out."""
    return Counter(tuple(row) for row in df.drop(*RUN_COLUMNS).collect())


def outputs(spark, out: Path) -> dict:
    """Every output's content; reading each is itself the check that it is a readable table."""
    found = {table: content(read(spark, out, table)) for table in PUBLISHED_IN_ORDER if table != METRICS}
    found[METRICS] = MetricsRepository(spark, str(out / tables.METRICS_REPOSITORY)).load()
    return found


def state_of(world: World, found: dict) -> dict[str, str]:
    return {
        output: "old"
        if found[output] == world.old[output]
        else "new"
        if found[output] == world.new[output]
        else "neither"
        for output in PUBLISHED_IN_ORDER
    }


def assert_each_report_snapshot_names_the_mart_version_it_was_computed_from(spark, out: Path, window_days: int):
    report = read(spark, out, tables.REPORT)
    for (as_of,) in report.select("as_of_date").distinct().collect():
        snapshot = report.where(F.col("as_of_date") == F.lit(as_of))
        versions = [row[0] for row in snapshot.select("mart_version").distinct().collect()]
        assert len(versions) == 1 and versions[0] is not None, f"snapshot {as_of}: mart versions {versions}"
        mart_then = spark.read.format("delta").option("versionAsOf", versions[0]).load(str(out / tables.MART))
        recomputed = transforms.revenue_by_segment(mart_then, as_of, window_days, dt.datetime.now(), "recomputed")
        assert content(recomputed) == content(snapshot), (
            f"snapshot {as_of} was not computed from {tables.MART} version {versions[0]}"
        )


def assert_same(actual, expected):
    assert_df_equality(
        actual.drop(*RUN_COLUMNS), expected.drop(*RUN_COLUMNS), ignore_row_order=True, ignore_nullable=True
    )


def assert_converged(spark, world: World, out: Path):
    """mart, quarantine and report hold what the uninterrupted run published."""
    for table in CONVERGED:
        assert_same(read(spark, out, table), world.frames[table])


# --- jobs in subprocesses ------------------------------------------------------------------


class Job:
    """`python -m growth_revenue.cli` in its own process group (the driver and its JVM), log read live."""

    started: ClassVar[list[Job]] = []  # every job of this module, so none outlives it

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "growth_revenue.cli", *argv],
            cwd=ROOT,
            env=job_env(),
            text=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._arrived: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        Job.started.append(self)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            self._arrived.put(line)
        self._arrived.put(None)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = JOB_TIMEOUT) -> bool:
        """True as soon as a line matches; False if the job ended (or timed out) first."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._arrived.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                return False
            if re.search(pattern, line):
                return True
        return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)

    def finish(self, timeout: float = JOB_TIMEOUT) -> int:
        try:
            self.proc.wait(timeout)
        finally:
            self.kill()
            self.proc.wait()
        self._reader.join(30)
        return self.proc.returncode

    def written(self) -> set[str]:
        """The outputs this job logged as committed (each line comes after its commit)."""
        done = {table for table in PUBLISHED_IN_ORDER if re.search(rf"wrote \S+/{table}: Delta version", self.log)}
        return done | ({METRICS} if "saved metrics for" in self.log else set())


@dataclasses.dataclass(frozen=True)
class KillPoint:
    name: str
    after: str  # the log line that triggers the kill
    delay_ms: tuple[int, int]  # then a seeded random delay in this range
    seed: int
    still_old: tuple[str, ...] = ()  # outputs that cannot have been written yet at this point

    def __str__(self):
        return self.name


KILL_POINTS = [
    KillPoint("during-mart-write", rf"publishing {tables.MART} to", (100, 600), 1),
    KillPoint(
        "between-mart-and-report",
        rf"wrote \S+/{tables.MART}: ",
        (0, 0),
        2,
        still_old=(tables.REPORT, tables.DQ_RESULTS, METRICS),
    ),
    KillPoint("during-report-write", rf"publishing {tables.REPORT} to", (100, 600), 3),
    KillPoint("during-dq-write", rf"publishing {tables.DQ_RESULTS} to", (100, 600), 4),
    KillPoint("during-metrics-save", rf"wrote \S+/{tables.DQ_RESULTS}: ", (0, 30), 5),
]
CONCURRENT = "concurrent"


@dataclasses.dataclass
class KilledRun:
    out: Path
    job: Job
    reached: bool  # the trigger line came and the kill was sent
    exit_code: int


@dataclasses.dataclass
class ConcurrentRuns:
    out: Path
    jobs: list[Job]
    exit_codes: list[int]


def kill_at(world: World, point: KillPoint) -> KilledRun:
    out = world.copy_of_base(world.root / "cases" / point.name)
    job = Job(world.argv(out))
    try:
        reached = job.wait_for(point.after)
        if reached:
            time.sleep(random.Random(point.seed).randint(*point.delay_ms) / 1000)
            job.kill()
    finally:
        code = job.finish()
        (out.parent / "job.log").write_text(job.log)
    return KilledRun(out, job, reached, code)


def run_two_at_once(world: World) -> ConcurrentRuns:
    out = world.copy_of_base(world.root / "cases" / CONCURRENT)
    jobs = [Job(world.argv(out)), Job(world.argv(out))]
    try:
        codes = [job.finish() for job in jobs]
    finally:
        for number, job in enumerate(jobs):
            job.kill()
            (out.parent / f"job{number}.log").write_text(job.log)
    return ConcurrentRuns(out, jobs, codes)


def selected_cases(request) -> list[str]:
    """The subprocess cases among this session's selected tests, in test order."""
    cases = []
    for item in request.session.items:
        if item.module is not request.module:
            continue
        params = item.callspec.params if hasattr(item, "callspec") else {}
        if "point" in params:
            cases.append(params["point"].name)
        elif item.function is test_two_runs_of_the_same_as_of_at_once_end_published_or_retried_and_leave_one_snapshot:
            cases.append(CONCURRENT)
    return cases


class Background:
    """Runs the subprocess cases on two threads: at most three jobs (JVMs) at a time on a 2-core machine."""

    def __init__(self, world: World, cases: list[str]):
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="crash-case")
        points = {point.name: point for point in KILL_POINTS}
        self._futures = {
            case: self._pool.submit(run_two_at_once, world)
            if case == CONCURRENT
            else self._pool.submit(kill_at, world, points[case])
            for case in cases
        }

    def result(self, case: str):
        return self._futures[case].result(timeout=3 * JOB_TIMEOUT)

    def stop(self):
        for future in self._futures.values():
            future.cancel()
        for job in Job.started:
            job.kill()
        self._pool.shutdown(wait=True)


# --- conflicts, in process ----------------------------------------------------------------


def _without_backoff(world, out):
    """The CLI's config and request for D, with no wait between retries."""
    config, requests = cli.prepare(world.argv(out))
    no_backoff = dataclasses.replace(config.publish, conflict_backoff_seconds=0.0)
    return dataclasses.replace(config, publish=no_backoff), requests


def _conflict():
    message = "[DELTA_CONCURRENT_APPEND] Files were added by a concurrent update (test)"
    if "message" in inspect.signature(ConcurrentAppendException).parameters:  # pyspark 4
        return ConcurrentAppendException(message=message)
    return ConcurrentAppendException(desc=message, stackTrace="")  # pyspark 3.5


def test_a_conflict_on_the_mart_write_is_retried_and_the_run_publishes(spark, world, tmp_path, monkeypatch, capsys):
    out = world.copy_of_base(tmp_path)
    real_overwrite, mart_writes = writing.overwrite, []

    def conflicting_once(df, location, *args, **kwargs):
        if location.path.endswith(tables.MART):
            mart_writes.append(location)
            if len(mart_writes) == 1:
                raise _conflict()
        return real_overwrite(df, location, *args, **kwargs)

    monkeypatch.setattr(writing, "overwrite", conflicting_once)
    cli.configure_logging()
    assert cli.execute(spark, *_without_backoff(world, out)) == 0

    assert len(mart_writes) == 2
    log = capsys.readouterr().err
    assert "another run committed first (ConcurrentAppendException); retry 1 of 3 in 0.0s" in log
    assert re.search(rf"wrote \S+/{tables.MART}: Delta version \d+, .*after 1 retried conflict\(s\)", log)
    assert state_of(world, outputs(spark, out)) == dict.fromkeys(PUBLISHED_IN_ORDER, "new")


def test_a_report_write_conflicting_on_every_attempt_exits_4_and_keeps_the_previous_report(
    spark, world, tmp_path, monkeypatch, capsys
):
    out = world.copy_of_base(tmp_path)
    report_before = delta_log.version_of(spark, Location(path=str(out / tables.REPORT)))
    report_writes = []

    def always_conflicting(df, location, *args, **kwargs):
        report_writes.append(location)
        raise _conflict()

    monkeypatch.setattr(writing, "replace_where", always_conflicting)
    cli.configure_logging()
    assert cli.execute(spark, *_without_backoff(world, out)) == 4

    assert len(report_writes) == 4  # the first attempt and 3 retries
    log = capsys.readouterr().err
    assert re.search(rf"conflict: \S+/{tables.REPORT}: another run changed the table .* retried 3 time\(s\)", log)
    assert delta_log.version_of(spark, Location(path=str(out / tables.REPORT))) == report_before
    # The mart went ahead; the report, the check results and the metrics are as they were, and
    # the report still names the mart version it was computed from.
    assert state_of(world, outputs(spark, out)) == {
        tables.MART: "new",
        tables.QUARANTINE: "new",
        tables.REPORT: "old",
        tables.DQ_RESULTS: "old",
        METRICS: "old",
    }
    assert_each_report_snapshot_names_the_mart_version_it_was_computed_from(spark, out, world.window_days)


# --- rerun ----------------------------------------------------------------------------------


def test_rerunning_a_published_as_of_republishes_identical_content_and_one_snapshot(spark, world, tmp_path, capsys):
    out = Path(shutil.copytree(world.expected, tmp_path / "out"))  # D published
    cli.configure_logging()
    assert cli.main_in_session(spark, world.argv(out)) == 0
    [rerun_id] = re.findall(r"run (\S+): published, exit 0", capsys.readouterr().err)

    assert_converged(spark, world, out)
    snapshot = read(spark, out, tables.REPORT).where(F.col("as_of_date") == F.lit(D))
    assert {row[0] for row in snapshot.select("run_id").distinct().collect()} == {rerun_id}
    assert snapshot.count() == sum(1 for row in world.new[tables.REPORT] if row[0] == D)
    assert_each_report_snapshot_names_the_mart_version_it_was_computed_from(spark, out, world.window_days)


# --- killed while publishing (subprocesses) -----------------------------------------------


@pytest.mark.slow
@pytest.mark.resilience
@pytest.mark.parametrize("point", KILL_POINTS, ids=str)
def test_a_run_killed_while_publishing_leaves_each_output_complete_and_a_rerun_converges(spark, world, point):
    killed = world.background.result(point.name)
    out, job = killed.out, killed.job
    assert killed.reached, f"the job ended before '{point.after}':\n{job.log[-3000:]}"
    assert killed.exit_code == -signal.SIGKILL, f"the job was not killed but exited {killed.exit_code}"

    # Every output is readable and at its old or its new complete content, published in order.
    states = state_of(world, outputs(spark, out))
    print(f"{point}: {states}")
    assert set(states.values()) <= {"old", "new"}, states
    order = "".join(states[output][0] for output in PUBLISHED_IN_ORDER)
    assert re.fullmatch("n*o*", order), f"an output is new after an older one: {states}"
    assert all(states[output] == "new" for output in job.written()), (states, job.written())
    assert all(states[output] == "old" for output in point.still_old), states
    assert_each_report_snapshot_names_the_mart_version_it_was_computed_from(spark, out, world.window_days)

    # A plain rerun publishes what an uninterrupted run does.
    assert cli.main_in_session(spark, world.argv(out)) == 0
    assert_converged(spark, world, out)
    mart_version = delta_log.version_of(spark, Location(path=str(out / tables.MART)))
    snapshot = read(spark, out, tables.REPORT).where(F.col("as_of_date") == F.lit(D))
    assert {row[0] for row in snapshot.select("mart_version").distinct().collect()} == {mart_version}
    history = MetricsRepository(spark, str(out / tables.METRICS_REPOSITORY)).load()
    assert history == world.new[METRICS] and history[-1].as_of == D


# --- two runs at once (subprocesses) -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.resilience
def test_two_runs_of_the_same_as_of_at_once_end_published_or_retried_and_leave_one_snapshot(spark, config, world):
    runs = world.background.result(CONCURRENT)
    out = runs.out
    conflicts = [line.strip() for job in runs.jobs for line in job.lines if "another run committed first" in line]
    print("\n".join([f"exit codes {runs.exit_codes}", *conflicts]))
    for code, job in zip(runs.exit_codes, runs.jobs, strict=True):
        assert code == 0 or (code == 4 and "retried" in job.log), f"exit {code}:\n{job.log[-3000:]}"
    published = {m.group(1) for job in runs.jobs for m in re.finditer(r"run (\S+): published, exit 0", job.log)}

    report = read(spark, out, tables.REPORT).where(F.col("as_of_date") == F.lit(D))
    expected_report = world.frames[tables.REPORT].where(F.col("as_of_date") == F.lit(D))
    assert report.count() == expected_report.count()  # one row per segment: one snapshot
    [(run_id,)] = report.select("run_id").distinct().collect()
    assert run_id in published
    assert_same(report, expected_report)
    assert_each_report_snapshot_names_the_mart_version_it_was_computed_from(spark, out, world.window_days)

    mart = read(spark, out, tables.MART)
    assert mart.groupBy("order_id").count().where("count > 1").count() == 0
    assert_df_equality(mart, world.lakehouse.expected_mart(config.rules), ignore_row_order=True, ignore_nullable=True)
    assert MetricsRepository(spark, str(out / tables.METRICS_REPOSITORY)).load() == world.new[METRICS]


# --- the metrics file swap ------------------------------------------------------------------


def _staging(path: Path, text: str, age_seconds: float) -> Path:
    staging = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    staging.write_text(text)
    mtime = time.time() - age_seconds
    os.utime(staging, (mtime, mtime))
    return staging


def _day(day: int) -> metrics.RunMetrics:
    return published_metrics(dt.date(2026, 11, day), 1000 + day, 100.0 * day)


def test_a_metrics_save_killed_between_delete_and_rename_is_recovered_from_its_staging_file(spark, tmp_path):
    path = tmp_path / tables.METRICS_REPOSITORY
    repo = MetricsRepository(spark, str(path))
    repo.save(_day(22))
    repo.save(_day(23))
    # Left behind: an older complete staging file (a save killed before its delete), the save of
    # the 24th killed between delete and rename, and a newer one killed mid-write.
    _staging(path, to_deequ_json([_day(22)]), age_seconds=3600)
    _staging(path, to_deequ_json([_day(22), _day(23), _day(24)]), age_seconds=1800)
    _staging(path, to_deequ_json([_day(22), _day(23), _day(24), _day(25)])[:150], age_seconds=900)
    path.unlink()

    assert MetricsRepository(spark, str(path)).load() == [_day(22), _day(23), _day(24)]
    assert path.is_file()  # moved into place
    repo.save(_day(25))
    assert repo.load() == [_day(22), _day(23), _day(24), _day(25)]
    leftovers = [p.name for p in tmp_path.iterdir() if not p.name.endswith(".crc")]
    assert leftovers == [tables.METRICS_REPOSITORY]  # the stale staging files are removed


def test_staging_files_beside_an_intact_metrics_file_are_ignored_and_only_stale_ones_removed(spark, tmp_path):
    path = tmp_path / tables.METRICS_REPOSITORY
    repo = MetricsRepository(spark, str(path))
    repo.save(_day(22))
    stale = _staging(path, to_deequ_json([_day(22), _day(23)]), age_seconds=3600)  # a save killed before its delete
    fresh = _staging(path, to_deequ_json([_day(22), _day(24)]), age_seconds=0)  # maybe another run's save, right now
    assert repo.load() == [_day(22)]
    repo.save(_day(23))
    assert repo.load() == [_day(22), _day(23)]
    assert not stale.exists() and fresh.exists()


class _StagingTakenOnce:
    """A FileSystem whose first rename finds the staging file gone: another run's load, finding no
    file between this save's delete and rename, moved it into place."""

    def __init__(self, fs):
        self._fs, self.renames = fs, 0

    def rename(self, source, target):
        self.renames += 1
        if self.renames == 1:
            self._fs.rename(source, target)  # the other run's recovery
            return False
        return self._fs.rename(source, target)

    def __getattr__(self, name):
        return getattr(self._fs, name)


def test_a_save_whose_staging_file_another_run_moved_into_place_saves_again(spark, tmp_path):
    path = tmp_path / tables.METRICS_REPOSITORY
    repo = MetricsRepository(spark, str(path))
    repo.save(_day(22))
    repo._fs = _StagingTakenOnce(repo._fs)
    repo.save(_day(23))
    assert repo._fs.renames == 2
    assert repo.load() == [_day(22), _day(23)]


def test_a_first_save_killed_mid_write_leaves_an_empty_history(spark, tmp_path):
    path = tmp_path / tables.METRICS_REPOSITORY
    _staging(path, to_deequ_json([_day(22)])[:-20], age_seconds=0)
    assert MetricsRepository(spark, str(path)).load() == []
    assert not path.exists()
