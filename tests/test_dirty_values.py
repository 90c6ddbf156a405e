"""Dirty text and impossible dates (README "The rules" and "Quarantine"), one row per case.

The raw tables are written by another engine (delta-rs, through `deltalake`), the job runs once over
all the cases, and each case is checked where it must show: the mart, the quarantine, the report and
the gate. The outputs' timestamps are then read back by delta-rs and compared with Spark's.
Tests that need a run of the job are marked slow (the default line runs them); the transforms alone
run on every line.
"""

import dataclasses
import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, QueryBuilder, write_deltalake
from lakehouse import Lakehouse
from pyspark.sql import functions as F
from rows import customer, order, ts

from growth_revenue import mart_state, matching, quality, sparkutil, tables, transforms
from growth_revenue.exit_codes import ExitCode

AS_OF = dt.date(2026, 11, 25)
NIGHTLY = ts("2026-11-25 07:00:00")  # with the default 24 hours of skew, order_ts up to 2026-11-26 07:00 are plausible
LANDED = "2026-11-25 06:00:00"
ORDER_TS = "2026-11-20 12:00:00"  # inside the report's window
REAL = "C_REAL"

# (e-mail, a test user?): rule 3 after normalisation (test domains example.com and test.example)
EMAILS = [
    ("qa@example.com", True),
    ("QA@EXAMPLE.COM", True),
    ("qa@example.com ", True),  # trailing space
    ("qa@EXAMPLE.COM\n", True),  # trailing newline
    ("qa@example.com\r\n", True),
    ("qa@\texample.com", True),  # a tab after the @
    ("qa@\u00a0example.com", True),  # a no-break space after the @
    ("qa@example.com\u2003", True),  # em space
    ("qa@Example.Com\u3000", True),  # ideographic space
    ("qa@example.com\u2028", True),  # line separator
    ("qa@example.com\x00", True),  # NUL
    ("qa@\x1bexample.com", True),  # escape: a C0 control
    ("qa@\u0085example.com", True),  # next line: a C1 control
    ("qa@example.com.", True),  # a fully qualified domain
    ("qa@EXAMPLE.COM.", True),
    ("qa@Test.Example.\t", True),
    ("qa@example.com. ", True),  # padding is trimmed before the dot is dropped
    ("qa@sub.test.example", False),  # the match stays exact
    ("qa@example.com..", False),  # one trailing dot is dropped, not two
    ("qa@exam ple.com", False),  # padding inside is not trimmed
    ("qa@example.com\u200b", False),  # a zero-width space is neither white space nor a control
    ("qa@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", False),  # full-width letters: no NFKC
    ("qa@example.com @shop.io", False),  # the domain is after the last @
    ("example.com", False),  # no @: no domain
]

# (status, revenue?): rule 2 after normalisation (revenue statuses completed and fulfilled)
STATUSES = [
    ("completed", True),
    ("\u00a0completed", True),
    ("\tcompleted\n", True),
    (" COMPLETED ", True),
    ("Fulfilled\r", True),
    ("\u3000fulfilled\u2029", True),
    ("completed\x00", True),
    ("\u0085Completed\x7f", True),
    ("complete d", False),
    ("completed.", False),
    ("\u200bcompleted", False),
    ("cancelled", False),
    ("\t", False),
    (None, False),
]

# (raw segment, published segment): rule 4 after normalisation
SEGMENTS = [
    (" SMB\t", "smb"),
    ("\u00a0Enterprise\n", "enterprise"),
    ("Mid-Market\u2003", "mid-market"),
    ("\x0bconsumer\x0c", "consumer"),
    ("Mid Market", "mid market"),
    ("\t\n", "unknown"),
    ("\u00a0\u3000", "unknown"),
    ("", "unknown"),
    (None, "unknown"),
]

