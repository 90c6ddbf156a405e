"""What the out-of-process tests share: the sample data's dates, a small job config, a clean environment.

The lakehouse itself (raw tables, outputs, the sample data written into it) is tests/lakehouse.py.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from growth_revenue import transforms

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 11, 25)
# The raw data last landed at 06:00 UTC on AS_OF: a 07:00 run that day sees fresh data.
LANDED_UNTIL = dt.datetime(2026, 11, 25, 6, tzinfo=dt.timezone.utc)


def order_ts_bounds(rules, run_at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The plausible order_ts of a run at `run_at` under these rules."""
    return transforms.plausible_order_ts(
        run_at, rules.max_future_skew_hours, rules.earliest_order_date, rules.reporting_timezone
    )


def small_job_config(path: Path, shuffle_partitions: int = 2, extra: str = "") -> Path:
    """A job config sized for a 2-core machine next to other JVMs, on the repo's Ivy cache (offline)."""
    path.write_text(
        f"{extra}spark:\n  master: local[2]\n  driver_memory: 1g\n"
        f"  shuffle_partitions: {shuffle_partitions}\n  ivy_dir: {ROOT / '.ivy'}\n"
    )
    return path


def job_env() -> dict[str, str]:
    """This environment for a launched job: the venv's python, and nothing tying it to the tests' JVM."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SPARK_VERSION", "PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET")
    }
    env["GROWTH_PYTHON"] = sys.executable
    return env
