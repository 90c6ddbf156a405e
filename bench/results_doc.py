"""Stored benchmark results (one JSON file per data scale) and docs/benchmarks.md rendered from all of them.

A bench run replaces, in its scale's file, the scenarios it ran and keeps the others, so the
100M full rebuild, the 50M comparison and the 10M run can be separate invocations and still
appear on one page. The targets are evaluated when the page is rendered, from what is stored.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Callable
from pathlib import Path

from growth_revenue.jars import DEFAULT_LINE

MIB = 2**20
DEFAULT_DAYS = 365

SCENARIOS = {
    "full": "full rebuild (`pipeline.run`, full_refresh)",
    "incremental": "incremental nightly, {days}-day history",
    "incremental_aqe": "incremental nightly, {days}-day history, adaptive execution on while staging and verifying",
    "incremental30": "incremental nightly, 30-day history, same daily volume",
    "report": "report alone (`revenue_by_segment` on the published mart)",
    "naive": "naive Spark: the report straight from the raw tables",
    "duckdb": "DuckDB, same rules: mart as Parquet + report",
    "full_random": "full rebuild, random-key shape",
    "incremental_random": "incremental nightly, {days}-day history, random-key shape",
}
SHORT_NAMES = {
    "full": "full rebuild",
    "incremental": "incremental nightly",
    "incremental_aqe": "incremental (adaptive execution)",
    "incremental30": "incremental (30 days)",
    "report": "report alone",
    "naive": "naive Spark",
    "duckdb": "DuckDB",
    "full_random": "full rebuild (random keys)",
    "incremental_random": "incremental (random keys)",
}
# The scenarios whose report is the job's, on the same data.
JOB_REPORTS = ("full", "incremental", "incremental_aqe", "report")


# --- storing ---------------------------------------------------------------------------------


def data_key(days: int, keys: str) -> str:
    """The key of a generated data set in a scale's "data": its history length and key shape."""
    return str(days) if keys == "sequential" else f"{days}-{keys}"


def scale_file(results: Path, scale: dict) -> Path:
    return (
        results / f"{_short(scale['orders'])}-orders_{_short(scale['customers'])}-customers_{scale['days']}-days.json"
    )


def _short(n: int) -> str:
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)


def store(results: Path, scale: dict, data: dict, scenarios: dict, invocation: dict) -> Path:
    """Merges this invocation's results into its scale's file; returns the file."""
    path = scale_file(results, scale)
    stored = json.loads(path.read_text()) if path.exists() else {}
    if stored.get("scale") != scale:  # other data (another as-of date): the old numbers no longer apply
        stored = {"scale": scale, "data": {}, "scenarios": {}, "invocations": {}}
    stored["data"].update(data)
    stored["scenarios"].update({name: {**result, "invocation": invocation["at"]} for name, result in scenarios.items()})
    stored["invocations"][invocation["at"]] = invocation
    used = {result["invocation"] for result in stored["scenarios"].values()}
    stored["invocations"] = {at: inv for at, inv in stored["invocations"].items() if at in used}
    results.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=1) + "\n")
    return path


def load_all(results: Path) -> list[dict]:
    scales = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    return sorted(scales, key=lambda s: (s["scale"]["orders"], s["scale"]["days"]))


# --- reading a scale's results ---------------------------------------------------------------


def runs(scale: dict, name: str) -> list[dict]:
    """The timed runs of a scenario that completed; none when it was not run or failed."""
    result = scale["scenarios"].get(name)
    return result["runs"] if result and result["runs"] and not result.get("error") else []


def median_s(scale: dict, name: str) -> float:
    """Median seconds of a scenario's runs; callers check first that it has runs."""
    return statistics.median(r["seconds"] for r in runs(scale, name))