# (order_ts, quarantine reason): the plausible bounds for a run at NIGHTLY, and just past them
DATES = [
    ("2000-01-01 00:00:00", None),  # the first plausible instant (rules.earliest_order_date)
    ("1999-12-31 23:59:59.999999", transforms.IMPLAUSIBLE_ORDER_TS),
    ("2026-11-26 07:00:00", None),  # the last: the run's time plus rules.max_future_skew_hours
    ("2026-11-26 07:00:00.000001", transforms.IMPLAUSIBLE_ORDER_TS),
    ("2026-11-24 23:59:59.999999", None),  # the report window's last instant
    ("9999-12-31 23:00:00", transforms.IMPLAUSIBLE_ORDER_TS),
    ("1900-01-01 00:00:00", transforms.IMPLAUSIBLE_ORDER_TS),
]


def amount(i: int) -> str:
    return f"{i + 1}.00"


def raw_rows():
    """(orders, customers): one order per case, with its own id and amount."""
    orders, customers = [], [customer(REAL, email="a@shop.io", segment="enterprise")]
    for i, (email, _) in enumerate(EMAILS):
        customers.append(customer(f"E{i:02}", email=email, segment="smb"))
        orders.append(order(f"OE{i:02}", f"E{i:02}", ORDER_TS, amount=amount(i), ingested_at=LANDED))
    for i, (status, _) in enumerate(STATUSES):
        orders.append(order(f"OS{i:02}", REAL, ORDER_TS, status=status, amount=amount(i), ingested_at=LANDED))
    for i, (segment, _) in enumerate(SEGMENTS):
        customers.append(customer(f"G{i:02}", email=f"g{i}@shop.io", segment=segment))
        orders.append(order(f"OG{i:02}", f"G{i:02}", ORDER_TS, amount=amount(i), ingested_at=LANDED))
    for i, (order_ts, _) in enumerate(DATES):
        orders.append(order(f"OD{i:02}", REAL, order_ts, amount=amount(i), updated_at=LANDED, ingested_at=LANDED))
    return orders, customers


def write_with_delta_rs(root: Path, orders, customers) -> None:
    """The raw tables as another engine writes them (Parquet INT64 microsecond timestamps)."""
    stamp = pa.timestamp("us", tz="UTC")
    columns = list(zip(*orders, strict=True))
    write_deltalake(
        str(root / tables.RAW_ORDERS),
        pa.table(
            {
                "order_id": pa.array(columns[0], pa.string()),
                "customer_id": pa.array(columns[1], pa.string()),
                "order_ts": pa.array(columns[2], stamp),
                "status": pa.array(columns[3], pa.string()),
                "amount": pa.array(columns[4], pa.decimal128(18, 2)),
                "updated_at": pa.array(columns[5], stamp),
                "_ingested_at": pa.array(columns[6], stamp),
            }
        ),
    )
    columns = list(zip(*customers, strict=True))
    write_deltalake(
        str(root / tables.RAW_CUSTOMERS),
        pa.table(
            {
                "customer_id": pa.array(columns[0], pa.string()),
                "email": pa.array(columns[1], pa.string()),
                "customer_segment": pa.array(columns[2], pa.string()),
                "is_test_user": pa.array(columns[3], pa.bool_()),
                "updated_at": pa.array(columns[4], stamp),
            }
        ),
    )


def lakehouse_at(spark, root: Path) -> Lakehouse:
    """The lakehouse under `root`, run for AS_OF at 07:00 unless a run says otherwise."""
    return Lakehouse(spark, root, as_of=AS_OF, run_at=NIGHTLY)


@pytest.fixture(scope="module")
def published(spark, config, tmp_path_factory):
    """One run over every case: (output dir, outcome, mart rows by id, quarantine rows by id)."""
    root = tmp_path_factory.mktemp("dirty_values")
    write_with_delta_rs(root, *raw_rows())
    # Quarantined dates are a share of these few orders far above the default limit; the limit has its own test.
    lenient = dataclasses.replace(config, quality=dataclasses.replace(config.quality, quarantine_max_share=1.0))
    outcome = lakehouse_at(spark, root).run(lenient)
    assert outcome.exit_code == ExitCode.OK
    out = root / "out"
    read = lambda name: {r["order_id"]: r for r in spark.read.format("delta").load(str(out / name)).collect()}  # noqa: E731
    return out, outcome, read(tables.MART), read(tables.QUARANTINE)


