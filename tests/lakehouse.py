"""A lakehouse for tests: raw Delta tables and the job's outputs under one root (a pytest tmp dir)."""

from __future__ import annotations

import datetime as dt

from rows import ts

from growth_revenue import cli, delta_log, pipeline, tables
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

    `as_of` and `run_at` are the run date and run time used when a run names none.
    """

    def __init__(self, spark, root, as_of: dt.date | str | None = None, run_at: dt.datetime | str | None = None):
        self.spark, self.root = spark, root
        self.out = root / "out"
        self.as_of, self.run_at = as_of, run_at

    # --- raw tables ---------------------------------------------------------------------------

    def write(self, orders=None, customers=None):
        """Replaces the raw tables given (rows as tests/rows.py builds them) with these rows."""
        self._save(tables.RAW_ORDERS, orders, "overwrite")
        self._save(tables.RAW_CUSTOMERS, customers, "overwrite")

    def land(self, at: str, orders=(), customers=()):
        """Appends rows that landed at `at`: each order row is stamped _ingested_at = `at` unless it says otherwise."""
        landed = ts(at)
        self._save(
            tables.RAW_ORDERS,
            [row if row[6] != row[5] or row[6] > landed else (*row[:6], landed) for row in orders],
            "append",
        )
        self._save(tables.RAW_CUSTOMERS, customers, "append")

    def _save(self, name, rows, mode):
        if rows is not None:
            self.spark.createDataFrame(list(rows), SCHEMAS[name]).write.format("delta").mode(mode).save(
                str(self.root / name)
            )

    def raw(self, name):
        return self.spark.read.format("delta").load(str(self.root / name))

    # --- runs ---------------------------------------------------------------------------------

    def run(self, config, as_of=None, at=None, full_refresh=False, out=None) -> pipeline.RunOutcome:
        """One run of the job in process (pipeline.run); the outcome, whatever its exit code."""
        request = RunRequest(
            as_of=as_date(as_of or self.as_of),
            run_timestamp=as_instant(at or self.run_at),
            raw_orders=Location(path=str(self.root / tables.RAW_ORDERS)),
            raw_customers=Location(path=str(self.root / tables.RAW_CUSTOMERS)),
            output=Location(path=str(out or self.out)),
            full_refresh=full_refresh,
        )
        outcome = pipeline.run(self.spark, config, request)
        self.last_run_at = request.run_timestamp  # a rebuild compared with the run uses its time
        return outcome

    def cli(self, *args: str, at=None) -> int:
        """The job through its command line (cli.main_in_session) over this lakehouse's paths; its exit code."""
        run_at = at or self.run_at
        timestamp = [] if run_at is None else ["--run-timestamp", as_instant(run_at).isoformat()]
        return cli.main_in_session(
            self.spark,
            [
                "--raw-orders",
                str(self.root / tables.RAW_ORDERS),
                "--raw-customers",
                str(self.root / tables.RAW_CUSTOMERS),
                "--output-dir",
                str(self.out),
                *timestamp,
                *args,
            ],
        )

    # --- outputs ------------------------------------------------------------------------------

    def output(self, name, out=None):
        return self.spark.read.format("delta").load(str((out or self.out) / name))

    def version(self, name, out=None) -> int | None:
        """The output's current Delta version, None if it was never written."""
        return delta_log.version_of(self.spark, Location(path=str((out or self.out) / name)))