def median_run(scale: dict, name: str) -> dict:
    """The run with the median time (the lower middle one for an even count)."""
    done = sorted(runs(scale, name), key=lambda r: r["seconds"])
    return done[(len(done) - 1) // 2]


def verify_share(scale: dict, name: str) -> float:
    return statistics.median(r["verify_seconds"] / r["seconds"] for r in runs(scale, name))


def report_bytes_share(scale: dict) -> float:
    run = median_run(scale, "report")
    return run["bytes_read"] / run["mart_bytes"]


def invocation_of(scale: dict, name: str) -> dict:
    """The bench invocation that ran scenario `name` at this scale (command, git, machine...)."""
    return scale["invocations"][scale["scenarios"][name]["invocation"]]


def latest_machine(invocations) -> dict:
    """The machine facts of the newest of `invocations`."""
    return max(invocations, key=lambda inv: inv["at"])["machine"]


def _gib(memory: str) -> float:
    """A JVM memory setting ('8g', '8192m') in GiB."""
    units = {"k": 1 / 2**20, "m": 1 / 2**10, "g": 1, "t": 2**10}
    return float(memory[:-1]) * units[memory[-1].lower()] if memory[-1].lower() in units else int(memory) / 2**30


# --- targets ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Verdict:
    measured: str
    limit: str
    met: bool
    how_much: str


def ratio_verdict(value: float, limit: float, detail: str, fmt: str = "{:.2f}", strict: bool = False) -> Verdict:
    met = value < limit if strict else value <= limit
    how = (
        f"{1 - value / limit:.0%} headroom" if met else f"{value / limit:.2f}x the limit, {value / limit - 1:.0%} over"
    )
    return Verdict(f"{fmt.format(value)} ({detail})", ("< " if strict else "≤ ") + fmt.format(limit), met, how)


def time_ratio(numerator: str, denominator: str, limit: float, strict: bool = False) -> Callable[[dict], Verdict]:
    """The verdict on median time of one scenario / median time of another."""

    def verdict(scale: dict) -> Verdict:
        a, b = median_s(scale, numerator), median_s(scale, denominator)
        return ratio_verdict(a / b, limit, f"{a:.1f} s / {b:.1f} s", strict=strict)

    return verdict


def verdict_report_bytes(scale: dict) -> Verdict:
    run = median_run(scale, "report")
    return ratio_verdict(
        report_bytes_share(scale),
        2 * run["window_days"] / scale["scale"]["days"],
        f"{run['bytes_read'] / MIB:.1f} of {run['mart_bytes'] / MIB:.1f} MiB",
        "{:.1%}",
    )


def verdict_verify_share(scale: dict) -> Verdict:
    run = median_run(scale, "incremental")
    return ratio_verdict(
        verify_share(scale, "incremental"), 0.15, f"{run['verify_seconds']:.1f} s of {run['seconds']:.1f} s", "{:.0%}"
    )


@dataclasses.dataclass(frozen=True)
class Target:
    text: str
    orders: int  # the scale the target is stated at
    needs: tuple[str, ...]  # scenarios it is computed from
    verdict: Callable[[dict], Verdict]
    limits: Callable[[dict], str]  # "what limits it", from the measurements
    unmeasurable: str = ""  # why no bench run can measure it yet, when none can

    def measurable(self, scale: dict) -> bool:
        if self.needs == ("full",):  # a failed run is a result for the memory target
            return "full" in scale["scenarios"]
        return all(runs(scale, name) for name in self.needs)


def _pct(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def _work(run: dict) -> dict:
    return run.get("spark", {"jobs": 0, "input_rows": 0, "shuffle_mib": 0.0, "output_rows": 0})


def limits_incremental_vs_full(scale: dict, incremental: str = "incremental", full_name: str = "full") -> str:
    inc, full = median_run(scale, incremental), median_run(scale, full_name)
    wi, wf = _work(inc), _work(full)
    text = (
        f"The incremental nightly took {inc['seconds']:.1f} s, the full rebuild {full['seconds']:.1f} s. "
        f"The incremental run read {wi['input_rows']:,} rows ({_pct(wi['input_rows'], wf['input_rows'])}"
        f" of the full rebuild's), shuffled {wi['shuffle_mib']:.1f} MiB ({_pct(wi['shuffle_mib'], wf['shuffle_mib'])})"
        f", wrote {wi['output_rows']:,} rows ({_pct(wi['output_rows'], wf['output_rows'])}) and ran "
        f"{wi['jobs']} Spark jobs against {wf['jobs']}; its verification took {inc['verify_seconds']:.1f} s."
    )
    if wf["input_rows"] and wi["input_rows"] / wf["input_rows"] > 0.25:
        text += (
            " It reads more than a quarter of the rows the full rebuild reads: what it re-reads is the first "
            "thing to cut."
        )
    else:
        text += (
            " It reads a small share of the data, so the time left is per-run work that does not shrink with "
            "the change: Spark jobs, Delta commits and the gate's passes."
        )
    if incremental == "incremental" and runs(scale, "incremental30"):
        text += (
            f" On the 30-day history ({30 / scale['scale']['days']:.0%} of the history, the same new day) the "
            f"same run took {median_s(scale, 'incremental30'):.1f} s: about that much of it does not depend "
            "on the history."
        )
    return text


def limits_random_keys(scale: dict) -> str:
    """Against the full rebuild of the same data, and the nightly's costliest stages."""
    text = limits_incremental_vs_full(scale, "incremental_random", "full_random")
    stages = median_run(scale, "incremental_random").get("stages")
    if stages:
        costliest = sorted(stages, key=lambda stage: -stage["seconds"])[:3]
        text += (
            " Its costliest stages: "
            + "; ".join(
                f"{stage['name']} {stage['seconds']:.1f} s ({stage['rows_read']:,} rows read)" for stage in costliest
            )
            + "."
        )
    return text


def limits_history_length(scale: dict) -> str:
    a, b = median_run(scale, "incremental"), median_run(scale, "incremental30")
    wa, wb = _work(a), _work(b)
    days = scale["scale"]["days"]
    text = (
        f"With {days} days of history the nightly took {a['seconds']:.1f} s, with 30 days {b['seconds']:.1f} s "
        f"({a['seconds'] / b['seconds']:.2f}x for {days / 30:.1f}x the history). Rows read: "
        f"{wa['input_rows']:,} against {wb['input_rows']:,}; rows written {wa['output_rows']:,} against "
        f"{wb['output_rows']:,}; shuffled {wa['shuffle_mib']:.1f} against {wb['shuffle_mib']:.1f} MiB; "
        f"verification {a['verify_seconds']:.1f} against {b['verify_seconds']:.1f} s."
    )
    if wb["input_rows"] and wa["input_rows"] / wb["input_rows"] > 1.5:
        text += (
            f" The rows read grow {wa['input_rows'] / wb['input_rows']:.1f}x with the history: some step "
            "still scans history-sized data rather than the new day's."
        )
    long, short = ({stage["name"]: stage for stage in run.get("stages") or []} for run in (a, b))
    if long and short:
        grown = sorted(long.keys() & short.keys(), key=lambda name: short[name]["seconds"] - long[name]["seconds"])[:3]
        text += (
            " The stages that grow most: "
            + "; ".join(
                f"{name} {long[name]['seconds']:.1f} against {short[name]['seconds']:.1f} s "
                f"({long[name]['rows_read']:,} against {short[name]['rows_read']:,} rows read)"
                for name in grown
            )
            + ". A relabelled customer's orders lie on every date, so the mart's MERGE reads and replaces "
            "rows in files across the history ([mart_layout.md](mart_layout.md) measures the layouts through "
            "a week of such nights)."
        )
    return text


def limits_report_bytes(scale: dict) -> str:
    run = median_run(scale, "report")
    dates = scale["scale"]["days"] + 1
    text = (
        f"The report read {run['files_read']} of the mart's {run['mart_files']} files, "
        f"{run['bytes_read'] / MIB:.1f} of {run['mart_bytes'] / MIB:.1f} MiB (the mart of the "
        f"{run['mart_from']}); its window is {run['window_days']} of the mart's {dates} order dates "
        f"({run['window_days'] / dates:.0%})."
    )
    if run["files_read"] >= run["mart_files"]:
        text += " No file was skipped: the read is not pruned to the window."
    elif report_bytes_share(scale) > 2 * run["window_days"] / dates:
        text += " The files it cannot skip hold more than the window's days."
    return text


def limits_verify_share(scale: dict) -> str:
    run = median_run(scale, "incremental")
    text = (
        f"Verification took {run['verify_seconds']:.1f} s of the {run['seconds']:.1f} s nightly "
        f"(median share {verify_share(scale, 'incremental'):.0%})."
    )
    if runs(scale, "incremental30"):
        short = median_run(scale, "incremental30")
        growth = run["verify_seconds"] / short["verify_seconds"]
        text += (
            f" With 30 days of history it took {short['verify_seconds']:.1f} s of {short['seconds']:.1f} s "
            f"({growth:.1f}x for {scale['scale']['days'] / 30:.1f}x the history)"
            + (": it grows with the history, so it checks more than the day's change." if growth > 2 else ".")
        )
    if runs(scale, "full"):
        text += f" The full rebuild's verification took {median_run(scale, 'full')['verify_seconds']:.1f} s."
    return text


def verdict_spark_jobs(scale: dict) -> Verdict:
    jobs = _work(median_run(scale, "incremental"))["jobs"]
    return ratio_verdict(jobs, 40, "Spark jobs in the median nightly", "{:.0f}")


def limits_spark_jobs(scale: dict) -> str:
    run = median_run(scale, "incremental")
    if "stages" not in run:
        return f"{_work(run)['jobs']} Spark jobs; this run predates the job's per-stage record."
    busiest = sorted(run["stages"], key=lambda stage: -stage["spark_jobs"])
    return (
        f"{_work(run)['jobs']} Spark jobs, by stage: "
        + ", ".join(f"{stage['name']} {stage['spark_jobs']}" for stage in busiest if stage["spark_jobs"])
        + "."
        + _adaptive_execution_compared(scale)
    )


def _adaptive_execution_compared(scale: dict) -> str:
    """The nightly against the same nightly with adaptive execution on while staging and verifying."""
    if not runs(scale, "incremental_aqe"):
        return ""
    off, on = median_run(scale, "incremental"), median_run(scale, "incremental_aqe")
    return (
        f" With adaptive execution on while it stages and verifies (`incremental.adaptive_execution: true`, "
        f"measured in the same bench run), the same nightly took {on['seconds']:.1f} s in {_work(on)['jobs']} "
        f"Spark jobs, against {off['seconds']:.1f} s in {_work(off)['jobs']} without "
        f"({off['seconds'] / on['seconds']:.2f}x the time, {_work(off)['jobs'] / _work(on)['jobs']:.2f}x the jobs)."
    )


def _versus_duckdb(scale: dict, name: str, label: str) -> str:
    job, duck = median_run(scale, name), median_run(scale, "duckdb")
    work = _work(job)
    return (
        f"DuckDB ({duck['threads']} threads) wrote the mart ({duck['mart_rows']:,} rows, Parquet partitioned by "
        f"order_date) in {duck['mart_seconds']:.1f} s and computed the report in {duck['report_seconds']:.1f} s, "
        f"peak RSS {duck['peak_rss_mib']:,.0f} MiB. The {label} took {job['seconds']:.1f} s, of which "
        f"verification {job['verify_seconds']:.1f} s, in {work['jobs']} Spark jobs that read "
        f"{work['input_rows']:,} rows and shuffled {work['shuffle_mib']:.1f} MiB; JVM peak RSS "
        f"{job['peak_rss_mib']:,.0f} MiB. Beyond the rules the job stages and verifies the data, writes "
        "quarantine_orders and dq_check_results, and commits every table to Delta; DuckDB does none of that."
    )


def limits_full_memory(scale: dict) -> str:
    result, invocation = scale["scenarios"]["full"], invocation_of(scale, "full")
    if result.get("error"):
        return f"The full rebuild failed with driver memory {invocation['driver_memory']}: {result['error']}"
    run = median_run(scale, "full")
    return (
        f"The full rebuild completed in {run['seconds']:.0f} s with driver memory {invocation['driver_memory']} "
        f"(the JVM heap limit); the JVM's peak resident memory, heap plus off-heap and native buffers, was "
        f"{run['peak_rss_mib'] / 1024:.1f} GiB."
    )


def verdict_full_memory(scale: dict) -> Verdict:
    result, memory = scale["scenarios"]["full"], invocation_of(scale, "full")["driver_memory"]
    if result.get("error"):
        return Verdict("failed", "completes, ≤ 8 GiB", False, result["error"].splitlines()[0][:120])
    run = median_run(scale, "full")
    within = _gib(memory) <= 8
    return Verdict(
        f"completed in {run['seconds']:.0f} s with driver memory {memory} (JVM peak RSS "
        f"{run['peak_rss_mib'] / 1024:.1f} GiB)",
        "completes, ≤ 8 GiB",
        within,
        "" if within else f"driver memory {memory} is over 8 GiB",
    )


TARGETS = [  # issue 18's targets; the last three are kept from earlier issues
    Target(
        "Incremental nightly ≤ 0.20 × full rebuild",
        10_000_000,
        ("incremental", "full"),
        time_ratio("incremental", "full", 0.20),
        limits_incremental_vs_full,
    ),
    Target(
        "Incremental nightly with 365 days of history ≤ 1.25 × the same with 30 days",
        10_000_000,
        ("incremental", "incremental30"),
        time_ratio("incremental", "incremental30", 1.25),
        limits_history_length,
    ),
    Target(
        "Incremental nightly ≤ 1.0 × DuckDB's full recompute of the same rules",
        10_000_000,
        ("incremental", "duckdb"),
        time_ratio("incremental", "duckdb", 1.0),
        lambda s: _versus_duckdb(s, "incremental", "incremental nightly"),
    ),
    Target(
        "Incremental nightly ≤ 0.5 × DuckDB's full recompute",
        50_000_000,
        ("incremental", "duckdb"),
        time_ratio("incremental", "duckdb", 0.5),
        lambda s: _versus_duckdb(s, "incremental", "incremental nightly"),
    ),
    Target(
        "Full rebuild ≤ 5 × DuckDB on the same data and rules",
        10_000_000,
        ("full", "duckdb"),
        time_ratio("full", "duckdb", 5),
        lambda s: _versus_duckdb(s, "full", "full rebuild"),
    ),
    Target(
        "Spark jobs in one incremental nightly ≤ 40",
        10_000_000,
        ("incremental",),
        verdict_spark_jobs,
        limits_spark_jobs,
    ),
    Target(
        "Incremental nightly ≤ 0.25 × full rebuild on the random-key shape",
        10_000_000,
        ("incremental_random", "full_random"),
        time_ratio("incremental_random", "full_random", 0.25),
        limits_random_keys,
    ),
    Target(
        "Report reads ≤ 2 × 30/365 of the mart's bytes",
        10_000_000,
        ("report",),
        verdict_report_bytes,
        limits_report_bytes,
    ),
    Target(
        "Verification ≤ 15% of the nightly wall time",
        10_000_000,
        ("incremental",),
        verdict_verify_share,
        limits_verify_share,
    ),
    Target(
        "A 100M-order full rebuild completes on this machine with driver memory ≤ 8 GiB",
        100_000_000,
        ("full",),
        verdict_full_memory,
        limits_full_memory,
    ),
]


def target_runs(scale: dict, target: Target) -> list[dict]:
    """The bench invocations that ran the target's scenarios at `scale`, oldest first."""
    return sorted(
        {invocation_of(scale, name)["at"]: invocation_of(scale, name) for name in target.needs}.values(),
        key=lambda inv: inv["at"],
    )


def engine_of(invocation: dict) -> str:
    """The quality engine a run verified with; runs before the Deequ engine recorded none: Spark's."""
    return invocation["machine"].get("quality_engine") or "spark"


def off_default(invocation: dict) -> bool:
    """Whether a run was not on the default Spark line with Deequ verifying (issue 18's measuring ground)."""
    return not invocation["machine"]["spark"].startswith(f"{DEFAULT_LINE}.") or engine_of(invocation) != "deequ"


def _run_label(invocation: dict) -> str:
    return f"git {invocation['git']}, Spark {invocation['machine']['spark']}, {engine_of(invocation)} engine"


def _scale_for(target: Target, scales: list[dict]) -> tuple[dict, bool] | None:
    """The scale the target is stated at if measured there, else the largest measured one (flagged)."""
    stated = [
        s
        for s in scales
        if s["scale"]["orders"] == target.orders and s["scale"]["days"] == DEFAULT_DAYS and target.measurable(s)
    ]
    if stated:
        return stated[0], True
    measurable = [s for s in scales if target.measurable(s)]
    return (measurable[-1], False) if measurable else None


# --- rendering -------------------------------------------------------------------------------


RERUN = """```sh
make bench          # 10M orders over 365 days, every scenario
.venv-3.5/bin/python bench/bench_nightly.py --orders 50000000 --scenarios incremental,duckdb
.venv-3.5/bin/python bench/bench_nightly.py --orders 100000000 --scenarios full --driver-memory 8g
.venv-3.5/bin/python bench/bench_nightly.py --orders 1000000 --scenarios '' --scaling   # the scaling table
.venv-3.5/bin/python bench/results_doc.py   # this page and README's Performance lines from bench/results/
```"""


METHOD = """How it measures:

- Data (`bench/raw_data.py`): `--orders` orders spread evenly over `--days` days of history, one customer
  per ten orders; ~10% of orders have a second version, 1% no customer, 2% a customer whose row has not
  arrived (an orphan), and a few no order_id, order_ts or amount. Then one new day, one more Delta commit
  landing before the 07:00 run: the day's orders and, each ~1% of the daily volume, cancellations of
  2-8-week-old orders, corrected amounts, late orders, segment moves, new test users and customer rows for
  orphans. No test user becomes real that day: that change alone makes the job read `raw_orders` by
  customer ([incremental.md](incremental.md)). Raw files are sorted by `_ingested_at` (customers: `updated_at`), ~250,000 rows each. The
  30-day history has the same daily volume and the same kind of new day.
- The random-key shape (scenarios `full_random`, `incremental_random`) is the same volume shaped like many
  real raw tables: UUID-like order ids uncorrelated with time, the history bulk-loaded in one commit whose
  files each hold rows of every ingestion time, and cancellations and corrections of orders of any age. No
  filter on the order id or the landing time can skip a file of its history.
- Each scenario runs `--repeat` times in one process and one SparkSession; the table shows the median,
  min and max wall time. The incremental runs start from a restored copy of the previous night's outputs
  (a full run on the history alone, not timed).
- The peers read the same raw Parquet files (the Delta tables' current files). The naive Spark query
  computes the report from raw every time; DuckDB runs in this Python process with one thread per core
  and a memory limit of 80% of the memory available when it starts (the idle JVM keeps its heap),
  spilling beyond it, and writes the mart as Parquet partitioned by order_date before the report.
- Peak RSS: the kernel's high-water mark (VmHWM), reset before each run, of the JVM for the Spark
  scenarios and of this Python process for DuckDB; the most of any run. Rows read, shuffled and written:
  summed over the Spark stages of the median run's jobs; rows read include the Delta logs and blocks
  read from Spark's cache. Verification: `RunOutcome.verify_seconds`. Report files and bytes: the scan's
  own metrics (`growth_revenue.scanstats`) against the mart's DESCRIBE DETAIL.
- Wall-clock time on a 2-core machine that may be shared with other runs (see each run's load average):
  compare rows of the same run, and read differences of a few seconds as noise."""


def render(scales: list[dict]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `bench/bench_nightly.py` from the results in `bench/results/` (one JSON file per data scale; "
        "a bench run replaces the scenarios it ran and keeps the others). Rerun:",
        "",
        RERUN,
        "",
        METHOD,
        "",
        *render_targets(scales),
        "",
        *render_scaling(scales),
    ]
    if scales:
        lines += ["", *render_machine(scales)]
    for scale in reversed(scales):
        lines += ["", *render_scale(scale)]
    return "\n".join(lines) + "\n"


def render_targets(scales: list[dict]) -> list[str]:
    lines = [
        "## Targets",
        "",
        "| target | stated at | measured at | measured | limit | verdict |",
        "|---|---|---|---|---|---|",
    ]
    limits = []
    for target in TARGETS:
        found = _scale_for(target, scales)
        if found is None:
            how = target.unmeasurable or (
                f"not measured: run `--orders {target.orders} --scenarios {','.join(target.needs)}`"
            )
            lines.append(f"| {target.text} | {target.orders:,} orders | {how} | - | - | - |")
            continue
        scale, on_scale = found
        verdict = target.verdict(scale)
        ran = target_runs(scale, target)
        where = f"{scale['scale']['orders']:,} orders" + ("" if on_scale else " ⚠")
        provenance = "; ".join(_run_label(inv) for inv in ran) + (" †" if any(map(off_default, ran)) else "")
        ruling = ("met" if verdict.met else "**NOT met**") + (f": {verdict.how_much}" if verdict.how_much else "")
        lines.append(
            f"| {target.text} | {target.orders:,} orders | {where}, {provenance} | {verdict.measured} | "
            f"{verdict.limit} | {ruling} |"
        )
        limits.append(f"- **{target.text}** ({where}; {'met' if verdict.met else 'NOT met'}): {target.limits(scale)}")
    if any("⚠" in line for line in lines):
        lines += [
            "",
            "⚠ not measured at the stated scale: the figure is from the largest scale that has it, for "
            "orientation only.",
        ]
    if any("†" in line for line in lines):
        lines += [
            "",
            f"† not measured on the default Spark line ({DEFAULT_LINE}) with Deequ verifying, where issue 18 "
            "asks for it: the verdict holds for the line and engine named, at that commit. Rerun the scenario "
            "with the default line's venv (commands above).",
        ]
    lines += ["", "### What limits it", "", *(limits or ["Nothing measured yet."])]
    return lines


# --- README's three lines ---------------------------------------------------------------------

README_START = "<!-- performance: written by bench/bench_nightly.py from bench/results/; do not edit -->"
README_END = "<!-- end of performance -->"


def readme_summary(scales: list[dict]) -> list[str]:
    """Today's numbers in three lines for README's Performance section, from the stored results."""
    compared = ("incremental", "full", "duckdb")
    headline = [s for s in scales if all(runs(s, name) for name in compared)]
    if not headline:
        return ["- No benchmark results stored yet: `make bench`."]
    stated = [s for s in headline if s["scale"]["orders"] == TARGETS[0].orders]
    main = (stated or headline)[-1]
    shape = main["scale"]
    nightly, full, duckdb = (median_s(main, name) for name in compared)
    first = (
        f"- Nightly over {shape['orders']:,} orders and {shape['days']} days of history: **{nightly:.1f} s** "
        f"incremental, against {full:.1f} s for a full rebuild ({nightly / full:.2f}x) and {duckdb:.1f} s for "
        f"DuckDB recomputing everything ({nightly / duckdb:.2f}x), on a "
        f"{latest_machine(main['invocations'].values())['cores']}-core machine."
    )
    larger = []
    for scale in scales:
        if scale["scale"]["orders"] <= shape["orders"]:
            continue
        parts = []
        if runs(scale, "incremental") and runs(scale, "duckdb"):
            parts.append(f"nightly {median_s(scale, 'incremental'):.1f} s, DuckDB {median_s(scale, 'duckdb'):.1f} s")
        if runs(scale, "full"):
            memory = invocation_of(scale, "full")["driver_memory"]
            parts.append(f"full rebuild {median_s(scale, 'full'):.0f} s with driver memory {memory}")
        if parts:
            larger.append(f"{scale['scale']['orders']:,} orders: {', '.join(parts)}")
    second = f"- {'; '.join(larger)}." if larger else "- No larger scale measured yet."
    return [first, second, targets_line(scales)]


def targets_line(scales: list[dict]) -> str:
    """README's line on the targets: how many are met, and how many of those off issue 18's ground."""
    found = [(target, at[0]) for target in TARGETS if (at := _scale_for(target, scales)) is not None]
    met = [(target, scale) for target, scale in found if target.verdict(scale).met]
    elsewhere = sum(any(map(off_default, target_runs(scale, target))) for target, scale in met)
    off_line = f" ({elsewhere} of them off the default Spark line or without Deequ)" if elsewhere else ""
    return (
        f"- Targets: {len(met)} of {len(TARGETS)} met{off_line}. Every verdict, what limits the nightly "
        "and how its cost grows: [docs/benchmarks.md](docs/benchmarks.md) (`make bench`); the mart layout "
        "comparison: [docs/mart_layout.md](docs/mart_layout.md) (`make bench-layout`)."
    )


def with_readme_summary(readme: str, scales: list[dict]) -> str:
    """`readme` with the lines between its performance markers replaced by today's summary."""
    head, found, rest = readme.partition(README_START)
    _, end, tail = rest.partition(README_END)
    if not (found and end):
        raise ValueError(f"README has no '{README_START}' ... '{README_END}' block to write the numbers into")
    return "\n".join([head + README_START, *readme_summary(scales), README_END + tail])


# --- scaling ----------------------------------------------------------------------------------

PROJECTED_ORDERS, PROJECTED_DAILY = 1_000_000_000, 3_000_000  # the production size the paragraph projects to
PROJECTED_CORES = 64


@dataclasses.dataclass(frozen=True)
class CostModel:
    """Straight lines through the scaling rows, least squares.

    `fixed` + `per_order` x orders: the rows at the scale's history length, where the daily volume grows
    with the orders (a year of history at any volume is such a row, the projected production size too).
    `per_history_order`: the rows at the scale's daily volume, where only the history grows.
    """

    fixed: float
    per_order: float
    per_history_order: float | None  # None: fewer than two history rows
    clamped: tuple[str, ...]  # slopes that came out negative (noise) and were taken as 0

    def seconds(self, orders: float, cores_ratio: float = 1.0) -> float:
        """On this machine (cores_ratio 1), or with the order-proportional work spread over more cores."""
        return self.fixed + self.per_order * orders * cores_ratio


def scaling_points(scale: dict) -> list[dict]:
    """The scaling table's measured points (each with its one run), in table order; [] when not run."""
    result = scale["scenarios"].get("scaling")
    return [p for p in result["points"] if p["runs"] and not p.get("error")] if result else []


def fit_cost(points: list[dict], base_days: int) -> CostModel | None:
    """The cost model of the measured points; None without two rows at the scale's history length."""
    by_volume = [p for p in points if p["days"] == base_days]
    by_history = [p for p in points if p["volume"] == 1]
    if len(by_volume) < 2:
        return None
    seconds = lambda p: p["runs"][0]["seconds"]  # noqa: E731
    clamped: tuple[str, ...] = ()
    per_order, fixed = statistics.linear_regression([p["orders"] for p in by_volume], [seconds(p) for p in by_volume])
    if per_order < 0:
        clamped, per_order, fixed = ("orders",), 0.0, statistics.fmean(seconds(p) for p in by_volume)
    per_history = None
    if len(by_history) >= 2:
        per_history, _ = statistics.linear_regression(
            [p["orders"] for p in by_history], [seconds(p) for p in by_history]
        )
        if per_history < 0:
            clamped, per_history = (*clamped, "history"), 0.0
    return CostModel(fixed, per_order, per_history, clamped)


def render_scaling(scales: list[dict]) -> list[str]:
    lines = ["## Scaling", ""]
    measured = [s for s in scales if scaling_points(s)]
    if not measured:
        return [*lines, "Not measured yet: `bench/bench_nightly.py --orders 1000000 --scenarios '' --scaling`."]
    scale = measured[-1]  # the largest scale that has it
    shape, points = scale["scale"], scaling_points(scale)
    invocation = invocation_of(scale, "scaling")
    history_days = ", ".join(str(p["days"]) for p in points if p["volume"] == 1)
    volumes = " and ".join(f"{p['volume']}x" for p in points if p["volume"] > 1)
    lines += [
        f"The incremental nightly as its work grows, one run per row (`{invocation['command']}`, git "
        f"{invocation['git']}, {invocation['at']}): {history_days} "
        f"days of history at {shape['orders'] // shape['days']:,} orders a day, then {shape['days']} days at "
        f"{volumes} that daily volume. Same data "
        "generator and new day as above; the costliest stages from the job's own record.",
        "",
        "| history days | orders a day | orders in history | nightly s | Spark jobs | rows read | shuffled MiB "
        "| stage mart s | verify s | publish mart s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        run = p["runs"][0]
        stage = {s["name"]: s["seconds"] for s in run["stages"]}
        lines.append(
            f"| {p['days']} | {p['daily_orders']:,} | {p['orders']:,} | {run['seconds']:.1f} | {run['spark']['jobs']} "
            f"| {run['spark']['input_rows']:,} | {run['spark']['shuffle_mib']:,.1f} | {stage.get('stage mart', 0):.1f} "
            f"| {stage.get('verify', 0):.1f} | {stage.get('publish mart', 0):.1f} |"
        )
    if error := scale["scenarios"]["scaling"].get("error"):
        lines += ["", f"Failed, left out of the table and the fit: {error[:500]}"]
    model = fit_cost(points, shape["days"])
    if model is not None:
        lines += ["", *render_projection(model, invocation["machine"]["cores"], shape["days"])]
    return lines


def render_projection(model: CostModel, cores: int, base_days: int) -> list[str]:
    local = model.seconds(PROJECTED_ORDERS)
    cluster = model.seconds(PROJECTED_ORDERS, cores / PROJECTED_CORES)
    history = (
        f" At the same daily volume, a longer history adds {model.per_history_order * 1e6:.2f} s per million orders "
        "(the rows at one volume)."
        if model.per_history_order is not None
        else ""
    )
    clamped = (
        f" The fitted slope of {' and '.join(model.clamped)} came out negative (noise at this scale) and is taken as 0."
        if model.clamped
        else ""
    )
    return [
        f"**Projection** (straight lines through the rows above, extrapolated far past them): with {base_days} days "
        f"of history and the daily volume growing with the orders, a nightly costs about {model.fixed:.1f} s plus "
        f"{model.per_order * 1e6:.2f} s per million orders on this {cores}-core machine.{history}{clamped} A "
        f"{PROJECTED_ORDERS:,}-order history with about {PROJECTED_DAILY:,} new orders a night lies on that line "
        f"({PROJECTED_ORDERS // 365:,} a day over a year): about {local / 60:.0f} min here, and about "
        f"{cluster / 60:.1f} min on a {PROJECTED_CORES}-core cluster if the order-proportional work spreads evenly "
        "over the cores and the fixed part (driver, Delta log, job scheduling) does not. What the lines cannot "
        "see: whether the costs stay linear that far (the mart's MERGE reads every file that holds an order of "
        "a relabelled customer, and their orders lie in every date range) and whether one driver keeps up with "
        "a billion-row table's Delta log.",
    ]


def render_machine(scales: list[dict]) -> list[str]:
    m = latest_machine(inv for s in scales for inv in s["invocations"].values())
    return [
        "## Machine (latest run)",
        "",
        f"- {m['cores']} cores ({m['cpu']}), {m['memory_gib']:.1f} GiB RAM, {m['os']}",
        f"- Java {m['java']}, Spark {m['spark']}, Delta {m['delta']}, DuckDB {m['duckdb']}, "
        f"deltalake {m['deltalake']}, Python {m['python']}",
    ]


def render_scale(scale: dict) -> list[str]:
    shape = scale["scale"]
    lines = [
        f"## {shape['orders']:,} orders, {shape['customers']:,} customers, {shape['days']} days of history",
        "",
        "Runs:",
        "",
    ]
    for inv in sorted(scale["invocations"].values(), key=lambda inv: inv["at"]):
        names = ", ".join(n for n, r in scale["scenarios"].items() if r["invocation"] == inv["at"])
        machine = inv["machine"]
        lines.append(
            f"- {inv['at']}, git {inv['git']}, Spark {machine['spark']} with the "
            f"{engine_of(inv)} engine, load average {inv['load_start']:.2f} at start, "
            f"{inv['load_end']:.2f} at end; driver memory {inv['driver_memory']}, shuffle partitions "
            f"{inv['shuffle_partitions']}, look-back {inv['lookback_hours']} h; scenarios {names}: "
            f"`{inv['command']}`"
        )
    if not any(name in SCENARIOS for name in scale["scenarios"]):
        return [*lines, "", "Only the scaling table (above) was measured at this scale."]
    lines += ["", *render_data(scale), "", *render_timings(scale), "", *render_stages(scale), "", *render_checks(scale)]
    return lines


# The scenarios that run the job, which records its stages.
STAGED = ("full", "incremental", "incremental_aqe", "incremental30", "full_random", "incremental_random")


def render_stages(scale: dict) -> list[str]:
    """Where the time goes: the job's own per-stage record (growth_revenue.stages) of each median run."""
    recorded = {
        name: median_run(scale, name)["stages"]
        for name in STAGED
        if runs(scale, name) and "stages" in median_run(scale, name)
    }
    if not recorded:
        return ["Where the time goes: these runs predate the job's per-stage record; rerun `make bench`."]
    names = list(dict.fromkeys(stage["name"] for stages in recorded.values() for stage in stages))
    columns = [SHORT_NAMES[name] for name in recorded]
    lines = [
        "Where the time goes (median runs, from the job's own per-stage record: seconds / Spark jobs / rows read "
        "/ rows written):",
        "",
        "| stage | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for stage_name in [*names, None]:
        cells = []
        for stages in recorded.values():
            picked = [s for s in stages if stage_name is None or s["name"] == stage_name]
            if not picked:
                cells.append("-")
                continue
            cells.append(
                f"{sum(s['seconds'] for s in picked):.1f} / {sum(s['spark_jobs'] for s in picked)} / "
                f"{sum(s['rows_read'] for s in picked):,} / {sum(s['rows_written'] for s in picked):,}"
            )
        label = "**whole run**" if stage_name is None else stage_name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def render_data(scale: dict) -> list[str]:
    keys = sorted(scale["data"], key=lambda k: (-int(k.split("-")[0]), k))
    variants = [scale["data"][key] for key in keys]
    if not variants:
        return []
    header = " | ".join(
        f"{v['days']}-day history" + (f", {v['keys']} keys" if v.get("keys", "sequential") != "sequential" else "")
        for v in variants
    )
    lines = [f"| data | {header} |", "|---|" + "---:|" * len(variants)]

    def row(label: str, cell: Callable[..., str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(v) for v in variants) + " |")

    row("orders in the history (per day)", lambda v: f"{v['orders']:,} ({v['orders'] // v['days']:,})")
    row("customers", lambda v: f"{v['customers']:,}")
    for table in ("raw_orders", "raw_customers"):
        row(
            f"{table} rows: history + new day",
            lambda v, t=table: f"{v[t]['history_rows']:,} + {v[t]['new_day_rows']:,}",
        )
        row(f"{table} files, size", lambda v, t=table: f"{v[t]['files']}, {v[t]['bytes'] / MIB:,.0f} MiB")
    kinds = list(dict.fromkeys(kind for v in variants for kind in v["new_day"]))
    for kind in kinds:
        row(f"new day: {kind}", lambda v, k=kind: f"{v['new_day'][k]:,}" if k in v["new_day"] else "-")
    row("generated (Spark, Delta writes)", lambda v: f"{v['generation_s']:.0f} s, {v['generated_at']}")
    return lines


def _scenario_label(name: str, scale: dict) -> str:
    return SCENARIOS[name].format(days=scale["scale"]["days"])


def render_timings(scale: dict) -> list[str]:
    lines = [
        "| scenario | median s | min / max s | runs | peak RSS MiB | rows read | shuffled MiB | rows written "
        "| Spark jobs | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in SCENARIOS:
        result = scale["scenarios"].get(name)
        if result is None:
            continue
        label = _scenario_label(name, scale)
        done = runs(scale, name)
        if not done:
            lines.append(
                f"| {label} | - | - | {len(result['runs'])} | - | - | - | - | - | "
                f"FAILED: {result['error'].splitlines()[0][:200]} |"
            )
            continue
        seconds = [r["seconds"] for r in done]
        run = median_run(scale, name)
        work = run.get("spark")
        spark_cells = (
            f"{work['input_rows']:,} | {work['shuffle_mib']:,.1f} | {work['output_rows']:,} | {work['jobs']}"
            if work
            else "- | - | - | -"
        )
        lines.append(
            f"| {label} | {statistics.median(seconds):.1f} | {min(seconds):.1f} / {max(seconds):.1f} | "
            f"{len(seconds)} | {max(r['peak_rss_mib'] for r in done):,.0f} | {spark_cells} | "
            f"{_notes(name, scale, run, result)} |"
        )
    return lines


def _notes(name: str, scale: dict, run: dict, result: dict) -> str:
    if name in STAGED:
        note = f"verification {run['verify_seconds']:.1f} s ({run['verify_seconds'] / run['seconds']:.0%})"
        if "setup" in result:
            note += f"; the previous night's full run (setup, not timed) {result['setup']['seconds']:.1f} s"
        return note + f"; mart {run['mart_rows']:,} rows"
    if name == "report":
        return (
            f"read {run['files_read']} of {run['mart_files']} files, {run['bytes_read'] / MIB:.1f} of "
            f"{run['mart_bytes'] / MIB:.1f} MiB ({report_bytes_share(scale):.1%}); the mart of the "
            f"{run['mart_from']}"
        )
    if name == "duckdb":
        return (
            f"mart {run['mart_seconds']:.1f} s + report {run['report_seconds']:.1f} s; {run['threads']} threads, "
            f"memory limit {run['memory_limit']}; mart {run['mart_rows']:,} rows"
        )
    return ""


def render_checks(scale: dict) -> list[str]:
    """Do the job, the naive query and DuckDB agree on the same data? (The 30-day variant is other data.)"""
    reports = {
        name: [r["report"] for r in runs(scale, name)]
        for name in ("full", "incremental", "report", "naive", "duckdb")
        if runs(scale, name)
    }
    lines = ["Cross-checks on the same data:", ""]
    if reports:
        reference = next(iter(reports.values()))[0]
        same = {name: all(r == reference for r in rs) for name, rs in reports.items()}
        labels = ", ".join(f"{SHORT_NAMES[n]} {'same' if ok else 'DIFFERENT'}" for n, ok in same.items())
        total = sum(float(row[1]) for row in reference)
        lines.append(
            f"- The 30-day report ({len(reference)} segments, revenue {total:,.2f} by the "
            f"{SHORT_NAMES[next(iter(reports))]}), every run of each scenario: {labels}."
        )
    job = [n for n in JOB_REPORTS if n in reports]
    if "duckdb" in reports:
        if job:
            agrees = all(r == reports["duckdb"][0] for n in job for r in reports[n])
            lines.append(
                f"- DuckDB's report matches the job's: {'yes' if agrees else 'NO'} "
                f"(segments, revenue, order_count, customer_count; against the "
                f"{', '.join(SHORT_NAMES[n] for n in job)})."
            )
        else:
            lines.append("- DuckDB's report matches the job's: not checked (no job run at this scale).")
    marts = {
        name: runs(scale, name)[-1]["mart_rows"] for name in ("full", "incremental", "duckdb") if runs(scale, name)
    }
    if marts:
        agree = "the same" if len(set(marts.values())) == 1 else "DIFFERENT"
        lines.append(
            "- Mart rows: " + ", ".join(f"{SHORT_NAMES[n]} {rows:,}" for n, rows in marts.items()) + f" ({agree})."
        )
    if runs(scale, "full_random") and runs(scale, "incremental_random"):
        full, nightly = runs(scale, "full_random"), runs(scale, "incremental_random")
        equal = all(r["report"] == full[0]["report"] and r["mart_rows"] == full[0]["mart_rows"] for r in full + nightly)
        lines.append(
            f"- Random-key shape: every incremental nightly's report and mart row count equal the full "
            f"rebuild's: {'yes' if equal else 'NO'} ({full[0]['mart_rows']:,} mart rows)."
        )
    return lines


def write_pages(results: Path, doc: Path | None, readme: Path | None) -> str:
    """Renders every stored scale into `doc` and README's Performance lines (each skipped when None);
    returns the page."""
    scales = load_all(results)
    text = render(scales)
    if doc:
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(text)
    if readme:
        readme.write_text(with_readme_summary(readme.read_text(), scales))
    return text


def main() -> None:
    """Re-renders docs/benchmarks.md and README's Performance lines from bench/results/, no Spark."""
    root = Path(__file__).resolve().parents[1]
    write_pages(root / "bench" / "results", root / "docs" / "benchmarks.md", root / "README.md")


if __name__ == "__main__":
    main()
