"""The incremental mart: night after night it equals a full rebuild on the same raw data.

Each night appends raw rows the way upstream does (stamped with _ingested_at when they land) and
runs the job; the published mart, report and quarantine are then compared with the rules applied
to every raw row from scratch. Between them the nights bring every change kind the job must follow.
"""

import dataclasses
import datetime as dt
import itertools
import json
import random
import shutil
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from demo import order_ts_bounds
from lakehouse import Lakehouse
from pyspark.sql import functions as F
from rows import customer, order, ts

from growth_revenue import (
    delta_log,
    incremental,
    mart_layout,
    mart_state,
    pipeline,
    publishing,
    reading,
    staging,
    tables,
    transforms,
    writing,
)
from growth_revenue.exit_codes import ExitCode
from growth_revenue.locations import Location
from growth_revenue.sample_data import CUSTOMERS_SCHEMA

FULL, INCREMENTAL = mart_state.FULL, mart_state.INCREMENTAL
RUN_COLUMNS = ("as_of_date", "run_id", "computed_at", "mart_version")


class NightlyLakehouse(Lakehouse):
    """The shared lakehouse, where every run must publish: one that does not fails the test there."""

    def run(self, config, as_of: str, at: str, full_refresh=False, out=None) -> pipeline.RunOutcome:
        outcome = super().run(config, as_of, at, full_refresh=full_refresh, out=out)
        assert outcome.exit_code == ExitCode.OK
        return outcome


def without_run_columns(df):
    return df.drop(*[c for c in RUN_COLUMNS if c in df.columns])


def assert_equal_to_a_full_rebuild(lakehouse: Lakehouse, rules, as_of: str):
    """Published mart, quarantine, this as-of's report and the customer state == the rules applied
    to all raw rows."""
    orders, customers = lakehouse.raw(tables.RAW_ORDERS), lakehouse.raw(tables.RAW_CUSTOMERS)
    args = (rules.revenue_statuses, rules.test_email_domains, rules.unknown_segment)
    bounds = order_ts_bounds(rules, lakehouse.last_run_at)
    mart = transforms.build_mart(orders, customers, *args, rules.reporting_timezone, bounds)
    report = transforms.revenue_by_segment(
        mart, dt.date.fromisoformat(as_of), rules.report_window_days, dt.datetime.now(dt.timezone.utc), "rebuild"
    )
    quarantine = transforms.build_quarantine(orders, customers, *args, bounds)
    profiles = transforms.customer_profiles(customers, rules.test_email_domains, rules.unknown_segment)
    published_report = lakehouse.output(tables.REPORT).where(F.col("as_of_date") == F.lit(as_of).cast("date"))
    for published, rebuilt in (
        (lakehouse.output(tables.MART).select(*transforms.MART_COLUMNS), mart),
        (without_run_columns(published_report), without_run_columns(report)),
        (without_run_columns(lakehouse.output(tables.QUARANTINE)), quarantine),
        (lakehouse.output(tables.CUSTOMER_STATE), profiles),
    ):
        assert_df_equality(published, rebuilt, ignore_row_order=True, ignore_column_order=True, ignore_nullable=True)


def mart_segments(lakehouse) -> dict[str, str]:
    return {row.order_id: row.customer_segment for row in lakehouse.output(tables.MART).collect()}


@pytest.fixture
def lakehouse(spark, tmp_path):
    return NightlyLakehouse(spark, tmp_path)


@pytest.mark.slow
@pytest.mark.every_line
def test_daily_incremental_runs_equal_a_full_rebuild_through_every_change_kind(lakehouse, config):
    rules = config.rules
    # A handful of orders: two quarantined ones must not fail the gate's share.
    config = dataclasses.replace(config, quality=dataclasses.replace(config.quality, quarantine_max_share=1.0))
    # Night 1: the first run builds the mart from scratch.
    lakehouse.land(
        "2026-11-20 05:00:00",
        customers=[
            customer("C1", "a@shop.io", "smb"),
            customer("C2", "b@shop.io", "enterprise"),
            customer("C3", "c@shop.io", "consumer"),
            customer("T1", "qa@example.com", "smb"),
        ],
        orders=[
            order("O1", "C1", "2026-11-10 10:00:00", amount="100.00"),
            order("O2", "C2", "2026-11-12 10:00:00", amount="200.00"),
            order("O3", "C3", "2026-11-15 10:00:00", status="fulfilled", amount="300.00"),
            order("O4", "T1", "2026-11-16 10:00:00", amount="400.00"),  # a test user's
            order("O5", "C9", "2026-11-17 10:00:00", amount="50.00"),  # customer row not there yet
            order("O6", "C1", "2026-11-18 10:00:00", status="cancelled", amount="60.00"),
        ],
    )
    assert lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00").mode == FULL
    assert_equal_to_a_full_rebuild(lakehouse, rules, "2026-11-20")

    # Night 2: a new order, an order cancelled weeks later, an amount corrected, a late order for
    # an old date, a customer moving segment (their past orders are re-labelled).
    lakehouse.land(
        "2026-11-21 05:00:00",
        customers=[
            customer("C2", "b@shop.io", "mid-market", updated_at="2026-11-21 04:00:00"),
        ],
        orders=[
            order("O7", "C1", "2026-11-20 10:00:00", amount="70.00"),
            order(
                "O1", "C1", "2026-11-10 10:00:00", status="cancelled", amount="100.00", updated_at="2026-11-21 04:00:00"
            ),
            order("O2", "C2", "2026-11-12 10:00:00", amount="250.00", updated_at="2026-11-21 04:00:00"),
            order("O8", "C3", "2026-10-25 10:00:00", amount="80.00", ingested_at="2026-11-21 05:00:00"),
        ],
    )
    assert lakehouse.run(config, "2026-11-21", "2026-11-21 07:00:00").mode == INCREMENTAL
    assert_equal_to_a_full_rebuild(lakehouse, rules, "2026-11-21")
    assert mart_segments(lakehouse)["O2"] == "mid-market"

    # Night 3: a customer becomes a test user (their orders leave), a customer row arrives after
    # its order (unknown -> its segment), a cancelled order revives, and two revenue orders that
    # cannot be published (no amount, no order_id) go to quarantine.
    lakehouse.land(
        "2026-11-22 05:00:00",
        customers=[
            customer("C3", "c@shop.io", "consumer", is_test_user=True, updated_at="2026-11-22 04:00:00"),
            customer("C9", "z@shop.io", "Enterprise ", updated_at="2026-11-22 04:00:00"),
        ],
        orders=[
            order("O6", "C1", "2026-11-18 10:00:00", amount="60.00", updated_at="2026-11-22 04:00:00"),
            order("O9", "C1", "2026-11-21 10:00:00", amount=None),
            order(None, "C1", "2026-11-21 11:00:00", amount="5.00"),
        ],
    )
    assert lakehouse.run(config, "2026-11-22", "2026-11-22 07:00:00").mode == INCREMENTAL
    assert_equal_to_a_full_rebuild(lakehouse, rules, "2026-11-22")
    assert {"O3", "O8"}.isdisjoint(mart_segments(lakehouse)) and mart_segments(lakehouse)["O5"] == "enterprise"

    # Night 4: a test user stops being one (their order comes back), the quarantined order gets
    # its amount, an order moves to another date, and an old version of O2 lands late: the
    # version already applied stays, because it is newer.
    lakehouse.land(
        "2026-11-23 05:00:00",
        customers=[
            customer("T1", "qa@shop.io", "smb", updated_at="2026-11-23 04:00:00"),
        ],
        orders=[
            order("O9", "C1", "2026-11-21 10:00:00", amount="90.00", updated_at="2026-11-23 04:00:00"),
            order("O7", "C1", "2026-11-19 23:00:00", amount="70.00", updated_at="2026-11-23 04:00:00"),
            order("O2", "C2", "2026-11-12 10:00:00", amount="1.00", updated_at="2026-11-15 00:00:00"),
        ],
    )
    assert lakehouse.run(config, "2026-11-23", "2026-11-23 07:00:00").mode == INCREMENTAL
    assert_equal_to_a_full_rebuild(lakehouse, rules, "2026-11-23")

    # The same night again, with nothing new: the mart is not touched at all.
    before = lakehouse.version(tables.MART)
    assert lakehouse.run(config, "2026-11-23", "2026-11-23 08:00:00").mode == INCREMENTAL
    assert lakehouse.version(tables.MART) == before
    assert_equal_to_a_full_rebuild(lakehouse, rules, "2026-11-23")

    # Night 5: a row stamped before the last watermark lands late, within the look-back.
    lakehouse.land(
        "2026-11-24 05:00:00",
        orders=[
            order("O10", "C1", "2026-11-22 09:00:00", amount="10.00", ingested_at="2026-11-23 02:00:00"),
            order("O11", "C2", "2026-11-23 09:00:00", amount="11.00"),
        ],
    )
    assert lakehouse.run(config, "2026-11-24", "2026-11-24 07:00:00").mode == INCREMENTAL
    assert_equal_to_a_full_rebuild(lakehouse, rules, "2026-11-24")
    assert {"O10", "O11"} <= set(mart_segments(lakehouse))

    # --full-refresh on the same data gives the same mart.
    incremental_mart = lakehouse.output(tables.MART)
    assert lakehouse.run(config, "2026-11-24", "2026-11-24 08:00:00", full_refresh=True).mode == FULL
    assert_df_equality(lakehouse.output(tables.MART), incremental_mart, ignore_row_order=True)


