"""The business rules (README "The rules"), one named test per rule, on a few raw rows each.

Each test builds its expected frame in full so the case reads on its own. Rule parameters are the
spec's defaults, spelled out here rather than read from config, so a changed default cannot make
these tests agree with it silently.
"""

import datetime as dt
from decimal import Decimal

from chispa import assert_df_equality
from rows import customer, order, ts

from growth_revenue import transforms

REVENUE_STATUSES = ("completed", "fulfilled")
TEST_EMAIL_DOMAINS = ("example.com", "test.example")
UNKNOWN = "unknown"
UTC = "UTC"
LOS_ANGELES = "America/Los_Angeles"
WINDOW_DAYS = 30

AS_OF = dt.date(2026, 11, 25)
WINDOW_START = dt.date(2026, 10, 26)  # D-30
WINDOW_END = dt.date(2026, 11, 24)  # D-1
COMPUTED_AT = ts("2026-11-25 07:00:00")
# The run's plausible order_ts: from 2000-01-01 to 24 hours after its 07:00 start (the defaults).
EARLIEST_ORDER_DATE, MAX_FUTURE_SKEW_HOURS = dt.date(2000, 1, 1), 24
BOUNDS = transforms.plausible_order_ts(COMPUTED_AT, MAX_FUTURE_SKEW_HOURS, EARLIEST_ORDER_DATE, UTC)
RUN_ID = "run-test-1"

MART_KEY = "order_id string, customer_id string, customer_segment string, revenue decimal(18,2)"
REPORT_SCHEMA = (
    "as_of_date date, window_start date, window_end date, customer_segment string, revenue decimal(38,2), "
    "order_count long, customer_count long, computed_at timestamp, run_id string"
)


def assert_equal(actual, expected):
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def build_mart(make_orders, make_customers, orders, customers, reporting_timezone=UTC):
    return transforms.build_mart(
        make_orders(orders),
        make_customers(customers),
        revenue_statuses=REVENUE_STATUSES,
        test_email_domains=TEST_EMAIL_DOMAINS,
        unknown_segment=UNKNOWN,
        reporting_timezone=reporting_timezone,
        order_ts_bounds=BOUNDS,
    )


def report_of(mart):
    return transforms.revenue_by_segment(mart, AS_OF, WINDOW_DAYS, COMPUTED_AT, RUN_ID)


def mart_key(mart):
    return mart.select("order_id", "customer_id", "customer_segment", "revenue")


def profiles_of(make_customers, customers):
    return transforms.customer_profiles(make_customers(customers), TEST_EMAIL_DOMAINS, UNKNOWN)


# --- Rule 1: latest version wins ------------------------------------------------------------


def test_rule1_latest_updated_at_wins(spark, make_orders):
    raw = make_orders(
        [
            # O1: the newest update arrives in the middle of the input and was ingested earliest.
            order(
                "O1",
                status="pending",
                amount="10.00",
                updated_at="2026-11-20 12:00:00",
                ingested_at="2026-11-23 00:00:00",
            ),
            order(
                "O1",
                status="completed",
                amount="12.00",
                updated_at="2026-11-22 12:00:00",
                ingested_at="2026-11-22 13:00:00",
            ),
            order(
                "O1",
                status="shipped",
                amount="11.00",
                updated_at="2026-11-21 12:00:00",
                ingested_at="2026-11-24 00:00:00",
            ),
            order("O2", status="completed", amount="5.00"),
        ]
    )
    expected = spark.createDataFrame(
        [("O1", "completed", Decimal("12.00")), ("O2", "completed", Decimal("5.00"))],
        "order_id string, status string, amount decimal(18,2)",
    )
    assert_equal(transforms.latest_orders(raw).select("order_id", "status", "amount"), expected)


def test_rule1_tie_on_updated_at_broken_by_latest_ingestion(spark, make_orders):
    same_update = "2026-11-22 12:00:00"
    raw = make_orders(
        [
            order("O1", status="pending", amount="10.00", updated_at=same_update, ingested_at="2026-11-24 06:00:00"),
            order("O1", status="completed", amount="99.00", updated_at=same_update, ingested_at="2026-11-23 06:00:00"),
        ]
    )
    expected = spark.createDataFrame(
        [("O1", "pending", Decimal("10.00"), ts("2026-11-24 06:00:00"))],
        "order_id string, status string, amount decimal(18,2), _ingested_at timestamp",
    )
    assert_equal(transforms.latest_orders(raw).select("order_id", "status", "amount", "_ingested_at"), expected)


