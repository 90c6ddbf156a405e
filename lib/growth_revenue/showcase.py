"""What the job's users see, read from the published tables (the last step of `make demo`).

`python -m growth_revenue.showcase --config conf/local.yaml` prints the Growth dashboard's view
(the latest report snapshot, per segment against the snapshot of the as-of date before it), the
mart's size and Delta history (which run wrote each version, full or incremental), the quarantine
by reason and the last run's quality checks. `read_view` is the only part that reads; everything
printed comes from `format_view`, a pure function of plain values.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from decimal import Decimal

from growth_revenue import tables
from growth_revenue.mart_state import MartState


@dataclass(frozen=True)
class View:
    """The published tables as plain values."""

    latest: list[dict]  # report rows of the newest as_of_date (as_of_date, window_start, window_end, segment, ...)
    previous: list[dict]  # report rows of the as_of_date before it; [] when there is none
    mart_rows: int | None  # None: the mart is not published yet
    mart_commits: list[dict]  # the mart's Delta history, newest first: version, operation, userMetadata
    quarantine: dict[str, int]  # orders per quarantine_reason
    checks: list[dict]  # dq_check_results rows of the last run: check, level, constraint, status
    last_run_id: str | None  # the run that last appended to dq_check_results


# --- formatting: plain values in, text out ---------------------------------------------------


def table(header: list[str], rows: list[list[str]], right: tuple[int, ...] = ()) -> list[str]:
    """Fixed-width columns, indented; the columns numbered in `right` (numbers) right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        aligned = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return ("  " + "  ".join(aligned)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *map(line, rows)]


def change(now: Decimal, before: Decimal | None) -> str:
    """`+1,234.50 (+2.0%)`; `new` when the segment had no snapshot row before."""
    if before is None:
        return "new"
    delta = now - before
    share = f" ({delta / before * 100:+.1f}%)" if before else ""
    return f"{delta:+,.2f}{share}"


def format_dashboard(latest: list[dict], previous: list[dict]) -> list[str]:
    if not latest:
        return [f"Growth dashboard ({tables.REPORT}): no snapshot published yet"]
    first = latest[0]
    title = (
        f"Growth dashboard: 30-day revenue by segment as of {first['as_of_date']} "
        f"(orders {first['window_start']}..{first['window_end']})"
    )
    before = {r["customer_segment"]: r for r in previous}
    now = {r["customer_segment"]: r for r in latest}
    # A segment that had orders before and none in the window now shows as 0.00.
    gone = [
        {"customer_segment": s, "revenue": Decimal(0), "order_count": 0, "customer_count": 0}
        for s in before
        if s not in now
    ]
    header = ["segment", "revenue", "orders", "customers"]
    if previous:
        header.append(f"vs {previous[0]['as_of_date']}")
    rows = []
    for r in [*latest, *gone]:
        cells = [
            str(r["customer_segment"]),
            f"{r['revenue']:,.2f}",
            f"{r['order_count']:,}",
            f"{r['customer_count']:,}",
        ]
        if previous:
            old = before.get(r["customer_segment"])
            cells.append(change(r["revenue"], old["revenue"] if old else None))
        rows.append(cells)
    total = sum((r["revenue"] for r in latest), Decimal(0))
    totals = ["total", f"{total:,.2f}", f"{sum(r['order_count'] for r in latest):,}", ""]
    if previous:
        totals.append(change(total, sum((r["revenue"] for r in previous), Decimal(0))))
    note = [] if previous else ["  (no earlier snapshot to compare with)"]
    return [title, *table(header, [*rows, totals], right=(1, 2, 3, 4)), *note]


def run_of(user_metadata: str | None) -> tuple[str, str]:
    """(run id, full | incremental | -) of a commit: the mart's carry MartState JSON, other commits the run id."""
    state = MartState.from_metadata(user_metadata)
    if state is not None:
        return state.run_id, state.mode
    try:
        run_id = json.loads(user_metadata or "")["run_id"]
    except (ValueError, KeyError, TypeError):
        run_id = user_metadata or "-"
    return str(run_id), "-"