def with_deletion_vectors(config, enabled: bool):
    return dataclasses.replace(config, incremental=dataclasses.replace(config.incremental, deletion_vectors=enabled))


def mart_properties(lakehouse) -> dict[str, str]:
    return delta_log.table_properties(
        delta_log.delta_table(lakehouse.spark, Location(path=str(lakehouse.out / tables.MART)))
    )


@pytest.mark.slow
def test_dirty_values_and_order_dates_the_clock_makes_plausible_equal_a_full_rebuild_night_after_night(
    lakehouse, config
):
    rules = config.rules
    config = dataclasses.replace(config, quality=dataclasses.replace(config.quality, quarantine_max_share=1.0))
    # Night 1: a test user with a padded e-mail, a padded status and segment, and an order stamped
    # more than a day after the run (implausible: quarantined).
    lakehouse.land(
        "2026-11-20 05:00:00",
        customers=[
            customer("D1", "qa@EXAMPLE.com\u00a0", "smb"),
            customer("R1", "r@shop.io", " SMB\t"),
            customer("R2", "b@shop.io", "enterprise"),
        ],
        orders=[
            order("O1", "D1", "2026-11-18 10:00:00", amount="100.00"),
            order("O2", "R1", "2026-11-18 11:00:00", status="\tcompleted\n", amount="200.00"),
            order("O3", "R2", "2026-11-18 12:00:00", amount="300.00"),
            order("O4", "R1", "2026-11-22 12:00:00", amount="400.00", updated_at="2026-11-20 04:00:00"),
            order("O5", "R1", "2026-11-19 12:00:00", status="pending", amount="500.00"),
        ],
    )
    assert lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00").mode == FULL
    assert_equal_to_a_full_rebuild(lakehouse, rules, "2026-11-20")
    assert set(mart_segments(lakehouse)) == {"O2", "O3"} and mart_segments(lakehouse)["O2"] == "smb"
    assert [r.order_id for r in lakehouse.output(tables.QUARANTINE).collect()] == ["O4"]

    # Night 2: the test user's e-mail is cleaned (still a test user), a real customer's e-mail turns
    # into a padded test one (their orders leave), and an order's new version has a padded status.
    lakehouse.land(
        "2026-11-21 05:00:00",
        customers=[
            customer("D1", "qa@example.com", "smb", updated_at="2026-11-21 04:00:00"),
            customer("R2", "b@Example.com.\n", "enterprise", updated_at="2026-11-21 04:00:00"),
        ],
        orders=[
            order(
                "O5",
                "R1",
                "2026-11-19 12:00:00",
                status="\u00a0Completed",
                amount="500.00",
                updated_at="2026-11-21 04:00:00",
            ),
        ],
    )
    assert lakehouse.run(config, "2026-11-21", "2026-11-21 07:00:00").mode == INCREMENTAL
    assert_equal_to_a_full_rebuild(lakehouse, rules, "2026-11-21")
    assert set(mart_segments(lakehouse)) == {"O2", "O5"}

    # Night 3, later in the day: nothing new about O4, but its order_ts is now within a day of the
    # run: it leaves quarantine. Both e-mails become real ones again (their orders come back).
    lakehouse.land(
        "2026-11-22 05:00:00",
        customers=[
            customer("D1", "qa@shop.io", "smb", updated_at="2026-11-22 04:00:00"),
            customer("R2", "\u3000b@shop.io", "enterprise", updated_at="2026-11-22 04:00:00"),
        ],
        orders=[order("O6", "R1", "2026-11-21 12:00:00", amount="600.00")],
    )
    assert lakehouse.run(config, "2026-11-22", "2026-11-22 13:00:00").mode == INCREMENTAL
    assert_equal_to_a_full_rebuild(lakehouse, rules, "2026-11-22")
    assert set(mart_segments(lakehouse)) == {"O1", "O2", "O3", "O4", "O5", "O6"}
    assert lakehouse.output(tables.QUARANTINE).count() == 0

    # A rerun given an earlier run time: O4 is implausible again, as a rebuild at that time says.
    assert lakehouse.run(config, "2026-11-22", "2026-11-21 07:00:00").mode == INCREMENTAL
    assert_equal_to_a_full_rebuild(lakehouse, rules, "2026-11-22")
    assert "O4" not in mart_segments(lakehouse)


