"""The job's exit codes: the one place they are defined (CLI, DAG docs, tests and README's table).

Standard library only: the Airflow DAG imports it without pyspark.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What the process exit code of one run (or backfill range) means."""

    OK = 0
    INPUT_ERROR = 1
    USAGE = 2
    QUALITY_GATE = 3
    CONFLICT = 4

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "published (failed Warnings allowed)",
    ExitCode.INPUT_ERROR: "runtime or input error: missing or unreadable raw table, contract breach, Spark/Delta "
    "failure (traceback logged); nothing published",
    ExitCode.USAGE: "usage error: bad option, unreadable or invalid config, unknown config key, wrong value type, "
    "malformed or future --as-of, malformed --run-timestamp, bad table name; nothing ran",
    ExitCode.QUALITY_GATE: "quality gate failed: nothing published, results recorded in dq_check_results",
    ExitCode.CONFLICT: "another run kept committing to an output table: the write was retried "
    "publish.conflict_retries times and gave up; every table holds a complete version; rerun",
}
