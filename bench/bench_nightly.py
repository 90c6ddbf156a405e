"""Benchmark of the nightly revenue job: full rebuild, incremental nightly, the report, and its peers.

    .venv-3.5/bin/python bench/bench_nightly.py       (make bench): 10M orders over 365 days, every scenario
    .venv-3.5/bin/python bench/bench_nightly.py --orders 50000000 --scenarios incremental,duckdb
    .venv-3.5/bin/python bench/bench_nightly.py --orders 100000000 --scenarios full --driver-memory 8g
    .venv-3.5/bin/python bench/bench_nightly.py --orders 1000000 --scenarios '' --scaling

Scenarios, each timed --repeat times in this one process and one SparkSession (driver memory set
before the JVM starts):
  full           pipeline.run with full_refresh=True on the history + the new day, into an empty output
  incremental    the nightly run on the new day, from the outputs of the previous night's full run on
                 the history alone (a copy of them is restored before each timed run)
  incremental30  the same on a 30-day history with the same daily volume
  full_random, incremental_random
                 full and incremental on the random-key shape: UUID-like order ids, a history bulk-loaded
                 in one commit, changes to orders of any age (bench/raw_data.py)
  report         transforms.revenue_by_segment over the published mart, with the files and bytes it read
  naive          the 30-day report straight from the raw tables in plain PySpark: what the job replaces
  duckdb         DuckDB running the same rules over the same Parquet files: the mart as Parquet + the report
  --scaling      also the incremental nightly over 30, 90, 365 and 730 days of history at this scale's daily
                 volume, and over this scale's history at 4x and 16x its daily volume (one run each)

The raw data (bench/raw_data.py) is generated once per shape under --out and reused. Results
are merged into bench/results/<scale>.json; docs/benchmarks.md and README's Performance lines are
rendered from every stored scale (bench/results_doc.py). Paths are relative to the repository root unless absolute.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import measure
import peers
import raw_data
import results_doc
from pyspark.sql import SparkSession
from raw_data import RawData, Shape

from growth_revenue import jars, pipeline, quality, scanstats, sparkutil, stages, tables, transforms
from growth_revenue.config import Config, load_config
from growth_revenue.exit_codes import ExitCode
from growth_revenue.locations import Location
from growth_revenue.session import get_spark, stop_spark

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc
SHORT_HISTORY_DAYS = 30
SCALING_DAYS = (30, 90, 365, 730)  # history lengths at the same daily volume
SCALING_VOLUMES = (4, 16)  # daily volumes, as multiples of the scale's, over its history
log = logging.getLogger("bench")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--orders", type=int, default=10_000_000, help="orders in the history")
    parser.add_argument("--customers", type=int, help="customers (default: orders / 10)")
    parser.add_argument("--days", type=int, default=365, help="days of history before the new day")
    parser.add_argument(
        "--scenarios", default=",".join(results_doc.SCENARIOS), help="comma-separated subset of: %(default)s"
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help=f"also the nightly over {', '.join(map(str, SCALING_DAYS))} days of history at this daily volume "
        f"and at {' and '.join(f'{k}x' for k in SCALING_VOLUMES)} the volume (docs/benchmarks.md 'Scaling')",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each scenario; the median is reported")
    parser.add_argument("--driver-memory", default="8g", help="JVM heap of the local session")
    parser.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        default=dt.date(2026, 11, 25),
        help="the nightly run's report date; it runs at 07:00 UTC on it",
    )
    parser.add_argument("--config", default="conf/local.yaml", help="job config (session sizing, rules)")
    parser.add_argument("--out", default="data/bench", help="raw data (kept between runs) and run outputs")
    parser.add_argument("--results", default="bench/results", help="directory of the stored results, per scale")
    parser.add_argument("--doc", default="docs/benchmarks.md", help="page rendered from the results ('' to skip)")
    parser.add_argument(
        "--readme",
        default="README.md",
        help="README whose Performance lines are rewritten from the results ('' to skip)",
    )
    parser.add_argument("--regenerate", action="store_true", help="rewrite the raw data even if it matches")
    args = parser.parse_args(argv)
    args.scenarios = set(filter(None, args.scenarios.split(",")))
    if unknown := args.scenarios - set(results_doc.SCENARIOS):
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}")
    args.customers = args.customers or max(1, args.orders // 10)
    if min(args.repeat, args.customers) < 1 or args.orders < args.days:
        parser.error("--repeat and --customers must be at least 1, and --orders at least --days")
    if "incremental30" in args.scenarios and args.days <= SHORT_HISTORY_DAYS:
        parser.error(f"incremental30 compares with a {SHORT_HISTORY_DAYS}-day history: --days must be more")
    for name in ("config", "out", "results", "doc", "readme"):
        if getattr(args, name):
            setattr(args, name, _rooted(getattr(args, name)))
    return args


def _rooted(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else ROOT / p


@dataclasses.dataclass(frozen=True)
class Bench:
    spark: SparkSession
    config: Config
    as_of: dt.date
    work: Path  # run outputs of this invocation
    jvm_pid: int


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    config = load_config(args.config)
    # measure.spark_work reads each run's stages from the status store; by default it keeps 1,000,
    # dropping skipped stages first, fewer than a session of several runs makes.
    retain = {"spark.ui.retainedStages": "100000", "spark.ui.retainedJobs": "100000"}
    settings = dataclasses.replace(
        config.spark,
        driver_memory=args.driver_memory,
        ivy_dir=str(ROOT / config.spark.ivy_dir),
        conf={**config.spark.conf, **retain},
    )
    shape = Shape(args.orders, args.customers, args.days, args.as_of)
    invocation = {
        "at": f"{dt.datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
        "command": shlex.join(["bench/bench_nightly.py", *argv]),
        "git": _git_head(),
        "load_start": os.getloadavg()[0],
        "driver_memory": args.driver_memory,
        "shuffle_partitions": settings.shuffle_partitions,
        "lookback_hours": config.incremental.lookback_hours,
    }
    work = args.out / "work" / shape.name
    shutil.rmtree(work, ignore_errors=True)
    wanted, repeat = args.scenarios, args.repeat
    data, results = {}, {}

    spark = get_spark(settings)
    try:
        invocation["machine"] = machine_facts(spark)
        bench = Bench(spark, config, args.as_of, work, measure.jvm_pid(spark))

        def prepared(wanted_shape: Shape) -> RawData:
            """The raw tables of `wanted_shape`, generated unless kept, and described in the results."""
            raw_tables = raw_data.ensure_raw(spark, wanted_shape, args.out / "raw" / wanted_shape.name, args.regenerate)
            data[results_doc.data_key(wanted_shape.days, wanted_shape.keys)] = described(raw_tables)
            return raw_tables

        if wanted & {"full", "incremental", "report", "naive", "duckdb"}:
            raw = prepared(shape)
        if "full" in wanted:
            results["full"] = full_rebuild(bench, raw, repeat)
        if "incremental" in wanted:
            results["incremental"] = incremental_nightly(bench, raw, repeat)
        if "incremental_aqe" in wanted:
            results["incremental_aqe"] = incremental_nightly(
                with_adaptive_execution(bench), raw, repeat, setup=not runs_of(results, "incremental")
            )
        if "incremental30" in wanted:
            results["incremental30"] = incremental_nightly(bench, prepared(shape.scaled_to(SHORT_HISTORY_DAYS)), repeat)
        if wanted & {"full_random", "incremental_random"}:
            raw_random = prepared(dataclasses.replace(shape, keys=raw_data.RANDOM))
            if "full_random" in wanted:
                results["full_random"] = full_rebuild(bench, raw_random, repeat)
            if "incremental_random" in wanted:
                results["incremental_random"] = incremental_nightly(bench, raw_random, repeat)
        if "report" in wanted:
            results["report"] = report_alone(bench, raw, published_mart(bench, raw, results), repeat)
        if "naive" in wanted:
            results["naive"] = naive_spark(bench, raw, repeat)
        if "duckdb" in wanted:
            results["duckdb"] = duckdb_peer(bench, raw, repeat)
        if args.scaling:
            results["scaling"] = scaling(
                bench, shape, lambda s: raw_data.ensure_raw(spark, s, args.out / "raw" / s.name, args.regenerate)
            )

        # Stored and rendered before the session stops: stopping fails if a scenario took the JVM down.
        invocation["load_end"] = os.getloadavg()[0]
        scale = {**dataclasses.asdict(shape), "as_of": shape.as_of.isoformat()}
        del scale["keys"]  # a scale holds both key shapes
        log.info("results stored in %s", results_doc.store(args.results, scale, data, results, invocation))
        print(results_doc.write_pages(args.results, args.doc, args.readme))
        log.info("wrote %s", ", ".join(str(page) for page in (args.doc, args.readme) if page) or "no page")
    finally:
        stop_spark(spark)

    failed = sorted(name for name, result in results.items() if result.get("error"))
    if failed:
        log.error("failed: %s (recorded in the results)", ", ".join(failed))
    return 1 if failed else 0


# --- scenarios -------------------------------------------------------------------------------


def repeated(bench: Bench, times: int, once, setup=None) -> dict:
    """{runs: [sample...], setup: sample} from `setup` then `once` run `times` times.

    A failure is a result too (a 100M rebuild running out of memory is what a target asks about):
    it is recorded with the runs done so far, and the other scenarios still run.
    """
    result: dict = {"runs": []}
    try:
        if setup is not None:
            result["setup"] = setup()
        for i in range(times):
            result["runs"].append(once())
            log.info("run %d/%d: %.1f s", i + 1, times, result["runs"][-1]["seconds"])
    except Exception as exc:  # recorded, see above
        log.exception("scenario failed")
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        result["error"] = f"{type(exc).__name__}: " + " / ".join(lines[:3]) + _jvm_exit(bench.spark)
    return result


def _jvm_exit(spark: SparkSession) -> str:
    """Why py4j lost the JVM, if it did: Spark exits with 52 when a task runs out of memory."""
    gateway = spark.sparkContext._gateway
    code = gateway.proc.poll() if gateway is not None else None  # the JVM this process launched
    if code is None:
        return ""
    return f" (the JVM exited with code {code}{': out of memory' if code == 52 else ''})"


class BenchError(RuntimeError):
    """A run that finished but cannot be measured as asked (gate failed, wrong mode)."""


def run_job(bench: Bench, raw: Path, output: Path, as_of: dt.date, full_refresh: bool) -> dict:
    """One pipeline.run at 07:00 UTC on `as_of`, measured; with the facts the doc cross-checks."""
    request = pipeline.RunRequest(
        as_of=as_of,
        run_timestamp=dt.datetime.combine(as_of, dt.time(7), UTC),
        raw_orders=Location(path=str(raw / tables.RAW_ORDERS)),
        raw_customers=Location(path=str(raw / tables.RAW_CUSTOMERS)),
        output=Location(path=str(output)),
        full_refresh=full_refresh,
    )
    outcome, sample = measure.measured(
        lambda: pipeline.run(bench.spark, bench.config, request), bench.jvm_pid, bench.spark
    )
    if outcome.exit_code != ExitCode.OK:
        failed = [r.plain() for r in outcome.results if r.blocks_publishing]
        raise BenchError(f"the job exited {outcome.exit_code}: {failed}")
    expected = "full" if full_refresh else "incremental"
    if outcome.mode != expected:
        raise BenchError(f"asked for a {expected} run, the job ran a {outcome.mode} one")
    mart_rows = bench.spark.read.format("delta").load(str(output / tables.MART)).count()
    # The job tags its Spark jobs by stage (growth_revenue.stages), so its work is the sum of its stages.
    whole = stages.total(outcome.stages)
    sample["spark"] = {
        "jobs": whole.spark_jobs,
        "input_rows": whole.rows_read,
        "shuffle_mib": whole.bytes_shuffled / measure.MIB,
        "output_rows": whole.rows_written,
    }
    sample["stages"] = [dataclasses.asdict(cost) for cost in outcome.stages]
    return {
        **sample,
        "mode": outcome.mode,
        "verify_seconds": outcome.verify_seconds,
        "mart_rows": mart_rows,
        "report": fingerprint(outcome.report_rows),
    }


def full_output(bench: Bench, shape: Shape) -> Path:
    return bench.work / f"full-{shape.keys}"


def full_rebuild(bench: Bench, raw: RawData, repeat: int) -> dict:
    output = full_output(bench, raw.shape)

    def rebuild() -> dict:
        shutil.rmtree(output, ignore_errors=True)  # from nothing, as a first publish or a rebuild would
        return run_job(bench, raw.nightly, output, bench.as_of, full_refresh=True)

    return repeated(bench, repeat, rebuild)


def incremental_output(bench: Bench, shape: Shape) -> Path:
    return bench.work / f"incremental-{shape.name}" / "output"


def incremental_nightly(bench: Bench, raw: RawData, repeat: int, setup: bool = True) -> dict:
    """The nightly on the new day, each run from a copy of the previous night's outputs (made first,
    unless `setup` is false: a scenario run earlier in this invocation left them)."""
    output = incremental_output(bench, raw.shape)
    raw_tables, previous = output.parent / "raw", output.parent / "previous-night"

    def previous_night() -> dict:
        # One path for the raw tables before and after the new day lands, as in production:
        # first the history, then the same tables with the new day's commit on top.
        raw_data.link_tree(raw.history, raw_tables)
        sample = run_job(bench, raw_tables, previous, bench.as_of - dt.timedelta(days=1), full_refresh=True)
        raw_data.link_tree(raw.nightly, raw_tables)
        return sample

    def nightly() -> dict:
        shutil.rmtree(output, ignore_errors=True)
        shutil.copytree(previous, output)  # every timed run starts from the previous night's outputs
        return run_job(bench, raw_tables, output, bench.as_of, full_refresh=False)

    return repeated(bench, repeat, nightly, setup=previous_night if setup else None)


def with_adaptive_execution(bench: Bench) -> Bench:
    """The bench with the job's adaptive execution kept on while an incremental run stages and verifies."""
    incremental = dataclasses.replace(bench.config.incremental, adaptive_execution=True)
    return dataclasses.replace(bench, config=dataclasses.replace(bench.config, incremental=incremental))