@pytest.mark.slow
@pytest.mark.parametrize("deletion_vectors", [True, False], ids=["deletion-vectors", "copy-on-write"])
def test_an_incremental_run_touches_only_the_files_of_changed_orders(lakehouse, config, caplog, deletion_vectors):
    config = with_deletion_vectors(config, deletion_vectors)
    days = [dt.date(2026, 10, 1) + dt.timedelta(days=n) for n in range(50)]
    lakehouse.land(
        "2026-11-20 05:00:00",
        customers=[customer("C1", "a@shop.io", "smb")],
        orders=[order(f"{prefix}{n}", "C1", f"{day} 10:00:00") for n, day in enumerate(days) for prefix in "OP"],
    )  # two orders, one file, per date
    lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00")

    lakehouse.land(
        "2026-11-21 05:00:00",
        orders=[
            order("O3", "C1", f"{days[3]} 10:00:00", status="cancelled", updated_at="2026-11-21 04:00:00"),
            order("O40", "C1", f"{days[40]} 10:00:00", amount="41.00", updated_at="2026-11-21 04:00:00"),
            order("NEW", "C1", "2026-11-20 10:00:00"),
        ],
    )
    with caplog.at_level("INFO", logger="growth_revenue"):
        assert lakehouse.run(config, "2026-11-21", "2026-11-21 07:00:00").mode == INCREMENTAL

    commit = delta_log.delta_table(lakehouse.spark, Location(path=str(lakehouse.out / tables.MART))).history(1).first()
    assert commit["operation"] == "MERGE"
    touched = {
        key: int(commit["operationMetrics"][key])
        for key in (
            "numTargetRowsInserted",
            "numTargetRowsUpdated",
            "numTargetRowsDeleted",
            "numTargetFilesRemoved",
            "numTargetDeletionVectorsAdded",
        )
    }
    # O3 and O40's files, of 8 (a week of dates each): marked by a deletion vector each, or rewritten.
    # The newest commit is the MERGE: a few KB of changed rows are far under the re-sort's floor.
    assert touched == {
        "numTargetRowsInserted": 1,
        "numTargetRowsUpdated": 1,
        "numTargetRowsDeleted": 1,
        "numTargetFilesRemoved": 0 if deletion_vectors else 2,
        "numTargetDeletionVectorsAdded": 2 if deletion_vectors else 0,
    }
    assert "mart: incremental run" in caplog.text and "3 mart rows to insert, update or delete" in caplog.text
    assert_equal_to_a_full_rebuild(lakehouse, config.rules, "2026-11-21")


@pytest.mark.slow
def test_customer_changes_are_applied_to_the_mart_rows_without_recomputing_their_orders_from_raw(
    lakehouse, config, caplog
):
    lakehouse.land(
        "2026-11-20 05:00:00",
        customers=[
            customer("MOVER", "m@shop.io", "smb"),
            customer("TESTER", "t@shop.io", "smb"),
            customer("STILL", "s@shop.io", "smb"),
        ],
        orders=[
            order(f"{who}{n}", who, f"2026-{month}-10 10:00:00")
            for who in ("MOVER", "TESTER", "STILL")
            for n, month in enumerate(("06", "09", "11"))
        ],
    )
    # No look-back: the night's orders are not re-read, so any order recomputed is one the change asked for.
    config = dataclasses.replace(config, incremental=dataclasses.replace(config.incremental, lookback_hours=0))
    lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00")

    # Months-old orders: re-labelled or deleted from the mart's own rows, no raw order re-read.
    lakehouse.land(
        "2026-11-20 08:00:00",
        customers=[
            customer("MOVER", "m@shop.io", "enterprise", updated_at="2026-11-20 08:00:00"),
            customer("TESTER", "t@shop.io", "smb", is_test_user=True, updated_at="2026-11-20 08:00:00"),
        ],
    )
    with caplog.at_level("INFO", logger="growth_revenue"):
        assert lakehouse.run(config, "2026-11-20", "2026-11-20 09:00:00").mode == INCREMENTAL
    assert (
        "customers changed: 1 relabel, 1 remove, 0 recompute, 0 no effect; 0 orders recomputed from raw, "
        "6 mart rows to insert, update or delete"
    ) in caplog.text
    assert_equal_to_a_full_rebuild(lakehouse, config.rules, "2026-11-20")
    assert set(mart_segments(lakehouse).items()) == {
        ("MOVER0", "enterprise"),
        ("MOVER1", "enterprise"),
        ("MOVER2", "enterprise"),
        ("STILL0", "smb"),
        ("STILL1", "smb"),
        ("STILL2", "smb"),
    }


@pytest.mark.slow
def test_only_the_customers_with_appended_raw_rows_have_their_profiles_recomputed(lakehouse, config, caplog):
    lakehouse.land(
        "2026-11-20 05:00:00",
        customers=[
            customer("C1", "a@shop.io", "smb"),
            customer("C2", "b@shop.io", "smb"),
            customer("C3", "c@shop.io", "smb"),
        ],
        orders=[order(f"O{n}", f"C{n}", "2026-11-19 10:00:00") for n in (1, 2, 3)],
    )
    lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00")

    # C2 moves segment; C3's new row changes nothing; C1 has no new row at all.
    lakehouse.land(
        "2026-11-20 08:00:00",
        customers=[
            customer("C2", "b@shop.io", "enterprise", updated_at="2026-11-20 08:00:00"),
            customer("C3", "c@shop.io", "smb", updated_at="2026-11-20 08:00:00"),
        ],
    )
    with caplog.at_level("INFO", logger="growth_revenue"):
        assert lakehouse.run(config, "2026-11-20", "2026-11-20 09:00:00").mode == INCREMENTAL
    assert "customer profiles: 2 customers with raw_customers rows appended since version 0 recomputed" in caplog.text
    assert "customers changed: 1 relabel, 0 remove" in caplog.text
    assert_equal_to_a_full_rebuild(lakehouse, config.rules, "2026-11-20")
    # The state carries every customer, recomputed or not, into the next night: C2's row is merged
    # in, and neither C3's unchanged profile nor anybody else's is rewritten.
    state = lakehouse.output(tables.CUSTOMER_STATE)
    assert {(row.customer_id, row.customer_segment) for row in state.collect()} == {
        ("C1", "smb"),
        ("C2", "enterprise"),
        ("C3", "smb"),
    }
    state_table = delta_log.delta_table(lakehouse.spark, Location(path=str(lakehouse.out / tables.CUSTOMER_STATE)))
    last = state_table.history(1).first()
    assert last.operation == "MERGE"
    assert delta_log.table_properties(state_table)[publishing.DELETION_VECTORS] == "true"  # rows marked, files kept
    assert {kind: last.operationMetrics[f"numTargetRows{kind}"] for kind in ("Inserted", "Updated", "Deleted")} == {
        "Inserted": "0",
        "Updated": "1",
        "Deleted": "0",
    }


