"""The Deequ engine's adapter, against a stand-in for PyDeequ.

The Deequ jar for Spark 4.1 cannot be fetched here (README "Quality engines"), so these tests
pin down what the adapter sends to PyDeequ (lambda-free constraints, in order, at the right
level) and how it reads Deequ's result rows back; the constraint semantics themselves are
proven against the Spark engine in test_quality.py.
"""

import sys
import types
from decimal import Decimal

import pytest

from growth_revenue import quality


class FakeCheck:
    created = []

    def __init__(self, spark, level, description):
        self.level, self.description, self.calls = level, description, []
        FakeCheck.created.append(self)

    def __getattr__(self, name):
        def record(*args):
            assert all(not callable(a) for a in args), "constraints must not take Python lambdas"
            self.calls.append((name, *args))
            return self
        return record


class FakeSuite:
    def __init__(self, spark):
        pass

    def onData(self, df):  # noqa: N802 - PyDeequ's names
        return self

    def addCheck(self, check):  # noqa: N802
        self.check = check
        return self

    def run(self):
        return self.check


def fake_pydeequ(monkeypatch, result_rows):
    class FakeResult:
        @staticmethod
        def checkResultsAsDataFrame(spark, outcome):  # noqa: N802
            return types.SimpleNamespace(collect=lambda: result_rows)

    checks = types.SimpleNamespace(Check=FakeCheck, CheckLevel=types.SimpleNamespace(Error="E", Warning="W"))
    verification = types.SimpleNamespace(VerificationSuite=FakeSuite, VerificationResult=FakeResult)
    monkeypatch.setitem(sys.modules, "pydeequ.checks", checks)
    monkeypatch.setitem(sys.modules, "pydeequ.verification", verification)
    FakeCheck.created.clear()


@pytest.fixture
def mart_check(spark):
    data = spark.createDataFrame([("O1", Decimal("-1.00"), "real"), ("O2", Decimal("3.00"), "real")],
                                 "order_id string, revenue decimal(18,2), customer_kind string")
    return quality.Check("mart_orders_enriched", "mart integrity", quality.Level.ERROR, data, (
        quality.Rule("non_negative", "revenue", "revenue is never negative"),
        quality.Rule("unique", "order_id", "order_id is unique"),
        quality.Rule("contained_in", "customer_kind", "no order of a test user", allowed=("real",)),
    ))


def test_deequ_engine_sends_lambda_free_constraints_in_order(spark, monkeypatch, mart_check):
    ok = {"constraint_status": "Success", "constraint_message": ""}
    fake_pydeequ(monkeypatch, [ok, ok, ok])
    quality.verify(spark, [mart_check], engine="deequ")
    [check] = FakeCheck.created
    assert (check.level, check.description) == ("E", "mart_orders_enriched mart integrity")
    assert check.calls == [("isNonNegative", "revenue"), ("isUnique", "order_id"),
                           ("isContainedIn", "customer_kind", ["real"])]


def test_deequ_engine_reads_failures_and_their_metric_values(spark, monkeypatch, mart_check):
    fake_pydeequ(monkeypatch, [
        {"constraint_status": "Failure",
         "constraint_message": "Value: 0.5 does not meet the constraint requirement!"},
        {"constraint_status": "Success", "constraint_message": ""},
        {"constraint_status": "Success", "constraint_message": ""},
    ])
    results = quality.verify(spark, [mart_check], engine="deequ")
    assert [(r.status, r.metric_value) for r in results] == [("Failure", 0.5), ("Success", 1.0), ("Success", 1.0)]
    assert results[0].blocks_publishing
    assert "1 of 2 rows have revenue < 0" in results[0].message