def case_id(value) -> str:
    return ascii(value)


@pytest.mark.parametrize(
    ("i", "email", "is_test"),
    [(i, *case) for i, case in enumerate(EMAILS)],
    ids=[case_id(email) for email, _ in EMAILS],
)
@pytest.mark.slow
def test_a_test_users_order_never_reaches_the_mart_whatever_the_padding_of_the_e_mail(published, i, email, is_test):
    _, _, mart, quarantine = published
    assert (f"OE{i:02}" in mart) is not is_test
    assert f"OE{i:02}" not in quarantine


@pytest.mark.parametrize(
    ("i", "status", "is_revenue"),
    [(i, *case) for i, case in enumerate(STATUSES)],
    ids=[case_id(status) for status, _ in STATUSES],
)
@pytest.mark.slow
def test_a_padded_revenue_status_is_counted(published, i, status, is_revenue):
    _, _, mart, _ = published
    assert (f"OS{i:02}" in mart) is is_revenue
    if is_revenue:
        assert mart[f"OS{i:02}"]["status"] == status  # the mart shows the status as it arrived


@pytest.mark.parametrize(
    ("i", "segment", "expected"),
    [(i, *case) for i, case in enumerate(SEGMENTS)],
    ids=[case_id(segment) for segment, _ in SEGMENTS],
)
@pytest.mark.slow
def test_a_padded_segment_is_published_normalised(published, i, segment, expected):
    _, _, mart, _ = published
    assert mart[f"OG{i:02}"]["customer_segment"] == expected


@pytest.mark.parametrize(
    ("i", "order_ts", "reason"), [(i, *case) for i, case in enumerate(DATES)], ids=[order_ts for order_ts, _ in DATES]
)
@pytest.mark.slow
def test_an_implausible_order_ts_is_quarantined_and_the_bounds_themselves_are_published(published, i, order_ts, reason):
    _, _, mart, quarantine = published
    order_id = f"OD{i:02}"
    if reason is None:
        assert order_id in mart and order_id not in quarantine
        assert mart[order_id]["order_date"] == ts(order_ts).date()
    else:
        assert order_id not in mart
        assert quarantine[order_id]["quarantine_reason"] == reason


@pytest.mark.slow
def test_the_report_sums_exactly_the_orders_the_cases_publish(spark, published):
    out, outcome, _, _ = published
    first, last = transforms.report_window(AS_OF, 30)
    expected: dict[str, list[Decimal]] = {}

    def publish(segment, i, order_ts=ORDER_TS):
        if first <= ts(order_ts).date() <= last:
            expected.setdefault(segment, []).append(Decimal(amount(i)))

    for i, (_, is_test) in enumerate(EMAILS):
        if not is_test:
            publish("smb", i)
    for i, (_, is_revenue) in enumerate(STATUSES):
        if is_revenue:
            publish("enterprise", i)
    for i, (_, segment) in enumerate(SEGMENTS):
        publish(segment, i)
    for i, (order_ts, reason) in enumerate(DATES):
        if reason is None:
            publish("enterprise", i, order_ts)
    report = {
        r["customer_segment"]: (r["revenue"], r["order_count"])
        for r in spark.read.format("delta").load(str(out / tables.REPORT)).collect()
    }
    assert report == {segment: (sum(amounts), len(amounts)) for segment, amounts in expected.items()}
    assert {r["customer_segment"]: r["revenue"] for r in outcome.report_rows} == {k: v[0] for k, v in report.items()}