def test_rule1_counts_versions_and_picks_the_latest_in_one_sort_of_one_scan_of_the_raw_orders(
    spark, make_orders, make_customers
):
    raw = make_orders(
        [
            order("O1", amount="10.00", updated_at="2026-11-20 12:00:00"),
            order("O1", amount="12.00", updated_at="2026-11-21 12:00:00"),
            order("O2", amount="30.00"),
            order(None, amount="40.00"),
            order(None, amount="50.00"),
        ]
    )
    classified = transforms.classify_orders(
        raw, profiles_of(make_customers, [customer("C1")]), REVENUE_STATUSES, UNKNOWN, BOUNDS
    )
    # Sorting every raw row is the costliest step of a full rebuild; a second sort for the version
    # count, or a second scan for the rows without an order_id, costs a pass over the whole history.
    # (The plan before it runs: once run, AQE prints it twice.)
    plan = classified._jdf.queryExecution().executedPlan().toString()
    assert plan.count("Sort [order_id") == 1, plan
    assert plan.count("Scan ExistingRDD[order_id") == 1, plan
    # Rows without an order_id cannot be deduplicated: each stays a row of its own, to be quarantined.
    assert sorted((r["order_id"] or "", r["amount"], r["versions"]) for r in classified.collect()) == [
        ("", Decimal("40.00"), 1),
        ("", Decimal("50.00"), 1),
        ("O1", Decimal("12.00"), 2),
        ("O2", Decimal("30.00"), 1),
    ]


def test_rule1_latest_customer_version_wins(spark, make_customers):
    raw = make_customers(
        [
            customer("C1", email="a@shop.io", segment="smb", updated_at="2026-03-01 00:00:00"),
            customer("C1", email="a@shop.io", segment="enterprise", updated_at="2026-05-01 00:00:00"),
            customer("C1", email="a@shop.io", segment="consumer", updated_at="2026-04-01 00:00:00"),
        ]
    )
    expected = spark.createDataFrame([("C1", "enterprise")], "customer_id string, customer_segment string")
    assert_equal(transforms.latest_customers(raw).select("customer_id", "customer_segment"), expected)


# --- Rule 2: revenue orders -----------------------------------------------------------------


def test_rule2_order_cancelled_later_drops_out(spark, make_orders, make_customers):
    orders = [
        order("O1", "C1", status="completed", amount="10.00", updated_at="2026-11-20 12:00:00"),
        order("O1", "C1", status="cancelled", amount="10.00", updated_at="2026-11-21 12:00:00"),
        # The other direction: pending first, completed later, so it counts.
        order("O2", "C1", status="pending", amount="20.00", updated_at="2026-11-20 12:00:00"),
        order("O2", "C1", status="completed", amount="20.00", updated_at="2026-11-22 12:00:00"),
    ]
    mart = build_mart(make_orders, make_customers, orders, [customer("C1", email="a@shop.io")])
    expected = spark.createDataFrame([("O2", "C1", "smb", Decimal("20.00"))], MART_KEY)
    assert_equal(mart_key(mart), expected)


def test_rule2_status_case_and_whitespace_variants_count(spark, make_orders, make_customers):
    orders = [
        order("O1", status=" Completed ", amount="1.00"),
        order("O2", status="FULFILLED", amount="2.00"),
        order("O3", status="  fulfilled  ", amount="3.00"),
        order("O4", status="completed", amount="4.00"),
        order("O5", status="refunded", amount="5.00"),
        order("O6", status="pending", amount="6.00"),
        order("O7", status=None, amount="7.00"),
        order("O8", status="complete", amount="8.00"),
    ]
    mart = build_mart(make_orders, make_customers, orders, [customer("C1", email="a@shop.io")])
    expected = spark.createDataFrame(
        [("O1", " Completed "), ("O2", "FULFILLED"), ("O3", "  fulfilled  "), ("O4", "completed")],
        "order_id string, status string",
    )
    assert_equal(mart.select("order_id", "status"), expected)