@pytest.mark.slow
def test_raw_customers_rewritten_upstream_has_every_profile_recomputed_and_compared(lakehouse, config, caplog):
    lakehouse.land(
        "2026-11-20 05:00:00",
        customers=[
            customer("C1", "a@shop.io", "smb"),
            customer("C2", "b@shop.io", "enterprise"),
        ],
        orders=[order("O1", "C1", "2026-11-19 10:00:00"), order("O2", "C2", "2026-11-19 11:00:00")],
    )
    lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00")

    # An upstream reload drops C2's row and rewrites C1's: no appended file shows either change.
    lakehouse.write(customers=[customer("C1", "a@shop.io", "consumer")])
    with caplog.at_level("INFO", logger="growth_revenue"):
        assert lakehouse.run(config, "2026-11-20", "2026-11-20 08:00:00").mode == INCREMENTAL
    assert (
        "customer profiles: every customer's recomputed (raw_customers version 1 was a WRITE Overwrite" in caplog.text
    )
    assert_equal_to_a_full_rebuild(lakehouse, config.rules, "2026-11-20")
    assert mart_segments(lakehouse) == {"O1": "consumer", "O2": "unknown"}


def test_rows_appended_are_those_of_the_files_added_after_a_version(spark, tmp_path):
    path = str(tmp_path / tables.RAW_CUSTOMERS)
    for rows in ([customer("C1"), customer("C2")], [customer("C3")], [customer("C4"), customer("C1", segment="x")]):
        spark.createDataFrame(rows, CUSTOMERS_SCHEMA).write.format("delta").mode("append").save(path)
    appended = reading.rows_appended(spark, Location(path=path), tables.RAW_CUSTOMERS, 0, 2)
    assert sorted((row.customer_id, row.customer_segment) for row in appended.collect()) == [
        ("C1", "x"),
        ("C3", "smb"),
        ("C4", "smb"),
    ]
    assert reading.rows_appended(spark, Location(path=path), tables.RAW_CUSTOMERS, 2, 2).count() == 0


def test_files_added_come_from_the_commits_and_leave_out_files_a_later_commit_compacted_away(spark, tmp_path):
    path = str(tmp_path / tables.RAW_CUSTOMERS)
    for rows in ([customer("C1")], [customer("C2")], [customer("C3")]):
        spark.createDataFrame(rows, CUSTOMERS_SCHEMA).write.format("delta").mode("append").save(path)
    appended = reading.files_added(spark, path, 0, 2)
    assert len(appended) == 2 and all(file.endswith(".parquet") for file in appended)
    assert sorted(row.customer_id for row in spark.read.parquet(*appended).collect()) == ["C2", "C3"]
    DeltaTable.forPath(spark, path).optimize().executeCompaction()  # version 3: one file of every row
    (compacted,) = reading.files_added(spark, path, 0, 3)
    assert compacted not in appended
    # The compacted file brings old rows back: more to read, never a row missed.
    assert sorted(
        row.customer_id
        for row in reading.rows_appended(spark, Location(path=path), tables.RAW_CUSTOMERS, 0, 3).collect()
    ) == ["C1", "C2", "C3"]


def test_rows_appended_refuses_a_partitioned_table_whose_files_lack_the_partition_column(spark, tmp_path):
    path = str(tmp_path / tables.RAW_CUSTOMERS)
    for rows in ([customer("C1")], [customer("C2", segment="enterprise")]):
        spark.createDataFrame(rows, CUSTOMERS_SCHEMA).write.format("delta").mode("append").partitionBy(
            "customer_segment"
        ).save(path)
    with pytest.raises(ValueError, match="partitioned \\(by customer_segment\\)"):
        reading.rows_appended(spark, Location(path=path), tables.RAW_CUSTOMERS, 0, 1)


def test_the_mart_merge_leaves_the_session_settings_as_it_found_them(spark, tmp_path):
    """The MERGE sets its commit metadata and write spreading for itself alone: a notebook's or a
    Databricks job's session keeps its own settings."""
    location = Location(path=str(tmp_path / tables.MART))
    nov1, nov2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    spark.createDataFrame([("O1", nov1)], "order_id string, order_date date").write.format("delta").partitionBy(
        "order_date"
    ).save(location.path)
    changes = spark.createDataFrame(
        [("O1", nov1, False), ("O2", nov2, True)], "order_id string, order_date date, _present boolean"
    )
    spreading = "spark.sql.adaptive.coalescePartitions.minPartitionSize"
    spark.conf.set(spreading, "2MB")
    try:
        replaced = incremental.ReplacedRows(dates=(nov1,), order_dates=(nov1,)).condition(writing.TARGET)
        writing.merge_by_key(changes, location, "order_id", ("order_id", "order_date"), replaced, "run-1")
        assert spark.conf.get(spreading) == "2MB"
    finally:
        spark.conf.unset(spreading)
    assert spark.conf.get("spark.databricks.delta.commitInfo.userMetadata", None) is None
    assert delta_log.history(spark, location, limit=1)[0]["userMetadata"] == "run-1"
    assert [row.order_id for row in reading.read_output(spark, location).collect()] == ["O2"]


@pytest.mark.parametrize("kept", [False, True], ids=["default", "kept on by config"])
def test_an_incremental_run_stages_and_verifies_without_adaptive_execution_and_publishes_with_it(
    spark, lakehouse, config, monkeypatch, kept
):
    """incremental.adaptive_execution: off while a nightly stages and verifies its change, unless the
    config keeps it; a full rebuild and every write keep the session's setting, which comes back."""
    adaptive = pipeline.ADAPTIVE_EXECUTION
    config = dataclasses.replace(config, incremental=dataclasses.replace(config.incremental, adaptive_execution=kept))
    seen: list[tuple[str, str]] = []

    def recorded(name, call):
        def wrapper(*args, **kwargs):
            seen.append((name, spark.conf.get(adaptive)))
            return call(*args, **kwargs)

        return wrapper

    for module, name in ((staging, "stage_rebuild"), (staging, "stage_change"), (pipeline, "_verify")):
        monkeypatch.setattr(module, name, recorded(name, getattr(module, name)))
    monkeypatch.setattr(writing, "merge_by_key", recorded("merge", writing.merge_by_key))
    assert spark.conf.get(adaptive) == "true"  # the session's own setting (launch.base_conf)

    lakehouse.land("2026-11-20 05:00:00", customers=[customer("C1")], orders=[order("O1", "C1", "2026-11-19 10:00:00")])
    lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00")
    lakehouse.land("2026-11-21 05:00:00", orders=[order("O2", "C1", "2026-11-20 10:00:00")])
    assert lakehouse.run(config, "2026-11-21", "2026-11-21 07:00:00").mode == INCREMENTAL

    staged = "true" if kept else "false"
    assert seen == [
        ("stage_rebuild", "true"),
        ("_verify", "true"),
        ("stage_change", staged),
        ("_verify", staged),
        ("merge", "true"),
    ]
    assert spark.conf.get(adaptive) == "true"


