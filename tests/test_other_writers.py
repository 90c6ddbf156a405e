"""Raw tables written by another engine (delta-rs, via the `deltalake` package) are read as-is."""

import datetime as dt
from decimal import Decimal

import pyarrow as pa
from chispa import assert_df_equality
from deltalake import write_deltalake
from lakehouse import Lakehouse

from growth_revenue import tables
from growth_revenue.exit_codes import ExitCode

UTC = dt.timezone.utc
TS = pa.timestamp("us", tz="UTC")


def test_raw_tables_written_by_delta_rs_with_extra_columns_are_read(spark, config, tmp_path):
    at = lambda day, hour=10: dt.datetime(2026, 11, day, hour, tzinfo=UTC)  # noqa: E731
    write_deltalake(
        str(tmp_path / tables.RAW_ORDERS),
        pa.table(
            {
                "order_id": ["O1", "O1", "O2"],
                "customer_id": ["C1", "C1", None],
                "order_ts": pa.array([at(20), at(20), at(21)], TS),
                "status": ["pending", "Completed", "fulfilled"],
                "amount": pa.array([Decimal("10.00"), Decimal("12.50"), Decimal("7.25")], pa.decimal128(18, 2)),
                "updated_at": pa.array([at(20), at(21), at(21)], TS),
                "_ingested_at": pa.array([at(20), at(21), at(25, 6)], TS),
                "source_system": ["web", "web", "app"],  # not in the contract: ignored
            }
        ),
    )
    write_deltalake(
        str(tmp_path / tables.RAW_CUSTOMERS),
        pa.table(
            {
                "customer_id": ["C1"],
                "email": ["a@shop.io"],
                "customer_segment": [" SMB "],
                "is_test_user": pa.array([None], pa.bool_()),
                "updated_at": pa.array([at(1)], TS),
            }
        ),
    )
    lakehouse = Lakehouse(spark, tmp_path)

    assert lakehouse.run(config, as_of=dt.date(2026, 11, 25), at=at(25, 7)).exit_code == ExitCode.OK

    mart = lakehouse.output(tables.MART)
    expected = spark.createDataFrame(
        [("O1", "C1", "smb", Decimal("12.50")), ("O2", None, "unknown", Decimal("7.25"))],
        "order_id string, customer_id string, customer_segment string, revenue decimal(18,2)",
    )
    assert_df_equality(
        mart.select("order_id", "customer_id", "customer_segment", "revenue"),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