# --- Rule 3: test users ---------------------------------------------------------------------


def test_rule3_test_user_by_flag(spark, make_orders, make_customers):
    orders = [
        order("O1", "C1", amount="10.00"),
        order("O2", "T1", amount="999.00"),
    ]
    customers = [
        customer("C1", email="a@shop.io", segment="smb"),
        customer("T1", email="qa@shop.io", segment="smb", is_test_user=True),  # real domain, flagged
    ]
    mart = build_mart(make_orders, make_customers, orders, customers)
    assert_equal(mart_key(mart), spark.createDataFrame([("O1", "C1", "smb", Decimal("10.00"))], MART_KEY))

    # Excluded everywhere: the report does not see the test user's order either.
    expected_report = spark.createDataFrame(
        [(AS_OF, WINDOW_START, WINDOW_END, "smb", Decimal("10.00"), 1, 1, COMPUTED_AT, RUN_ID)], REPORT_SCHEMA
    )
    assert_equal(report_of(mart), expected_report)


def test_rule3_null_flag_with_test_domain_is_test_user(spark, make_customers):
    profiles = profiles_of(
        make_customers,
        [
            customer("T1", email="qa@example.com", is_test_user=None),
            customer("T2", email="qa@test.example", is_test_user=False),
            customer("C1", email="a@shop.io", is_test_user=None),
            customer("C2", email=None, is_test_user=None),
            customer("C3", email="not-an-email", is_test_user=None),
        ],
    )
    expected = spark.createDataFrame(
        [("T1", True), ("T2", True), ("C1", False), ("C2", False), ("C3", False)],
        "customer_id string, is_test_customer boolean",
    )
    assert_equal(profiles.select("customer_id", "is_test_customer"), expected)


def test_rule3_domain_after_last_at_sign_case_insensitive(spark, make_customers):
    profiles = profiles_of(
        make_customers,
        [
            customer("T1", email="QA@Example.COM"),
            customer("T2", email="odd@name@TEST.Example"),  # the domain is what follows the last '@'
            customer("C1", email="example.com@shop.io"),  # a test domain before the last '@' does not count
            customer("C2", email="a@sub.example.com"),  # a subdomain is a different domain
            customer("C3", email="a@example.com.shop.io"),
        ],
    )
    expected = spark.createDataFrame(
        [("T1", True), ("T2", True), ("C1", False), ("C2", False), ("C3", False)],
        "customer_id string, is_test_customer boolean",
    )
    assert_equal(profiles.select("customer_id", "is_test_customer"), expected)


def test_rule3_customer_whose_latest_version_flips_test_flag(spark, make_orders, make_customers):
    orders = [
        order("O1", "C1", amount="10.00"),
        order("O2", "C2", amount="20.00"),
    ]
    customers = [
        # C1 was a test user and no longer is: its orders count.
        customer("C1", email="a@shop.io", is_test_user=True, updated_at="2026-01-01 00:00:00"),
        customer("C1", email="a@shop.io", is_test_user=False, updated_at="2026-06-01 00:00:00"),
        # C2 was real and is now flagged as a test user: its orders are excluded.
        customer("C2", email="b@shop.io", is_test_user=False, updated_at="2026-01-01 00:00:00"),
        customer("C2", email="b@shop.io", is_test_user=True, updated_at="2026-06-01 00:00:00"),
    ]
    mart = build_mart(make_orders, make_customers, orders, customers)
    assert_equal(mart_key(mart), spark.createDataFrame([("O1", "C1", "smb", Decimal("10.00"))], MART_KEY))


# --- Rule 4: segments -----------------------------------------------------------------------


def test_rule4_blank_and_null_segment_become_unknown(spark, make_customers):
    profiles = profiles_of(
        make_customers,
        [
            customer("C1", email="a@shop.io", segment=None),
            customer("C2", email="b@shop.io", segment=""),
            customer("C3", email="c@shop.io", segment="   "),
            customer("C4", email="d@shop.io", segment=" Enterprise "),
            customer("C5", email="e@shop.io", segment="SMB"),
        ],
    )
    expected = spark.createDataFrame(
        [("C1", "unknown"), ("C2", "unknown"), ("C3", "unknown"), ("C4", "enterprise"), ("C5", "smb")],
        "customer_id string, customer_segment string",
    )
    assert_equal(profiles.select("customer_id", "customer_segment"), expected)