@pytest.mark.slow
def test_the_benchs_peers_written_from_readme_publish_the_same_report(spark, config, published, tmp_path):
    """bench/peers.py implements README's rules on its own (regular expressions over Unicode
    properties, not matching.PADDING): DuckDB and a naive Spark query agree on every case."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import peers

    out, outcome, _, _ = published
    raw = out.parent
    job = {r["customer_segment"]: (r["revenue"], r["order_count"], r["customer_count"]) for r in outcome.report_rows}
    naive = {
        r["customer_segment"]: (r["revenue"], r["order_count"], r["customer_count"])
        for r in peers.naive_report(spark, config.rules, raw, AS_OF).collect()
    }
    duck = peers.duckdb_recompute(raw, tmp_path / "mart", config.rules, AS_OF, 1024, tmp_path / "spill")
    assert naive == job
    assert {r["customer_segment"]: (r["revenue"], r["order_count"], r["customer_count"]) for r in duck.report} == job
    assert duck.mart_rows == len(published[2])


@pytest.mark.slow
def test_the_gate_finds_no_test_user_and_counts_the_implausible_dates_as_quarantined(published):
    _, outcome, _, _ = published
    results = {r.rule.says: r for r in outcome.results}
    assert results["no order of a test user"].status == quality.SUCCESS
    quarantined = results["no revenue order is quarantined"]
    assert quarantined.status == quality.FAILURE and quarantined.check.level is quality.Level.WARNING
    assert f"{transforms.IMPLAUSIBLE_ORDER_TS}" in quarantined.message
    assert quarantined.metric_value == sum(reason is not None for _, reason in DATES)


def test_the_gates_test_user_lookup_uses_the_same_normalisation_as_the_filter(spark, make_orders, make_customers):
    """Orders of every e-mail case forced into a staged mart: the gate's own lookup tells them apart."""
    customers = make_customers([customer(f"E{i:02}", email=email) for i, (email, _) in enumerate(EMAILS)])
    profiles = transforms.customer_profiles(customers, ["example.com", "test.example"], "unknown")
    staged = make_orders([order(f"OE{i:02}", f"E{i:02}") for i in range(len(EMAILS))]).select(
        "order_id", "customer_id", F.col("amount").alias("revenue")
    )
    kinds = {r["order_id"]: r["customer_kind"] for r in transforms.with_test_customer_flag(staged, profiles).collect()}
    assert kinds == {f"OE{i:02}": "test" if is_test else "real" for i, (_, is_test) in enumerate(EMAILS)}


def test_the_rules_normalise_each_case_without_a_job_run(spark, make_orders, make_customers):
    """The same tables of cases through the transforms alone: quick to run, and to break."""
    customers = make_customers(
        [customer(f"E{i:02}", email=email) for i, (email, _) in enumerate(EMAILS)]
        + [customer(f"G{i:02}", segment=segment) for i, (segment, _) in enumerate(SEGMENTS)]
    )
    profiles = {
        r["customer_id"]: r
        for r in transforms.customer_profiles(customers, ["example.com", "test.example"], "unknown").collect()
    }
    assert [profiles[f"E{i:02}"]["is_test_customer"] for i in range(len(EMAILS))] == [t for _, t in EMAILS]
    assert [profiles[f"G{i:02}"]["customer_segment"] for i in range(len(SEGMENTS))] == [g for _, g in SEGMENTS]
    statuses = make_orders([order(f"OS{i:02}", status=status) for i, (status, _) in enumerate(STATUSES)])
    revenue = {
        r["order_id"]: r["is_revenue"]
        for r in statuses.select(
            "order_id", transforms.is_revenue_status(F.col("status"), ["completed", "fulfilled"]).alias("is_revenue")
        ).collect()
    }
    assert [revenue[f"OS{i:02}"] for i in range(len(STATUSES))] == [r for _, r in STATUSES]
    bounds = transforms.plausible_order_ts(NIGHTLY, 24, dt.date(2000, 1, 1), "UTC")
    dated = make_orders([order(f"OD{i:02}", order_ts=order_ts) for i, (order_ts, _) in enumerate(DATES)])
    reasons = {
        r["order_id"]: r["quarantine_reason"]
        for r in transforms.classify_orders(
            dated,
            profiles=customers.limit(0).select(
                "customer_id", F.lit("smb").alias("customer_segment"), F.lit(False).alias("is_test_customer")
            ),
            revenue_statuses=["completed"],
            unknown_segment="unknown",
            order_ts_bounds=bounds,
        ).collect()
    }
    assert [reasons[f"OD{i:02}"] for i in range(len(DATES))] == [r for _, r in DATES]


