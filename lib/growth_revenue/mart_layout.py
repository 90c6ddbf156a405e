"""The mart's physical layout: files that each hold a range of order dates, and when to re-sort them.

A full rebuild writes the mart unpartitioned, sorted by order_date into a file per `days_per_file`
days its dates span: the report's filter on order_date skips the other files by their min/max
statistics, and a nightly MERGE that touches a customer's orders on every date writes a handful of
files, not one per date (docs/mart_layout.md measures the layouts side by side). But the MERGEs'
files span many dates, and a plain OPTIMIZE packs the ranged files into one: both make every
report read more. So the job re-sorts the mart itself, `OPTIMIZE ... ZORDER BY (order_date)` into
files of a range's share, when `clustering_due` says so. Pure functions and values only.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass

from growth_revenue import mart_state

COLUMN = "order_date"
# A range of a very large mart is split into files of at most this many rows (a few hundred MB).
MAX_ROWS_PER_FILE = 8_000_000
# How far back the job looks for the mart's last re-sort (about a night a commit); past it, it re-sorts.
HISTORY_LIMIT = 30


@dataclass(frozen=True)
class RangedFiles:
    """Rows written as `files` files, each one range of `column` sorted within, none over `max_rows_per_file`."""

    column: str
    files: int
    max_rows_per_file: int = MAX_ROWS_PER_FILE


def ranges(first: dt.date | None, last: dt.date | None, days_per_file: int) -> int:
    """How many files the span first..last of order dates is cut into: one per `days_per_file`
    days (1 for no rows). The cuts come from a sample of the rows, so the files hold about as many
    rows each, and as many days each where every date has about as many orders."""
    if first is None or last is None:
        return 1
    return (last - first).days // days_per_file + 1


def clustering_due(
    history: list[dict], mart_bytes: int, max_unsorted_share: float, min_unsorted_bytes: int = 0
) -> str | None:
    """Why the mart should be re-sorted by order_date now, or None while its files keep their ranges.

    `history` is the mart's commits newest first (version, operation, operationParameters,
    operationMetrics, userMetadata). The ranges were last laid down by the job's full rebuild or by
    an OPTIMIZE ZORDER BY order_date; since then, the bytes the nightly MERGEs added (their files
    span many dates, so every report reads them) must stay under `max_unsorted_share` of
    `mart_bytes` or under `min_unsorted_bytes` (so few that reading them all costs less than a
    re-sort). Any other OPTIMIZE has packed ranges together.
    """
    added = 0
    for commit in history:
        operation = commit["operation"]
        if operation == "OPTIMIZE":
            if _zorder_columns(commit) == [COLUMN]:
                break
            return f"version {commit['version']} compacted it without ZORDER BY ({COLUMN}), mixing its date ranges"
        state = mart_state.MartState.from_metadata(commit["userMetadata"])
        if state is not None and state.mode == mart_state.FULL:
            break
        metrics = commit.get("operationMetrics") or {}
        added += int(metrics.get("numTargetBytesAdded", metrics.get("numOutputBytes", 0)))
    else:
        return f"its last re-sort by {COLUMN} is not among its newest {len(history)} commits"
    if mart_bytes and added > max(max_unsorted_share * mart_bytes, min_unsorted_bytes):
        share = added / mart_bytes
        return (
            f"the runs since its last re-sort by {COLUMN} added {share:.1%} of its bytes in files spanning many dates"
        )
    return None


def max_file_bytes(mart_bytes: int, files: int) -> int:
    """The OPTIMIZE's target file size: the mart's bytes spread over its ranges."""
    return max(math.ceil(mart_bytes / max(files, 1)), 1)


def _zorder_columns(commit: dict) -> list[str]:
    value = (commit.get("operationParameters") or {}).get("zOrderBy") or "[]"
    try:
        return list(json.loads(value))
    except ValueError:
        return []