def test_the_mart_merge_joins_only_the_rows_of_edited_customers_and_affected_orders(spark, tmp_path):
    """A segment move reaches every date, so the MERGE reads every file; ReplacedRows lets it join only
    the rows it can replace: the edited customers' rows anywhere, the affected orders' on their dates."""
    location = Location(path=str(tmp_path / tables.MART))
    d1, d2, d3 = (dt.date(2026, 11, day) for day in (1, 2, 3))
    schema = "order_id string, customer_id string, customer_segment string, order_date date"
    spark.createDataFrame(
        [
            ("MOVED1", "MOVER", "smb", d1),
            ("MOVED3", "MOVER", "smb", d3),
            ("FIXED", "C2", "smb", d2),
            ("KEPT", "C2", "smb", d1),
        ],
        schema,
    ).write.format("delta").partitionBy("order_date").save(location.path)
    replaced = incremental.ReplacedRows(dates=(d1, d2, d3), order_dates=(d2,), customers=("MOVER",))

    mart = reading.read_output(spark, location).alias("m")
    assert sorted(row.order_id for row in mart.where(replaced.condition("m")).collect()) == [
        "FIXED",
        "MOVED1",
        "MOVED3",
    ]

    changes = spark.createDataFrame(
        [
            ("MOVED1", "MOVER", "enterprise", d1, True),  # relabelled
            ("MOVED3", "MOVER", None, d3, False),  # deleted
            ("FIXED", "C2", "consumer", d2, True),  # recomputed
            ("NEW", "C2", "smb", d3, True),  # inserted
        ],
        f"{schema}, _present boolean",
    )
    columns = ("order_id", "customer_id", "customer_segment", "order_date")
    writing.merge_by_key(changes, location, "order_id", columns, replaced.condition(writing.TARGET), "run-1")
    assert sorted(tuple(row) for row in reading.read_output(spark, location).select(*columns).collect()) == [
        ("FIXED", "C2", "consumer", d2),
        ("KEPT", "C2", "smb", d1),
        ("MOVED1", "MOVER", "enterprise", d1),
        ("NEW", "C2", "smb", d3),
    ]


@pytest.mark.slow
def test_a_rebuilt_mart_stores_its_ids_and_event_times_without_parquet_dictionaries(lakehouse, config):
    """A dictionary only costs on columns with a new value on almost every row
    (transforms.MART_HIGH_CARDINALITY_COLUMNS): the rebuild stores those plain, and every other
    column keeps its dictionary."""
    # One customer's orders placed at the same instant: every column repeats, so Parquet would give
    # each a dictionary unless told not to.
    lakehouse.land(
        "2026-11-20 05:00:00",
        customers=[customer("C1", "a@shop.io", "smb")],
        orders=[order(f"O{i}", "C1", "2026-11-19 10:00:00") for i in range(50)],
    )
    lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00")

    (path,) = (lakehouse.out / tables.MART).glob("*.parquet")
    row_group = pq.ParquetFile(path).metadata.row_group(0)
    in_file = {row_group.column(i).path_in_schema for i in range(row_group.num_columns)}
    with_dictionary = {
        row_group.column(i).path_in_schema
        for i in range(row_group.num_columns)
        if row_group.column(i).has_dictionary_page
    }
    assert in_file == set(transforms.MART_COLUMNS)
    assert with_dictionary == in_file - set(transforms.MART_HIGH_CARDINALITY_COLUMNS)


@pytest.mark.slow
def test_a_mart_without_deletion_vectors_gets_them_at_its_next_full_rebuild_and_stays_incremental(lakehouse, config):
    lakehouse.land(
        "2026-11-20 05:00:00",
        customers=[customer("C1", "a@shop.io", "smb")],
        orders=[order("O1", "C1", "2026-11-19 10:00:00")],
    )
    lakehouse.run(with_deletion_vectors(config, False), "2026-11-20", "2026-11-20 07:00:00")
    assert publishing.DELETION_VECTORS not in mart_properties(lakehouse)

    rebuild = lakehouse.run(config, "2026-11-20", "2026-11-20 08:00:00", full_refresh=True)
    assert mart_properties(lakehouse)[publishing.DELETION_VECTORS] == "true"
    # The property went in a commit of its own, tagged with the run id only: it never claims the data.
    upgrade, write = delta_log.history(lakehouse.spark, Location(path=str(lakehouse.out / tables.MART)), 2)[::-1]
    assert (upgrade["operation"], upgrade["userMetadata"]) == ("SET TBLPROPERTIES", rebuild.run_id)
    assert json.loads(write["userMetadata"])["run_id"] == rebuild.run_id

    lakehouse.land(
        "2026-11-21 05:00:00",
        orders=[order("O1", "C1", "2026-11-19 10:00:00", status="cancelled", updated_at="2026-11-21 04:00:00")],
    )
    assert lakehouse.run(config, "2026-11-21", "2026-11-21 07:00:00").mode == INCREMENTAL
    assert_equal_to_a_full_rebuild(lakehouse, config.rules, "2026-11-21")


@pytest.mark.slow
def test_a_customer_state_without_deletion_vectors_gets_them_at_its_next_merge(lakehouse, config):
    lakehouse.land(
        "2026-11-20 05:00:00",
        customers=[customer("C1", "a@shop.io", "smb")],
        orders=[order("O1", "C1", "2026-11-19 10:00:00")],
    )
    lakehouse.run(with_deletion_vectors(config, False), "2026-11-20", "2026-11-20 07:00:00")
    state = Location(path=str(lakehouse.out / tables.CUSTOMER_STATE))
    assert publishing.DELETION_VECTORS not in delta_log.table_properties(delta_log.delta_table(lakehouse.spark, state))

    lakehouse.land(
        "2026-11-21 05:00:00",
        customers=[customer("C1", "a@shop.io", "enterprise", updated_at="2026-11-21 04:00:00")],
        orders=[order("O2", "C1", "2026-11-20 10:00:00")],
    )
    nightly = lakehouse.run(config, "2026-11-21", "2026-11-21 07:00:00")
    assert nightly.mode == INCREMENTAL
    assert (
        delta_log.table_properties(delta_log.delta_table(lakehouse.spark, state))[publishing.DELETION_VECTORS] == "true"
    )
    upgrade, merge = delta_log.history(lakehouse.spark, state, 2)[::-1]
    assert (upgrade["operation"], merge["operation"]) == ("SET TBLPROPERTIES", "MERGE")
    assert upgrade["userMetadata"] == merge["userMetadata"] == nightly.run_id
    assert_equal_to_a_full_rebuild(lakehouse, config.rules, "2026-11-21")