def test_the_earliest_order_date_is_a_day_in_the_reporting_time_zone():
    earliest, latest = transforms.plausible_order_ts(NIGHTLY, 24, dt.date(2000, 1, 1), "America/Los_Angeles")
    assert (earliest, latest) == (ts("2000-01-01 08:00:00"), ts("2026-11-26 07:00:00"))


def test_configured_values_are_normalised_like_the_data():
    assert matching._normalised([" Completed\u00a0", "FULFILLED\x7f\n"]) == ["completed", "fulfilled"]
    assert matching._normalised_domains(["Example.COM.", "\ttest.example "]) == ["example.com", "test.example"]


@pytest.mark.slow
def test_the_quarantine_share_counts_implausible_dates_like_the_other_reasons(spark, config, tmp_path):
    """One order of ten dated in the far future: 10% quarantined, over the default 1%: nothing is published."""
    orders = [order(f"O{i}", REAL, ORDER_TS, ingested_at=LANDED) for i in range(9)]
    orders.append(order("O9", REAL, "9999-12-31 23:00:00", updated_at=LANDED, ingested_at=LANDED))
    write_with_delta_rs(tmp_path, orders, [customer(REAL, email="a@shop.io")])

    outcome = lakehouse_at(spark, tmp_path).run(config)

    assert outcome.exit_code == ExitCode.QUALITY_GATE
    failed = [r for r in outcome.results if r.blocks_publishing]
    assert [(r.rule.says, r.metric_value) for r in failed] == [("at most 1% of revenue orders are quarantined", 0.1)]
    assert not (tmp_path / "out" / tables.MART).exists()


# --- the timestamps every engine reads --------------------------------------------------------

TIMESTAMP_TABLES = {  # table: (key columns, timestamp columns)
    tables.MART: (("order_id",), ("order_ts", "updated_at", "_ingested_at")),
    tables.QUARANTINE: (("order_id",), ("order_ts", "updated_at", "_ingested_at")),
    tables.REPORT: (("as_of_date", "customer_segment"), ("computed_at",)),
}


def parquet_files(table: Path) -> list[Path]:
    return sorted(table.rglob("*.parquet"))


@pytest.mark.slow
@pytest.mark.parametrize("table", [*tables.OUTPUTS, tables.CUSTOMER_STATE])
def test_no_output_table_has_an_int96_column(published, table):
    out = published[0]
    files = parquet_files(out / table)
    assert files
    physical = {(column.name, column.physical_type) for path in files for column in pq.ParquetFile(path).schema}
    assert not [name for name, kind in physical if kind == "INT96"]
    for column in TIMESTAMP_TABLES.get(table, ((), ()))[1]:
        assert (column, "INT64") in physical


def spark_instants(spark, path: Path, keys, columns) -> dict:
    frame = spark.read.format("delta").load(str(path))
    texts = [F.date_format(c, "yyyy-MM-dd HH:mm:ss.SSSSSS").alias(c) for c in columns]  # the session is in UTC
    return {tuple(str(r[k]) for k in keys): tuple(r[c] for c in columns) for r in frame.select(*keys, *texts).collect()}


def delta_rs_instants(path: Path, keys, columns) -> dict:
    """What delta-rs' DataFusion reader (it applies deletion vectors) reads, as UTC text."""
    batches = QueryBuilder().register("t", DeltaTable(str(path))).execute("SELECT * FROM t")
    rows = pa.RecordBatchReader.from_stream(batches).read_all().to_pylist()
    text = lambda value: value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")  # noqa: E731
    return {tuple(str(r[k]) for k in keys): tuple(text(r[c]) for c in columns) for r in rows}