def runs_of(results: dict, name: str) -> list:
    return results.get(name, {}).get("runs", [])


def scaling(bench: Bench, shape: Shape, raw_of) -> dict:
    """One nightly at each point of the scaling table: history lengths at `shape`'s daily volume,
    then `shape`'s history at multiples of its volume. `raw_of(shape)` gives a point's raw tables."""
    points = [(shape.scaled_to(days), 1) for days in SCALING_DAYS]
    points += [(shape.times(factor), factor) for factor in SCALING_VOLUMES]
    measured = []
    for index, (point, volume) in enumerate(points):
        log.info("scaling: %s", point.name)
        # The first point runs twice and keeps its second run: the first nightly of a session pays the
        # JVM's warm-up, which would tilt the fit when the table is measured on its own.
        result = incremental_nightly(bench, raw_of(point), 1 if index else 2)
        result["runs"] = result["runs"][-1:]
        result.pop("setup", None)  # the untimed previous night: not part of the table
        measured.append(
            {"days": point.days, "volume": volume, "orders": point.orders, "daily_orders": point.daily_orders, **result}
        )
    failed = [f"{p['days']} days at {p['volume']}x: {p['error']}" for p in measured if p.get("error")]
    return {"runs": [], "points": measured, **({"error": "; ".join(failed)} if failed else {})}