@pytest.mark.slow
def test_a_run_rebuilds_from_scratch_whenever_the_state_cannot_be_trusted(lakehouse, config, caplog):
    lakehouse.land(
        "2026-11-20 05:00:00",
        customers=[customer("C1", "a@shop.io", "smb")],
        orders=[order("O1", "C1", "2026-11-19 10:00:00"), order("O2", "C1", "2026-11-19 11:00:00")],
    )
    lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00")
    out, spark = lakehouse.out, lakehouse.spark

    def overwrite_raw_orders():  # an upstream reload rewrites an old row in place
        lakehouse.write(
            orders=[order("O1", "C1", "2026-11-19 10:00:00", amount="1.00", ingested_at="2026-11-20 05:00:00")]
        )

    fewer_statuses = dataclasses.replace(
        config, rules=dataclasses.replace(config.rules, revenue_statuses=("completed",))
    )
    # Each change, then the run after it: a full rebuild that says why, and equals one.
    changes = [
        (lambda: None, fewer_statuses, "rule config changed since run"),
        (overwrite_raw_orders, fewer_statuses, "was a WRITE Overwrite since run"),
        (lambda: shutil.rmtree(out / tables.CUSTOMER_STATE), fewer_statuses, "is unreadable"),
        (
            lambda: spark.sql(f"DELETE FROM delta.`{out / tables.MART}` WHERE order_id = 'O1'"),
            fewer_statuses,
            "(DELETE) was not written by this job",
        ),
    ]
    for hour, (change, run_config, reason) in enumerate(changes, start=8):
        change()
        caplog.clear()
        with caplog.at_level("INFO", logger="growth_revenue"):
            assert lakehouse.run(run_config, "2026-11-20", f"2026-11-20 {hour:02d}:00:00").mode == FULL
        assert reason in caplog.text
        assert_equal_to_a_full_rebuild(lakehouse, run_config.rules, "2026-11-20")


@pytest.mark.slow
def test_a_crash_before_the_mart_commit_leaves_the_watermark_and_a_rerun_applies_the_batch(
    lakehouse, config, monkeypatch
):
    lakehouse.land(
        "2026-11-20 05:00:00",
        customers=[customer("C1", "a@shop.io", "smb")],
        orders=[order("O1", "C1", "2026-11-19 10:00:00")],
    )
    lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00")
    state_before = mart_state.MartState.from_metadata(
        delta_log.history(lakehouse.spark, Location(path=str(lakehouse.out / tables.MART)))[0]["userMetadata"]
    )

    # The customer moves segment and a new order lands; the run dies after writing the customer
    # state, before its MERGE commits.
    lakehouse.land(
        "2026-11-21 05:00:00",
        customers=[customer("C1", "a@shop.io", "enterprise", updated_at="2026-11-21 04:00:00")],
        orders=[order("O2", "C1", "2026-11-20 10:00:00")],
    )

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed before the MERGE commit")

    monkeypatch.setattr(writing, "merge_by_key", crash)
    with pytest.raises(KeyboardInterrupt):
        lakehouse.run(config, "2026-11-21", "2026-11-21 07:00:00")
    history = delta_log.history(lakehouse.spark, Location(path=str(lakehouse.out / tables.MART)))
    assert mart_state.MartState.from_metadata(history[0]["userMetadata"]) == state_before  # nothing moved
    monkeypatch.undo()

    lakehouse.run(config, "2026-11-21", "2026-11-21 07:30:00")
    assert_equal_to_a_full_rebuild(lakehouse, config.rules, "2026-11-21")
    assert set(mart_segments(lakehouse).values()) == {"enterprise"}
    state = mart_state.MartState.from_metadata(
        delta_log.history(lakehouse.spark, Location(path=str(lakehouse.out / tables.MART)))[0]["userMetadata"]
    )
    assert dt.datetime.fromisoformat(state.orders_watermark) == ts("2026-11-21 05:00:00")


# --- deciding the mode: pure, no Spark ------------------------------------------------------------

RULES = mart_state.rule_inputs(
    ["completed"], ["example.com"], "unknown", "UTC", dt.date(2000, 1, 1), 24.0, "raw/o", "raw/c"
)


def commit(version, operation="MERGE", metadata=None, **parameters):
    return {"version": version, "operation": operation, "userMetadata": metadata, "operationParameters": parameters}


def state(rules=RULES, raw_version=3):
    return mart_state.MartState(
        run_id="r1",
        mode=INCREMENTAL,
        orders_watermark="2026-11-20T05:00:00.000000+00:00",
        customer_state_version=0,
        raw_orders_version=raw_version,
        rules=rules,
    )


def test_a_mart_whose_newest_commit_carries_the_state_runs_incrementally():
    decision = mart_state.decide([commit(2, metadata=state().to_metadata())], RULES, full_refresh=False)
    assert (decision.mode, decision.state) == (INCREMENTAL, state())


def test_maintenance_commits_after_the_state_do_not_force_a_rebuild():
    history = [commit(4, "OPTIMIZE"), commit(3, "VACUUM END"), commit(2, metadata=state().to_metadata())]
    assert mart_state.decide(history, RULES, full_refresh=False).mode == INCREMENTAL


@pytest.mark.parametrize(
    ("history", "rules", "full_refresh", "reason"),
    [
        ([], RULES, False, "first run"),
        ([commit(2, metadata=state().to_metadata())], RULES, True, "--full-refresh"),
        ([commit(2, "WRITE", "a-plain-run-id")], RULES, False, "was not written by this job"),
        ([commit(2, "OPTIMIZE")], RULES, False, "no watermark"),
        (
            [commit(2, metadata=state().to_metadata())],
            {**RULES, "reporting_timezone": "Europe/Paris"},
            False,
            "rule config changed since run r1: reporting_timezone",
        ),
        (
            [commit(2, metadata=state(rules={**RULES, "mart_logic_version": 0}).to_metadata())],
            RULES,
            False,
            "mart_logic_version",
        ),
        (
            [commit(2, metadata=state(rules={**RULES, "max_future_skew_hours": 48.0}).to_metadata())],
            RULES,
            False,
            "max_future_skew_hours",
        ),
        # What a state written before normalisation and the plausible dates (mart logic 1) holds.
        (
            [
                commit(
                    2,
                    metadata=state(
                        rules={
                            k: v
                            for k, v in {**RULES, "mart_logic_version": 1}.items()
                            if k not in ("earliest_order_date", "max_future_skew_hours")
                        }
                    ).to_metadata(),
                )
            ],
            RULES,
            False,
            "earliest_order_date, mart_logic_version, max_future_skew_hours",
        ),
    ],
)
def test_a_run_rebuilds_when_the_state_is_missing_stale_or_asked_to(history, rules, full_refresh, reason):
    decision = mart_state.decide(history, rules, full_refresh)
    assert decision.mode == FULL and reason in decision.reason


