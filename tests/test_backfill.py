"""--as-of-range: a backfill recomputes a range of snapshots, one as-of after another, and no other."""

import datetime as dt

import pytest
from lakehouse import Lakehouse
from rows import customer, order

from growth_revenue import tables

D = dt.date(2026, 11, 25)
RUN_AT = "2026-11-25T07:00:00Z"

# Data landed daily from 11-18 to 11-20, then not again until 11-25.
ORDERS = [
    order("O1", "C1", "2026-11-17 10:00:00", amount="100.00", ingested_at="2026-11-18 06:00:00"),
    order("O2", "C2", "2026-11-18 10:00:00", amount="40.00", ingested_at="2026-11-19 06:00:00"),
    order("O3", "C1", "2026-11-19 10:00:00", amount="5.00", ingested_at="2026-11-20 06:00:00"),
    order("O4", "C1", "2026-11-24 10:00:00", amount="7.00", ingested_at="2026-11-25 06:00:00"),
]
CUSTOMERS = [customer("C1", email="a@shop.io", segment="smb"), customer("C2", email="b@shop.io", segment="enterprise")]


@pytest.fixture
def lakehouse(spark, tmp_path):
    """Raw tables of ORDERS and CUSTOMERS under tmp_path; the job runs at RUN_AT."""
    lakehouse = Lakehouse(spark, tmp_path, run_at=RUN_AT)
    lakehouse.write(ORDERS, CUSTOMERS)
    return lakehouse


def snapshots(lakehouse):
    """{as_of_date: (run_id, {segment: revenue})} of the published report."""
    rows = lakehouse.output(tables.REPORT).collect()
    found = {}
    for row in rows:
        run_id, revenue = found.setdefault(row["as_of_date"], (row["run_id"], {}))
        assert row["run_id"] == run_id, f"two runs in the snapshot of {row['as_of_date']}"
        revenue[row["customer_segment"]] = row["revenue"]
    return found


def test_a_backfill_recomputes_its_range_and_leaves_other_snapshots_alone(spark, lakehouse):
    assert lakehouse.cli("--as-of", "2026-11-19") == 0
    assert lakehouse.cli("--as-of", str(D)) == 0
    before = snapshots(lakehouse)

    assert lakehouse.cli("--as-of-range", "2026-11-20", "2026-11-20") == 0
    after = snapshots(lakehouse)
    assert after[dt.date(2026, 11, 19)] == before[dt.date(2026, 11, 19)]  # same run id: untouched
    assert after[D] == before[D]
    assert after[dt.date(2026, 11, 20)][1] == {"smb": 105, "enterprise": 40}


def test_rerunning_a_range_is_idempotent(spark, lakehouse):
    assert lakehouse.cli("--as-of-range", "2026-11-19", "2026-11-20") == 0
    first = snapshots(lakehouse)
    assert lakehouse.cli("--as-of-range", "2026-11-19", "2026-11-20") == 0
    second = snapshots(lakehouse)
    assert sorted(first) == sorted(second) == [dt.date(2026, 11, 19), dt.date(2026, 11, 20)]
    assert {day: revenue for day, (_, revenue) in first.items()} == {
        day: revenue for day, (_, revenue) in second.items()
    }
    assert all(first[day][0] != second[day][0] for day in first)  # recomputed, and still one snapshot per date


def test_a_backfilled_date_is_judged_fresh_on_what_had_landed_by_its_end(spark, lakehouse, capsys):
    # 11-20: the 06:00 landing is 18 h old at the end of the day. 11-21 and 11-22: nothing had
    # landed for 42 and 66 h; the data that landed on 11-25 does not make them fresh.
    assert lakehouse.cli("--as-of-range", "2026-11-20", "2026-11-22") == 3
    assert sorted(snapshots(lakehouse)) == [dt.date(2026, 11, 20)]
    assert "backfill 2026-11-20..2026-11-22: 1 published, 2 quality gate failed (2026-11-21, 2026-11-22)" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "dates, says",
    [
        (["2026-11-22", "2026-11-20"], "START is after END"),
        (["2026-11-20", "2026-11-26"], "is after the run date"),
        (["2026-11-20", "yesterday"], "is not a date"),
    ],
)
def test_a_bad_range_is_a_usage_error(spark, lakehouse, capsys, dates, says):
    assert lakehouse.cli("--as-of-range", *dates) == 2
    assert says in capsys.readouterr().err
    assert not lakehouse.out.exists()


def test_as_of_and_as_of_range_cannot_be_combined(spark, lakehouse):
    with pytest.raises(SystemExit) as exit_info:
        lakehouse.cli("--as-of", "2026-11-20", "--as-of-range", "2026-11-20", "2026-11-21")
    assert exit_info.value.code == 2