def test_rule4_orphan_and_null_customer_orders_kept_as_unknown(spark, make_orders, make_customers):
    orders = [
        order("O1", "C1", amount="10.00"),
        order("O2", "NOBODY", amount="20.00"),  # no customer row
        order("O3", None, amount="30.00"),  # no customer at all
    ]
    mart = build_mart(make_orders, make_customers, orders, [customer("C1", email="a@shop.io", segment="smb")])
    expected = spark.createDataFrame(
        [
            ("O1", "C1", "smb", Decimal("10.00")),
            ("O2", "NOBODY", "unknown", Decimal("20.00")),
            ("O3", None, "unknown", Decimal("30.00")),
        ],
        MART_KEY,
    )
    assert_equal(mart_key(mart), expected)


def test_rule4_latest_customer_version_decides_segment(spark, make_orders, make_customers):
    customers = [
        customer("C1", email="a@shop.io", segment="enterprise", updated_at="2026-01-01 00:00:00"),
        customer("C1", email="a@shop.io", segment=" SMB ", updated_at="2026-06-01 00:00:00"),
        customer("C2", email="b@shop.io", segment="consumer", updated_at="2026-01-01 00:00:00"),
        customer("C2", email="b@shop.io", segment="", updated_at="2026-06-01 00:00:00"),  # newest is blank
    ]
    orders = [order("O1", "C1", amount="10.00"), order("O2", "C2", amount="20.00")]
    mart = build_mart(make_orders, make_customers, orders, customers)
    expected = spark.createDataFrame(
        [("O1", "C1", "smb", Decimal("10.00")), ("O2", "C2", "unknown", Decimal("20.00"))], MART_KEY
    )
    assert_equal(mart_key(mart), expected)


# --- Rule 5: order date and revenue ---------------------------------------------------------


def test_rule5_order_date_in_reporting_timezone(spark, make_orders, make_customers):
    orders = [
        order("O1", "C1", order_ts="2026-11-20 03:30:00", amount="10.00"),  # 19:30 the day before in LA
        order("O2", "C1", order_ts="2026-11-20 12:00:00", amount="20.00"),  # 04:00 the same day in LA
    ]
    customers = [customer("C1", email="a@shop.io")]
    columns = ("order_id", "order_ts", "order_date", "revenue")
    schema = "order_id string, order_ts timestamp, order_date date, revenue decimal(18,2)"

    in_utc = build_mart(make_orders, make_customers, orders, customers, reporting_timezone=UTC)
    assert_equal(
        in_utc.select(*columns),
        spark.createDataFrame(
            [
                ("O1", ts("2026-11-20 03:30:00"), dt.date(2026, 11, 20), Decimal("10.00")),
                ("O2", ts("2026-11-20 12:00:00"), dt.date(2026, 11, 20), Decimal("20.00")),
            ],
            schema,
        ),
    )

    in_la = build_mart(make_orders, make_customers, orders, customers, reporting_timezone=LOS_ANGELES)
    assert_equal(
        in_la.select(*columns),
        spark.createDataFrame(
            [
                ("O1", ts("2026-11-20 03:30:00"), dt.date(2026, 11, 19), Decimal("10.00")),
                ("O2", ts("2026-11-20 12:00:00"), dt.date(2026, 11, 20), Decimal("20.00")),
            ],
            schema,
        ),
    )


def test_mart_has_exactly_the_mart_columns_and_no_email(spark, make_orders, make_customers):
    assert transforms.MART_COLUMNS == (
        "order_id",
        "customer_id",
        "customer_segment",
        "order_ts",
        "order_date",
        "status",
        "revenue",
        "updated_at",
        "_ingested_at",
    )
    mart = build_mart(make_orders, make_customers, [order("O1", "C1")], [customer("C1", email="a@shop.io")])
    assert mart.columns == list(transforms.MART_COLUMNS)
    assert "email" not in mart.columns
    assert dict(mart.dtypes)["revenue"] == "decimal(18,2)"
    assert dict(mart.dtypes)["order_date"] == "date"


# --- Rule 6: the 30-day report --------------------------------------------------------------