@pytest.mark.slow
@pytest.mark.parametrize("table", list(TIMESTAMP_TABLES))
def test_delta_rs_reads_every_output_timestamp_as_spark_does(spark, published, table):
    out = published[0]
    keys, columns = TIMESTAMP_TABLES[table]
    in_spark = spark_instants(spark, out / table, keys, columns)
    assert in_spark and in_spark == delta_rs_instants(out / table, keys, columns)
    if table == tables.QUARANTINE:  # the far-future order as well, which INT96 turned into 1816
        assert (
            in_spark[(f"OD{DATES.index(('9999-12-31 23:00:00', transforms.IMPLAUSIBLE_ORDER_TS)):02}",)][0]
            == "9999-12-31 23:00:00.000000"
        )


def physical_types(table: Path, column: str) -> set[str]:
    return {c.physical_type for path in parquet_files(table) for c in pq.ParquetFile(path).schema if c.name == column}


@pytest.mark.slow
def test_outputs_an_earlier_release_wrote_as_int96_keep_merging_and_read_the_same_in_every_engine(
    spark, config, tmp_path, make_orders, make_customers
):
    """The night before the upgrade wrote INT96; the first night after it MERGEs into that mart and
    adds a report snapshot beside the old one: tables with both kinds of files."""
    lakehouse = lakehouse_at(spark, tmp_path)
    raw = lambda name: str(lakehouse.raw_path(name))  # noqa: E731
    make_orders(
        [order(f"O{i}", REAL, ORDER_TS, amount=amount(i), ingested_at="2026-11-24 06:00:00") for i in range(3)]
    ).write.format("delta").save(raw(tables.RAW_ORDERS))
    make_customers([customer(REAL, email="a@shop.io")]).write.format("delta").save(raw(tables.RAW_CUSTOMERS))
    with sparkutil.session_conf(spark, {"spark.sql.parquet.outputTimestampType": "INT96"}):
        before = lakehouse.run(config, as_of=dt.date(2026, 11, 24), at=ts("2026-11-24 07:00:00"))
    assert before.exit_code == ExitCode.OK
    out = tmp_path / "out"
    assert physical_types(out / tables.MART, "order_ts") == {"INT96"}

    make_orders(
        [
            order("O3", REAL, "2026-11-24 12:00:00", amount="9.00", ingested_at=LANDED),
            order("O0", REAL, ORDER_TS, amount="7.00", updated_at="2026-11-25 05:00:00", ingested_at=LANDED),
        ]
    ).write.format("delta").mode("append").save(raw(tables.RAW_ORDERS))
    after = lakehouse.run(config)

    assert (after.exit_code, after.mode) == (ExitCode.OK, mart_state.INCREMENTAL)
    assert physical_types(out / tables.MART, "order_ts") == {"INT96", "INT64"}
    assert physical_types(out / tables.REPORT, "computed_at") == {"INT96", "INT64"}
    assert {r["order_id"]: r["revenue"] for r in spark.read.format("delta").load(str(out / tables.MART)).collect()} == {
        "O0": Decimal("7.00"),
        "O1": Decimal("2.00"),
        "O2": Decimal("3.00"),
        "O3": Decimal("9.00"),
    }
    for table in (tables.MART, tables.REPORT):
        keys, columns = TIMESTAMP_TABLES[table]
        assert spark_instants(spark, out / table, keys, columns) == delta_rs_instants(out / table, keys, columns)
    # The pandas notebook's read of the report (DeltaTable.to_pandas: the report has no deletion vectors).
    report = DeltaTable(str(out / tables.REPORT)).to_pandas()
    assert sorted(report.as_of_date.astype(str).unique()) == ["2026-11-24", "2026-11-25"]