def format_mart(rows: int | None, commits: list[dict]) -> list[str]:
    if rows is None:
        return [f"{tables.MART}: not published yet"]
    body = [[str(c["version"]), c["operation"], *reversed(run_of(c["userMetadata"]))] for c in commits]
    return [
        f"{tables.MART}: {rows:,} rows. Its Delta history, newest first:",
        *table(["version", "operation", "run", "run id"], body, right=(0,)),
    ]


def format_quarantine(counts: dict[str, int]) -> list[str]:
    total = sum(counts.values())
    if not total:
        return [f"{tables.QUARANTINE}: no order held back"]
    return [
        f"{tables.QUARANTINE}: {total:,} order(s) held back from the mart",
        *table(["reason", "orders"], [[reason, f"{n:,}"] for reason, n in sorted(counts.items())], right=(1,)),
    ]


def format_checks(run_id: str | None, checks: list[dict]) -> list[str]:
    if not checks:
        return [f"{tables.DQ_RESULTS}: no run recorded yet"]
    failed = [c for c in checks if c["status"] != "Success"]
    blocking = sum(c["level"] == "Error" for c in failed)
    body = [[c["check"], c["level"], c["status"], c["constraint"]] for c in checks]
    return [
        f"{tables.DQ_RESULTS} of the last run ({run_id}): {len(checks)} constraints, {len(failed)} not met, "
        f"{blocking} of them at Error level",
        *table(["check", "level", "status", "constraint"], body),
    ]


def format_view(view: View) -> str:
    sections = [
        format_dashboard(view.latest, view.previous),
        format_mart(view.mart_rows, view.mart_commits),
        format_quarantine(view.quarantine),
        format_checks(view.last_run_id, view.checks),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections)


# --- reading (the edge) -----------------------------------------------------------------------


def read_view(spark, output) -> View:
    """The published tables under `output` (a Location) as plain values."""
    from pyspark.sql import functions as F

    from growth_revenue import delta_log, reading

    def read(name: str):
        location = output.child(name)
        return reading.read_output(spark, location) if delta_log.delta_table(spark, location) is not None else None

    latest: list[dict] = []
    previous: list[dict] = []
    report = read(tables.REPORT)
    if report is not None:
        dates = sorted((r[0] for r in report.select("as_of_date").distinct().collect()), reverse=True)[:2]
        snapshots = [
            [
                r.asDict()
                for r in report.where(F.col("as_of_date") == d).orderBy(F.desc("revenue"), "customer_segment").collect()
            ]
            for d in dates
        ]
        latest, previous = (snapshots + [[], []])[:2]
    mart = read(tables.MART)
    quarantine = read(tables.QUARANTINE)
    dq = read(tables.DQ_RESULTS)
    last_run_id, checks = None, []
    if dq is not None:
        last_run_id = run_of(delta_log.history(spark, output.child(tables.DQ_RESULTS), limit=1)[0]["userMetadata"])[0]
        checks = [
            r.asDict()
            for r in dq.where(F.col("run_id") == last_run_id).select("check", "level", "constraint", "status").collect()
        ]
    reasons = quarantine.groupBy("quarantine_reason").count().collect() if quarantine is not None else []
    return View(
        latest=latest,
        previous=previous,
        mart_rows=mart.count() if mart is not None else None,
        mart_commits=delta_log.history(spark, output.child(tables.MART), limit=20),
        quarantine={r[0]: r[1] for r in reasons},
        checks=checks,
        last_run_id=last_run_id,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print what the job's users see in the published tables.")
    parser.add_argument("--config", help="environment YAML (e.g. conf/local.yaml): where the outputs are")
    args = parser.parse_args(argv)

    from growth_revenue.config import load_config
    from growth_revenue.locations import Location
    from growth_revenue.session import get_spark, stop_spark

    config = load_config(args.config)
    spark = get_spark(config.spark)
    try:
        view = read_view(spark, Location.parse(config.tables.output_schema or config.tables.output_dir))
    finally:
        stop_spark(spark)
    print(format_view(view), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