def published_mart(bench: Bench, raw: RawData, results: dict) -> tuple[Path, str] | None:
    """The mart as the nightly leaves it (the incremental run's), else the full rebuild's; None if neither ran."""
    if "incremental" in results and not results["incremental"].get("error"):
        return incremental_output(bench, raw.shape) / tables.MART, "incremental nightly run"
    if "full" in results and not results["full"].get("error"):
        return full_output(bench, raw.shape) / tables.MART, "full rebuild"
    return None


def report_alone(bench: Bench, raw: RawData, published: tuple[Path, str] | None, repeat: int) -> dict:
    # When no scenario of this invocation published a mart, one full rebuild publishes it first (not timed).
    fallback = bench.work / "report-mart"
    mart, source = published or (fallback / tables.MART, "full rebuild run as setup")
    rules = bench.config.rules

    def publish() -> dict:
        return run_job(bench, raw.nightly, fallback, bench.as_of, full_refresh=True)

    def report_frame():
        return transforms.revenue_by_segment(
            bench.spark.read.format("delta").load(str(mart)),
            bench.as_of,
            rules.report_window_days,
            dt.datetime.now(UTC),
            "bench",
        )

    def report() -> dict:
        scan, sample = measure.measured(lambda: scanstats.scan_metrics(report_frame()), bench.jvm_pid, bench.spark)
        rows = report_frame().collect()  # scan_metrics returns no rows; not timed
        files, size = scanstats.table_files(bench.spark, str(mart))
        return {
            **sample,
            "files_read": scan.files_read,
            "bytes_read": scan.bytes_read,
            "mart_files": files,
            "mart_bytes": size,
            "window_days": rules.report_window_days,
            "mart_from": source,
            "report": fingerprint(row.asDict() for row in rows),
        }

    return repeated(bench, repeat, report, setup=None if published else publish)