@pytest.mark.parametrize(
    ("raw_history", "rewrite"),
    [
        ([commit(5, "WRITE", mode="Append"), commit(4, "OPTIMIZE"), commit(3, "WRITE", mode="Append")], None),
        ([commit(4, "STREAMING UPDATE", outputMode="Append"), commit(3, "WRITE", mode="Append")], None),
        ([commit(4, "WRITE", mode="Overwrite"), commit(3, "WRITE", mode="Append")], "version 4 was a WRITE Overwrite"),
        ([commit(4, "DELETE"), commit(3, "WRITE", mode="Append")], "version 4 was a DELETE"),
        ([commit(5, "WRITE", mode="Append")], "no longer lists"),
        ([commit(2, "WRITE", mode="Append")], "went back from version 3 to 2"),
    ],
)
def test_raw_orders_changed_other_than_by_appends_is_seen(raw_history, rewrite):
    assert mart_state.raw_rewrite(3, raw_history) == rewrite or rewrite in mart_state.raw_rewrite(3, raw_history)


def test_the_state_reads_back_from_the_commit_metadata_and_names_its_run():
    metadata = state().to_metadata()
    assert mart_state.MartState.from_metadata(metadata) == state()
    assert json.loads(metadata)["run_id"] == "r1"  # what delta_log.commit_of_run finds the run's commit by
    assert mart_state.MartState.from_metadata("not json") is None
    assert mart_state.MartState.from_metadata(None) is None


def test_a_customer_change_relabels_removes_or_recomputes_by_whether_their_orders_count(spark):
    schema = "customer_id string, customer_segment string, is_test_customer boolean"
    before = spark.createDataFrame(
        [
            ("same", "smb", False),
            ("moved", "smb", False),
            ("turned_test", "smb", False),
            ("went", "smb", False),
            ("stopped_test", "smb", True),
            ("test_moved", "smb", True),
        ],
        schema,
    )
    after = spark.createDataFrame(
        [
            ("same", "smb", False),
            ("moved", "enterprise", False),
            ("turned_test", "smb", True),
            ("came", "consumer", False),
            ("came_test", "smb", True),
            ("stopped_test", "smb", False),
            ("test_moved", "consumer", True),
        ],
        schema,
    )
    changes = {
        row.customer_id: (row.action, row.customer_segment)
        for row in incremental.customer_changes(before, after, "unknown").collect()
    }
    assert changes == {
        "moved": (incremental.RELABEL, "enterprise"),
        "went": (incremental.RELABEL, "unknown"),  # no customer row any more: the unknown segment
        "came": (incremental.RELABEL, "consumer"),  # its orders were 'unknown' until now
        "turned_test": (incremental.REMOVE, "smb"),
        "came_test": (incremental.REMOVE, "smb"),
        "stopped_test": (incremental.RECOMPUTE, "smb"),  # its orders are not in the mart: only raw has them
        "test_moved": (incremental.NO_EFFECT, "consumer"),
    }


def test_mart_changes_hold_only_rows_that_differ_with_deletions_marked(spark):
    schema = ", ".join(
        f"{c} {t}"
        for c, t in zip(
            transforms.MART_COLUMNS,
            ("string", "string", "string", "timestamp", "date", "string", "decimal(18,2)", "timestamp", "timestamp"),
            strict=True,
        )
    )
    t0, d0 = ts("2026-11-20 10:00:00"), dt.date(2026, 11, 20)
    row = lambda order_id, revenue, day=d0: (order_id, "C1", "smb", t0, day, "completed", Decimal(revenue), t0, t0)  # noqa: E731
    current = spark.createDataFrame([row("same", "1.00"), row("updated", "2.00"), row("deleted", "3.00")], schema)
    staged = spark.createDataFrame(
        [row("same", "1.00"), row("updated", "2.50", dt.date(2026, 11, 21)), row("inserted", "4.00")], schema
    )
    changes = {
        r.order_id: (r._present, r._target_date, r.revenue) for r in incremental.mart_changes(current, staged).collect()
    }
    assert changes == {
        "updated": (True, d0, Decimal("2.50")),
        "deleted": (False, d0, None),
        "inserted": (True, None, Decimal("4.00")),
    }


# --- the mart's layout: files of a week of order dates each, re-sorted by the job -----------------


def with_layout(config, resort_share=None, resort_min_mb=0.0):
    """The config with the re-sort's floor (and share) lowered: a test's mart is a few KB."""
    share = config.incremental.mart_resort_share if resort_share is None else resort_share
    incremental_settings = dataclasses.replace(
        config.incremental, mart_resort_share=share, mart_resort_min_mb=resort_min_mb
    )
    return dataclasses.replace(config, incremental=incremental_settings)


def land_eight_weeks(lakehouse):
    """Three orders a day on 56 days up to 2026-11-19, with random ids, landed in random order."""
    rng = random.Random(18)
    first = dt.date(2026, 9, 25)
    orders = [
        order(
            f"O{rng.getrandbits(48):012x}", f"C{rng.randrange(6)}", f"{first + dt.timedelta(days=day)} {hour:02d}:00:00"
        )
        for day in range(56)
        for hour in (9, 13, 17)
    ]
    rng.shuffle(orders)
    customers = [customer(f"C{i}", f"c{i}@shop.io", ("smb", "enterprise")[i % 2]) for i in range(6)]
    lakehouse.land("2026-11-20 05:00:00", customers=customers, orders=orders)


def mart_location(lakehouse) -> Location:
    return Location(path=str(lakehouse.out / tables.MART))


def file_ranges(lakehouse) -> list[tuple[dt.date, dt.date]]:
    """Each of the mart's files' (first, last) order_date, by first."""
    per_file = (
        lakehouse.output(tables.MART).groupBy("_metadata.file_path").agg(F.min("order_date"), F.max("order_date"))
    )
    return sorted((first, last) for _, first, last in per_file.collect())


def assert_date_ranged(lakehouse, rebuilt=False):
    """The mart's files hold ranges of order dates that do not overlap: the report's filter skips
    files by them. A rebuild cuts between dates and sorts each file; the re-sort (a ZORDER) cuts
    files by size, so two files may share the date they are cut at."""
    ranges = file_ranges(lakehouse)
    if rebuilt:
        assert all(earlier[1] < later[0] for earlier, later in itertools.pairwise(ranges)), ranges
    else:
        assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(ranges)), ranges
    for uri in lakehouse.output(tables.MART).inputFiles() if rebuilt else ():
        dates = pq.read_table(uri.removeprefix("file:"), columns=["order_date"]).column("order_date").to_pylist()
        assert dates == sorted(dates), uri
    detail = delta_log.existing_table(lakehouse.spark, mart_location(lakehouse)).detail().first()
    assert detail["partitionColumns"] == []
    return ranges


