"""A lakehouse for tests: raw Delta tables and the job's outputs under one root (a pytest tmp dir).

Every test that needs raw tables and outputs builds them here: rows written by the test, or the
seeded sample data the out-of-process tests run on. The layout is root/raw_orders,
root/raw_customers and root/out/<output>; `argv` gives the job's location options for it, so a
run in process, through the CLI or through ./spark-submit.sh in a subprocess addresses the same
tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from demo import LANDED_UNTIL, order_ts_bounds
from pyspark.sql import DataFrame
from rows import ts

from growth_revenue import cli, delta_log, pipeline, sample_data, tables, transforms
from growth_revenue.locations import Location
from growth_revenue.pipeline import RunRequest
from growth_revenue.sample_data import CUSTOMERS_SCHEMA, ORDERS_SCHEMA

SCHEMAS = {tables.RAW_ORDERS: ORDERS_SCHEMA, tables.RAW_CUSTOMERS: CUSTOMERS_SCHEMA}


def as_date(day: dt.date | str) -> dt.date:
    return day if isinstance(day, dt.date) else dt.date.fromisoformat(day)


def as_instant(at: dt.datetime | str) -> dt.datetime:
    """A datetime as it is; text as the CLI reads --run-timestamp (ISO-8601, no offset means UTC)."""
    return at if isinstance(at, dt.datetime) else cli.parse_run_timestamp(at)


class Lakehouse:
    """raw_orders and raw_customers under `root`, the job's outputs under `root`/out.

    `as_of` and `run_at` are the run date and run time used when a run names none; `job_config` is
    the config file an out-of-process run passes (demo.small_job_config), if it needs one.
    """

    def __init__(self, spark, root: Path, as_of: dt.date | str | None = None, run_at: dt.datetime | str | None = None):
        self.spark, self.root = spark, root
        self.out = root / "out"
        self.as_of, self.run_at = as_of, run_at
        self.job_config: Path | None = None
        self.outcomes: list[pipeline.RunOutcome] = []  # of the in-process runs, in order

    # --- raw tables ---------------------------------------------------------------------------

    def raw_path(self, name: str) -> Path:
        return self.root / name

    def write(self, orders=None, customers=None):
        """Replaces the raw tables given (rows as tests/rows.py builds them) with these rows, in this order."""
        for name, rows in ((tables.RAW_ORDERS, orders), (tables.RAW_CUSTOMERS, customers)):
            if rows is not None:
                self._overwrite(name, self.spark.createDataFrame(list(rows), SCHEMAS[name]))

    def rewrite(self, name: str, change: Callable[[DataFrame], DataFrame]):
        """Replaces a raw table with `change` of itself (its schema may change: the bad-input cases)."""
        self._overwrite(name, change(self.raw(name)))

    def land(self, at: str, orders=(), customers=()):
        """Appends rows that landed at `at`: each order row is stamped _ingested_at = `at` unless it says otherwise."""
        landed = ts(at)
        stamped = [row if row[6] != row[5] or row[6] > landed else (*row[:6], landed) for row in orders]
        for name, rows in ((tables.RAW_ORDERS, stamped), (tables.RAW_CUSTOMERS, customers)):
            frame = self.spark.createDataFrame(list(rows), SCHEMAS[name])
            frame.write.format("delta").mode("append").save(str(self.raw_path(name)))

    def write_sample(self, as_of: dt.date, orders: int, customers: int, **options):
        """The seeded sample data (growth_revenue.sample_data) shaped around `as_of`, landed until demo.LANDED_UNTIL."""
        options.setdefault("ingested_until", LANDED_UNTIL)
        sample_data.write_lakehouse(self.spark, str(self.root), as_of, orders=orders, customers=customers, **options)

    def _overwrite(self, name: str, frame: DataFrame):
        # One file with the rows in the order given: the tie-break cases rely on that order reaching the job.
        writer = frame.coalesce(1).write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        writer.save(str(self.raw_path(name)))

    def raw(self, name) -> DataFrame:
        return self.spark.read.format("delta").load(str(self.raw_path(name)))

    # --- runs ---------------------------------------------------------------------------------

    def argv(self, out: Path | None = None, raw_orders: Path | None = None) -> list[str]:
        """The job's location options for this lakehouse (outputs to `out`, orders from `raw_orders` if given)."""
        return [
            "--raw-orders",
            str(raw_orders or self.raw_path(tables.RAW_ORDERS)),
            "--raw-customers",
            str(self.raw_path(tables.RAW_CUSTOMERS)),
            "--output-dir",
            str(out or self.out),
        ]

    def run(self, config, as_of=None, at=None, full_refresh=False, out=None) -> pipeline.RunOutcome:
        """One run of the job in process (pipeline.run); the outcome, whatever its exit code."""
        request = RunRequest(
            as_of=as_date(as_of or self.as_of),
            run_timestamp=as_instant(at or self.run_at),
            raw_orders=Location(path=str(self.raw_path(tables.RAW_ORDERS))),
            raw_customers=Location(path=str(self.raw_path(tables.RAW_CUSTOMERS))),
            output=Location(path=str(out or self.out)),
            full_refresh=full_refresh,
        )
        outcome = pipeline.run(self.spark, config, request)
        self.outcomes.append(outcome)
        self.last_run_at = request.run_timestamp  # a rebuild compared with the run uses its time
        return outcome

    def cli(self, *args: str, at=None, out=None) -> int:
        """The job through its command line (cli.main_in_session) over this lakehouse's paths; its exit code."""
        run_at = at or self.run_at
        timestamp = [] if run_at is None else ["--run-timestamp", as_instant(run_at).isoformat()]
        return cli.main_in_session(self.spark, [*self.argv(out), *timestamp, *args])

    # --- outputs ------------------------------------------------------------------------------

    def output(self, name, out=None) -> DataFrame:
        return self.spark.read.format("delta").load(str((out or self.out) / name))

    def version(self, name, out=None) -> int | None:
        """The output's current Delta version, None if it was never written."""
        return delta_log.version_of(self.spark, Location(path=str((out or self.out) / name)))

    def versions(self, out=None) -> dict[str, int | None]:
        return {name: self.version(name, out) for name in tables.OUTPUTS}

    def expected_mart(self, rules, run_at: dt.datetime | None = None) -> DataFrame:
        """The mart the rules give on the raw tables, computed in process, for a run at `run_at`
        (default: now; it only decides which order_ts are plausible)."""
        mart = transforms.build_mart(
            self.raw(tables.RAW_ORDERS),
            self.raw(tables.RAW_CUSTOMERS),
            rules.revenue_statuses,
            rules.test_email_domains,
            rules.unknown_segment,
            rules.reporting_timezone,
            order_ts_bounds(rules, run_at or dt.datetime.now(dt.timezone.utc)),
        )
        return mart.select(*transforms.MART_COLUMNS)