def naive_spark(bench: Bench, raw: RawData, repeat: int) -> dict:
    def query() -> list:
        return peers.naive_report(bench.spark, bench.config.rules, raw.nightly, bench.as_of).collect()

    def report() -> dict:
        rows, sample = measure.measured(query, bench.jvm_pid, bench.spark)
        return {**sample, "report": fingerprint(row.asDict() for row in rows)}

    return repeated(bench, repeat, report)


def duckdb_peer(bench: Bench, raw: RawData, repeat: int) -> dict:
    mart_dir, spill_dir = bench.work / "duckdb-mart", bench.work / "duckdb-spill"

    def recompute() -> dict:
        shutil.rmtree(mart_dir, ignore_errors=True)
        memory_limit_mib = int(0.8 * measure.available_mib())  # what the idle JVM leaves
        # DuckDB runs inside this Python process: its peak memory is this process's.
        run, sample = measure.measured(
            lambda: peers.duckdb_recompute(
                raw.nightly, mart_dir, bench.config.rules, bench.as_of, memory_limit_mib, spill_dir
            ),
            os.getpid(),
        )
        return {
            **sample,
            "mart_rows": run.mart_rows,
            "mart_seconds": run.mart_seconds,
            "report_seconds": run.report_seconds,
            "threads": run.threads,
            "memory_limit": run.memory_limit,
            "report": fingerprint(run.report),
        }

    return repeated(bench, repeat, recompute)


def fingerprint(rows) -> list[list]:
    """A report as comparable values: segment, revenue (exact decimal text), order and customer counts."""
    return sorted(
        [r["customer_segment"], f"{r['revenue']:.2f}", int(r["order_count"]), int(r["customer_count"])] for r in rows
    )


# --- facts -----------------------------------------------------------------------------------


def described(raw: RawData) -> dict:
    shape = raw.shape
    return {"orders": shape.orders, "customers": shape.customers, "days": shape.days, "keys": shape.keys, **raw.facts}


def machine_facts(spark: SparkSession) -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gib": mem_kb / 2**20,
        "os": platform.platform(),
        "java": sparkutil.jvm(spark).java.lang.System.getProperty("java.runtime.version"),
        "spark": spark.version,
        "delta": f"{jars.installed_line().delta_package} (delta-spark wheel {metadata.version('delta-spark')})",
        "quality_engine": quality.choose_engine(spark, "auto"),
        "duckdb": metadata.version("duckdb"),
        "deltalake": metadata.version("deltalake"),
        "python": platform.python_version(),
    }


def _git_head() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "lib"], capture_output=True, text=True, check=True
        ).stdout.strip()
        return head + (" (lib/ has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