def test_rule6_report_window_is_d_minus_30_through_d_minus_1():
    assert transforms.report_window(AS_OF, WINDOW_DAYS) == (dt.date(2026, 10, 26), dt.date(2026, 11, 24))
    # Across a month and a year boundary.
    assert transforms.report_window(dt.date(2027, 1, 1), WINDOW_DAYS) == (dt.date(2026, 12, 2), dt.date(2026, 12, 31))


def test_rule6_window_edges_in_utc(spark, make_orders, make_customers):
    # One customer per edge, each in its own segment, so the report names which orders are in.
    orders = [
        order("O1", "C1", order_ts="2026-10-25 23:59:59", amount="1.00"),  # D-31, last second: out
        order("O2", "C2", order_ts="2026-10-26 00:00:00", amount="2.00"),  # D-30, first second: in
        order("O3", "C3", order_ts="2026-11-24 23:59:59", amount="4.00"),  # D-1, last second: in
        order("O4", "C4", order_ts="2026-11-25 00:00:00", amount="8.00"),  # D, first second: out
    ]
    customers = [
        customer("C1", email="a@shop.io", segment="before_start"),
        customer("C2", email="b@shop.io", segment="first_day"),
        customer("C3", email="c@shop.io", segment="last_day"),
        customer("C4", email="d@shop.io", segment="as_of_day"),
    ]
    report = report_of(build_mart(make_orders, make_customers, orders, customers))
    expected = spark.createDataFrame(
        [
            (AS_OF, WINDOW_START, WINDOW_END, "first_day", Decimal("2.00"), 1, 1, COMPUTED_AT, RUN_ID),
            (AS_OF, WINDOW_START, WINDOW_END, "last_day", Decimal("4.00"), 1, 1, COMPUTED_AT, RUN_ID),
        ],
        REPORT_SCHEMA,
    )
    assert_equal(report, expected)


def test_rule6_window_edges_follow_a_non_utc_reporting_timezone(spark, make_orders, make_customers):
    orders = [
        # Inside the UTC window, but 2026-10-25 23:00 in Los Angeles (PDT): out.
        order("O1", "C1", order_ts="2026-10-26 06:00:00", amount="1.00"),
        # 2026-10-26 00:00 PDT, the first local second of D-30: in.
        order("O2", "C2", order_ts="2026-10-26 07:00:00", amount="2.00"),
        # On the as-of date in UTC, but 2026-11-24 23:00 in Los Angeles (PST): in.
        order("O3", "C3", order_ts="2026-11-25 07:00:00", amount="4.00"),
        # 2026-11-25 00:00 PST, the first local second of D: out.
        order("O4", "C4", order_ts="2026-11-25 08:00:00", amount="8.00"),
    ]
    customers = [
        customer("C1", email="a@shop.io", segment="before_start"),
        customer("C2", email="b@shop.io", segment="first_day"),
        customer("C3", email="c@shop.io", segment="last_day"),
        customer("C4", email="d@shop.io", segment="as_of_day"),
    ]
    mart = build_mart(make_orders, make_customers, orders, customers, reporting_timezone=LOS_ANGELES)
    expected = spark.createDataFrame(
        [
            (AS_OF, WINDOW_START, WINDOW_END, "first_day", Decimal("2.00"), 1, 1, COMPUTED_AT, RUN_ID),
            (AS_OF, WINDOW_START, WINDOW_END, "last_day", Decimal("4.00"), 1, 1, COMPUTED_AT, RUN_ID),
        ],
        REPORT_SCHEMA,
    )
    assert_equal(report_of(mart), expected)