@pytest.mark.slow
@pytest.mark.every_line
def test_a_rebuild_sorts_the_mart_into_a_file_per_week_of_order_dates(lakehouse, config):
    land_eight_weeks(lakehouse)
    lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00")
    ranges = assert_date_ranged(lakehouse, rebuilt=True)
    # 56 dates of as many orders each: the sampled cuts fall on the weeks.
    assert len(ranges) == mart_layout.ranges(dt.date(2026, 9, 25), dt.date(2026, 11, 19), 7) == 8
    assert all((last - first).days == 6 for first, last in ranges), ranges


@pytest.mark.slow
@pytest.mark.every_line
def test_a_night_past_the_re_sort_share_ends_with_an_optimize_zorder_and_the_next_stays_incremental(lakehouse, config):
    config = with_layout(config, resort_share=0.01)
    land_eight_weeks(lakehouse)
    lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00")
    # C0 moves segment: its orders on every date change, in files of the MERGE that span them all.
    lakehouse.land(
        "2026-11-21 05:00:00",
        customers=[customer("C0", "c0@shop.io", "consumer", updated_at="2026-11-21 04:00:00")],
        orders=[order("N1", "C1", "2026-11-20 10:00:00")],
    )
    night = lakehouse.run(config, "2026-11-21", "2026-11-21 07:00:00")
    assert night.mode == INCREMENTAL
    resort, merge = delta_log.history(lakehouse.spark, mart_location(lakehouse), 2)
    assert (resort["operation"], resort["userMetadata"]) == ("OPTIMIZE", night.run_id)
    assert json.loads(resort["operationParameters"]["zOrderBy"]) == ["order_date"]
    assert merge["operation"] == "MERGE"
    assert mart_state.MartState.from_metadata(merge["userMetadata"]).run_id == night.run_id
    assert len(assert_date_ranged(lakehouse)) > 1
    assert_equal_to_a_full_rebuild(lakehouse, config.rules, "2026-11-21")

    # The state stays on the MERGE's commit: the re-sort moved no row, so the next night goes on from it.
    lakehouse.land("2026-11-22 05:00:00", orders=[order("N2", "C2", "2026-11-21 10:00:00")])
    assert lakehouse.run(config, "2026-11-22", "2026-11-22 07:00:00").mode == INCREMENTAL
    assert_equal_to_a_full_rebuild(lakehouse, config.rules, "2026-11-22")


@pytest.mark.slow
def test_a_plain_optimize_by_another_writer_is_re_sorted_by_the_next_run(lakehouse, config, caplog):
    config = with_layout(config)
    land_eight_weeks(lakehouse)
    lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00")
    DeltaTable.forPath(lakehouse.spark, mart_location(lakehouse).path).optimize().executeCompaction()
    assert len(file_ranges(lakehouse)) == 1  # every date packed into one file: each report reads all of it

    lakehouse.land("2026-11-21 05:00:00", orders=[order("N1", "C1", "2026-11-20 10:00:00")])
    with caplog.at_level("INFO", logger="growth_revenue"):
        night = lakehouse.run(config, "2026-11-21", "2026-11-21 07:00:00")
    assert night.mode == INCREMENTAL  # OPTIMIZE preserves the data: the state still holds
    assert "compacted it without ZORDER BY (order_date)" in caplog.text
    assert delta_log.history(lakehouse.spark, mart_location(lakehouse), 1)[0]["operation"] == "OPTIMIZE"
    assert len(assert_date_ranged(lakehouse)) > 1
    assert_equal_to_a_full_rebuild(lakehouse, config.rules, "2026-11-21")


@pytest.mark.slow
def test_a_re_sort_that_loses_to_another_writer_waits_for_the_next_run(lakehouse, config, caplog, monkeypatch):
    config = with_layout(config, resort_share=0.01)
    land_eight_weeks(lakehouse)
    lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00")
    lakehouse.land("2026-11-21 05:00:00", orders=[order("N1", "C1", "2026-11-20 10:00:00")])

    def another_writer_keeps_committing(*args):
        raise writing.ConflictError("retried 3 time(s), giving up")

    monkeypatch.setattr(writing, "sort_into_ranges", another_writer_keeps_committing)
    with caplog.at_level("WARNING", logger="growth_revenue"):
        lakehouse.run(config, "2026-11-21", "2026-11-21 07:00:00")  # published: NightlyLakehouse checks the exit code
    assert "not re-sorted (retried 3 time(s), giving up): the next run tries again" in caplog.text
    assert delta_log.history(lakehouse.spark, mart_location(lakehouse), 1)[0]["operation"] == "MERGE"
    assert_equal_to_a_full_rebuild(lakehouse, config.rules, "2026-11-21")


@pytest.mark.slow
def test_a_mart_partitioned_by_an_earlier_release_stays_incremental_until_a_rebuild_sorts_it(lakehouse, config):
    config = with_layout(config, resort_share=0.01)
    land_eight_weeks(lakehouse)
    lakehouse.run(config, "2026-11-20", "2026-11-20 07:00:00")
    # The mart as releases before the date-ranged layout wrote it: partitioned, the same state on its commit.
    (state_commit,) = delta_log.history(lakehouse.spark, mart_location(lakehouse), 1)
    (
        lakehouse.output(tables.MART)
        .write.format("delta")
        .mode("overwrite")
        .option("overwriteSchema", "true")
        .option("userMetadata", state_commit["userMetadata"])
        .partitionBy("order_date")
        .save(mart_location(lakehouse).path)
    )

    lakehouse.land("2026-11-21 05:00:00", orders=[order("N1", "C1", "2026-11-20 10:00:00")])
    assert lakehouse.run(config, "2026-11-21", "2026-11-21 07:00:00").mode == INCREMENTAL
    (newest,) = delta_log.history(lakehouse.spark, mart_location(lakehouse), 1)
    assert newest["operation"] == "MERGE"  # no ZORDER on a partition column: it waits for the rebuild
    assert delta_log.size_and_partitioning(lakehouse.spark, mart_location(lakehouse))[1] == ["order_date"]
    assert_equal_to_a_full_rebuild(lakehouse, config.rules, "2026-11-21")

    lakehouse.run(config, "2026-11-21", "2026-11-21 08:00:00", full_refresh=True)
    # 2026-09-25 to 11-20, N1's date: 57 days, 9 files.
    assert len(assert_date_ranged(lakehouse, rebuilt=True)) == 9
    assert_equal_to_a_full_rebuild(lakehouse, config.rules, "2026-11-21")
