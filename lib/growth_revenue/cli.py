"""Command line of the nightly job: parse, load config, run, map the outcome to an exit code.

The exit codes are growth_revenue.exit_codes.ExitCode (README "Exit codes"). A published run's
report goes to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from zoneinfo import ZoneInfo

from growth_revenue import tables
from growth_revenue.config import Config, ConfigError, load_config
from growth_revenue.contract import ContractError
from growth_revenue.exit_codes import ExitCode
from growth_revenue.locations import Location
from growth_revenue.pipeline import RunRequest, run_range
from growth_revenue.pipeline import run as run_pipeline
from growth_revenue.writing import ConflictError

log = logging.getLogger("growth_revenue")


class UsageError(ValueError):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="growth-revenue",
        description="Publish mart_orders_enriched and rpt_30day_revenue_by_segment from raw_orders and "
        "raw_customers, unless the quality gate fails.",
        epilog="Exit codes: " + "; ".join(f"{code.value} {code.meaning}" for code in ExitCode),
    )
    parser.add_argument("--config", help="environment YAML overlaid on the packaged defaults (e.g. conf/local.yaml)")
    dates = parser.add_mutually_exclusive_group()
    dates.add_argument(
        "--as-of",
        help="report date D (YYYY-MM-DD); the window is D-N..D-1 "
        "(N = rules.report_window_days, default 30). "
        "Default: the run timestamp's date in the reporting time zone",
    )
    dates.add_argument(
        "--as-of-range",
        nargs=2,
        metavar=("START", "END"),
        help="backfill: one run per as-of date from START to END inclusive; other snapshots are not touched",
    )
    parser.add_argument("--run-timestamp", help="ISO-8601 instant of the run (default: now; no offset means UTC)")
    parser.add_argument("--raw-orders", help="path or catalog.schema.table of raw_orders (default: config)")
    parser.add_argument("--raw-customers", help="path or catalog.schema.table of raw_customers (default: config)")
    parser.add_argument("--output-dir", help="directory (or catalog.schema) the output tables live in")
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild mart_orders_enriched from all raw rows instead of applying what landed "
        "since the last run's watermark",
    )
    return parser


def parse_run_timestamp(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.timezone.utc)
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"--run-timestamp {text!r} is not an ISO-8601 timestamp") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def parse_as_of(text: str | None, run_timestamp: dt.datetime, reporting_timezone: str) -> dt.date:
    run_date = run_timestamp.astimezone(ZoneInfo(reporting_timezone)).date()
    if text is None:
        return run_date
    try:
        as_of = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"--as-of {text!r} is not a date (YYYY-MM-DD)") from exc
    if as_of > run_date:
        raise UsageError(
            f"--as-of {as_of} is after the run date {run_date}: its window would include days that are not complete yet"
        )
    return as_of


def build_requests(args: argparse.Namespace, config: Config) -> list[RunRequest]:
    """One request, or one per date of --as-of-range."""
    run_timestamp = parse_run_timestamp(args.run_timestamp)
    timezone = config.rules.reporting_timezone
    if args.as_of_range:
        start, end = (parse_as_of(text, run_timestamp, timezone) for text in args.as_of_range)
        if start > end:
            raise UsageError(f"--as-of-range {start} {end}: START is after END")
        dates = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    else:
        dates = [parse_as_of(args.as_of, run_timestamp, timezone)]
    output = args.output_dir or config.tables.output_schema or config.tables.output_dir
    try:
        raw_orders = Location.parse(args.raw_orders or config.tables.raw_orders)
        raw_customers = Location.parse(args.raw_customers or config.tables.raw_customers)
        output_location = Location.parse(output)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    # A range rebuilds once, on its first date; the dates after it find nothing new.
    return [
        RunRequest(
            as_of=as_of,
            run_timestamp=run_timestamp,
            raw_orders=raw_orders,
            raw_customers=raw_customers,
            output=output_location,
            full_refresh=args.full_refresh and number == 0,
        )
        for number, as_of in enumerate(dates)
    ]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (it may be replaced, e.g. by test capture)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure_logging() -> None:
    """The job's plain lines on stderr, the report on stdout.

    Attached to the job's own logger rather than via logging.basicConfig, which does nothing once
    another library has configured the root logger. (Under spark-submit, Spark's PythonRunner
    merges the driver's stderr into stdout anyway.)
    """
    if not log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: list[str] | None = None) -> ExitCode:
    """The job: parse, start (or join) the Spark session, run, stop the session."""
    configure_logging()
    prepared = prepare(argv)
    if isinstance(prepared, ExitCode):
        return prepared
    config, requests = prepared

    from growth_revenue.session import get_spark, stop_spark  # imported late: --help needs no JVM

    spark = get_spark(config.spark)
    try:
        return execute(spark, config, requests)
    finally:
        stop_spark(spark)


def prepare(argv: list[str] | None) -> tuple[Config, list[RunRequest]] | ExitCode:
    """(config, requests), or the usage exit code after logging why."""
    args = build_parser().parse_args(argv)  # exits 2 on a usage error
    try:
        config = load_config(args.config)
        return config, build_requests(args, config)
    except (ConfigError, UsageError) as exc:
        log.error("%s", exc)
        return ExitCode.USAGE


def main_in_session(spark, argv: list[str]) -> ExitCode:
    """`main` on a session the caller owns and keeps (notebooks, tests); its spark.* keys are not applied."""
    configure_logging()
    prepared = prepare(argv)
    return prepared if isinstance(prepared, ExitCode) else execute(spark, *prepared)


def execute(spark, config: Config, requests: list[RunRequest]) -> ExitCode:
    """Runs the requests and maps the outcome to an exit code, with one line saying why."""
    try:
        if len(requests) > 1:
            return run_range(spark, config, requests)
        outcome = run_pipeline(spark, config, requests[0])
    except ContractError as exc:
        log.error("input error: %s", exc)
        return ExitCode.INPUT_ERROR
    except ConflictError as exc:
        log.error("conflict: %s; every table holds a complete version, rerun to publish this run", exc)
        return ExitCode.CONFLICT
    except Exception:  # any other failure is a runtime error, with its traceback
        log.exception("run failed")
        return ExitCode.INPUT_ERROR
    if outcome.exit_code == ExitCode.QUALITY_GATE:
        log.error("run %s: quality gate failed, exit %d", outcome.run_id, ExitCode.QUALITY_GATE)
    else:
        print(format_report(outcome.report_rows), flush=True)
        log.info("run %s: published, exit %d", outcome.run_id, ExitCode.OK)
    return outcome.exit_code


def format_report(rows: list[dict]) -> str:
    """The published report as a small fixed-width table."""
    if not rows:
        return "(no segment had an order in the window)"
    header = ("customer_segment", "revenue", "order_count", "customer_count")
    body = [
        (str(r["customer_segment"]), f"{r['revenue']:,.2f}", str(r["order_count"]), str(r["customer_count"]))
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]

    def line(cells) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    first = rows[0]
    title = f"{tables.REPORT} as of {first['as_of_date']} (orders {first['window_start']}..{first['window_end']})"
    return "\n".join([title, line(header), line(["-" * w for w in widths]), *map(line, body)])


def run() -> None:
    """The console script: exits with main()'s code.

    A Databricks python_wheel_task calls its entry point and ignores the return value, so a
    non-zero code must leave as SystemExit for the task to fail.
    """
    code = main()
    if code:
        sys.exit(code)


if __name__ == "__main__":
    sys.exit(main())