def test_rule6_report_sums_revenue_counts_orders_and_distinct_non_null_customers(spark, make_orders, make_customers):
    orders = [
        order("O1", "C1", order_ts="2026-11-01 10:00:00", amount="10.10"),
        order("O2", "C1", order_ts="2026-11-02 10:00:00", amount="20.20"),
        order("O3", "C2", order_ts="2026-11-03 10:00:00", amount="30.30"),
        order("O4", None, order_ts="2026-11-04 10:00:00", amount="1.00"),  # an order, not a customer
        order("O5", None, order_ts="2026-11-05 10:00:00", amount="2.00"),
        order("O6", "NOBODY", order_ts="2026-11-06 10:00:00", amount="4.00"),  # orphan: a customer
        order("O7", "NOBODY", order_ts="2026-11-07 10:00:00", amount="8.00"),
        order("O8", "C1", order_ts="2026-11-08 10:00:00", status="cancelled", amount="500.00"),
        order("O9", "C1", order_ts="2026-09-01 10:00:00", amount="700.00"),  # before the window
    ]
    customers = [
        customer("C1", email="a@shop.io", segment="smb"),
        customer("C2", email="b@shop.io", segment=" SMB"),
    ]
    report = report_of(build_mart(make_orders, make_customers, orders, customers))
    expected = spark.createDataFrame(
        [
            (AS_OF, WINDOW_START, WINDOW_END, "smb", Decimal("60.60"), 3, 2, COMPUTED_AT, RUN_ID),
            (AS_OF, WINDOW_START, WINDOW_END, "unknown", Decimal("15.00"), 4, 1, COMPUTED_AT, RUN_ID),
        ],
        REPORT_SCHEMA,
    )
    assert_equal(report, expected)
    assert dict(report.dtypes)["revenue"] == "decimal(38,2)"
    assert report.schema["revenue"].dataType == transforms.REPORT_REVENUE_TYPE


# --- Quarantine: revenue orders that cannot be published ------------------------------------


def without(row, field):
    """A raw_orders row with one field nulled (order_id, order_ts or amount)."""
    index = {"order_id": 0, "order_ts": 2, "amount": 4}[field]
    return (*row[:index], None, *row[index + 1 :])


def quarantine_of(make_orders, make_customers, orders, customers):
    return transforms.build_quarantine(
        make_orders(orders), make_customers(customers), REVENUE_STATUSES, TEST_EMAIL_DOMAINS, UNKNOWN, BOUNDS
    )


def test_quarantine_takes_revenue_orders_without_order_id_order_ts_or_amount_out_of_the_mart(
    spark, make_orders, make_customers
):
    orders = [
        order("O1", "C1"),
        without(order("O2", "C1", amount="20.00"), "order_id"),
        without(order("O3", "C1", amount="30.00"), "order_ts"),
        without(order("O4", "C1"), "amount"),
    ]
    customers = [customer("C1", email="a@shop.io")]
    assert [r["order_id"] for r in build_mart(make_orders, make_customers, orders, customers).collect()] == ["O1"]
    quarantine = quarantine_of(make_orders, make_customers, orders, customers)
    assert quarantine.columns == list(transforms.QUARANTINE_COLUMNS)
    assert sorted(((r["order_id"], r["amount"], r["quarantine_reason"]) for r in quarantine.collect()), key=str) == [
        ("O3", Decimal("30.00"), "missing_order_ts"),
        ("O4", None, "missing_amount"),
        (None, Decimal("20.00"), "missing_order_id"),
    ]


def test_quarantine_ignores_orders_that_would_not_count_anyway(spark, make_orders, make_customers):
    orders = [
        without(order("O1", "C1", status="cancelled"), "amount"),  # not revenue
        without(order("O2", "T1"), "amount"),  # a test user's
        without(order("O3", "C1", status="pending"), "order_id"),
    ]
    customers = [customer("C1", email="a@shop.io"), customer("T1", email="qa@example.com")]
    assert quarantine_of(make_orders, make_customers, orders, customers).count() == 0


def test_quarantine_judges_an_order_by_its_latest_version(spark, make_orders, make_customers):
    orders = [
        without(order("O1", "C1", updated_at="2026-11-20 12:00:00"), "amount"),
        order("O1", "C1", amount="15.00", updated_at="2026-11-21 12:00:00"),  # the amount arrived later
        order("O2", "C1", amount="15.00", updated_at="2026-11-20 12:00:00"),
        without(order("O2", "C1", updated_at="2026-11-21 12:00:00"), "amount"),  # and here it got lost
    ]
    customers = [customer("C1", email="a@shop.io")]
    assert [r["order_id"] for r in build_mart(make_orders, make_customers, orders, customers).collect()] == ["O1"]
    assert [
        (r["order_id"], r["quarantine_reason"])
        for r in quarantine_of(make_orders, make_customers, orders, customers).collect()
    ] == [("O2", "missing_amount")]
