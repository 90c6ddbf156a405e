"""When the job re-sorts the mart by order_date (growth_revenue.mart_layout): pure rules on its history."""

import datetime as dt
import json

import pytest

from growth_revenue import mart_layout, mart_state

MART_BYTES = 1000


def commit(version, operation="MERGE", *, added=0, zorder=None, state_mode=None):
    """One commit of the mart as delta_log.history gives it."""
    metadata = None
    if state_mode is not None:
        state = mart_state.MartState(
            f"run-{version}", state_mode, None, customer_state_version=1, raw_orders_version=1, rules={}
        )
        metadata = state.to_metadata()
    return {
        "version": version,
        "operation": operation,
        "operationParameters": {"zOrderBy": json.dumps(zorder)} if zorder is not None else {},
        "operationMetrics": {"numTargetBytesAdded": str(added)} if operation == "MERGE" else {},
        "userMetadata": metadata,
    }


def rebuild(version):
    return commit(version, "WRITE", state_mode=mart_state.FULL)


def test_the_state_metadata_used_here_is_a_real_state():
    # The rebuild commits below must read as the job's full-rebuild state, or every case passes by accident.
    state = mart_state.MartState.from_metadata(rebuild(1)["userMetadata"])
    assert state is not None and state.mode == mart_state.FULL


@pytest.mark.parametrize(
    ("history", "due"),
    [
        ([rebuild(1)], None),
        ([commit(3, added=30), commit(2, added=20, state_mode=mart_state.INCREMENTAL), rebuild(1)], None),
        # 110 of 1000 bytes added by the nights since the rebuild: past the 10% share.
        ([commit(3, added=60), commit(2, added=50), rebuild(1)], "added 11.0% of its bytes"),
        # The job's own ZORDER BY order_date laid the ranges down again: only the nights after it count.
        ([commit(4, added=60), commit(3, "OPTIMIZE", zorder=["order_date"]), commit(2, added=500), rebuild(1)], None),
        # Maintenance that does not move rows is no re-sort, and adds no bytes.
        ([commit(4, "VACUUM END"), commit(3, "SET TBLPROPERTIES"), commit(2, added=90), rebuild(1)], None),
        # Any other OPTIMIZE packs the ranges together, however few bytes the nights added.
        ([commit(3, added=1), commit(2, "OPTIMIZE", zorder=[]), rebuild(1)], "version 2 compacted it without ZORDER"),
        ([commit(3, "OPTIMIZE", zorder=["customer_id", "order_date"]), rebuild(1)], "without ZORDER BY (order_date)"),
        ([commit(2, added=1), commit(1, added=1)], "is not among its newest 2 commits"),
    ],
    ids=[
        "just-rebuilt",
        "nights-under-the-share",
        "nights-past-the-share",
        "counted-since-the-last-zorder",
        "maintenance",
        "plain-optimize",
        "zorder-by-other-columns",
        "no-rebuild-in-sight",
    ],
)
def test_the_mart_is_re_sorted_when_the_nights_added_a_share_of_it_or_an_optimize_mixed_its_ranges(history, due):
    reason = mart_layout.clustering_due(history, MART_BYTES, max_unsorted_share=0.1)
    if due is None:
        assert reason is None
    else:
        assert reason is not None and due in reason


def test_below_the_floor_a_share_of_a_small_mart_is_not_worth_a_re_sort():
    history = [commit(3, added=60), commit(2, added=50), rebuild(1)]
    assert mart_layout.clustering_due(history, MART_BYTES, 0.1, min_unsorted_bytes=200) is None
    assert mart_layout.clustering_due(history, MART_BYTES, 0.1, min_unsorted_bytes=100) is not None


@pytest.mark.parametrize(
    ("first", "last", "files"),
    [
        (None, None, 1),
        (dt.date(2026, 1, 1), dt.date(2026, 1, 1), 1),
        (dt.date(2026, 1, 1), dt.date(2026, 1, 7), 1),
        (dt.date(2026, 1, 1), dt.date(2026, 1, 8), 2),
        (dt.date(2025, 1, 1), dt.date(2025, 12, 31), 53),
    ],
)
def test_a_file_per_seven_days_of_order_dates(first, last, files):
    assert mart_layout.ranges(first, last, days_per_file=7) == files


def test_the_re_sort_cuts_files_of_a_range_s_share_of_the_mart():
    assert mart_layout.max_file_bytes(53 * 2**30, 53) == 2**30
    assert mart_layout.max_file_bytes(100, 8) == 13
    assert mart_layout.max_file_bytes(0, 1) == 1  # an empty mart: Delta needs a positive size
