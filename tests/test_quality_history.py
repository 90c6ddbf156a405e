"""Quality history: the Deequ metrics repository and the Warning-level anomaly checks."""

import datetime as dt
import json

import pytest
from lakehouse import Lakehouse
from rows import customer, order

from growth_revenue import quality, tables
from growth_revenue.exit_codes import ExitCode
from growth_revenue.metrics import Metric, MetricsRepository, RunMetrics, published_metrics

UTC = dt.timezone.utc


# --- the repository ------------------------------------------------------------------------


@pytest.mark.parametrize("writer", ["job", "deequ"])
def test_the_repository_file_is_in_deequs_format_and_deequs_own_repository_loads_it(spark, tmp_path, writer, request):
    path = tmp_path / "dq_metrics.json"
    repo = MetricsRepository(spark, str(path), deequ=writer == "deequ" and request.getfixturevalue("deequ"))
    repo.save(published_metrics(dt.date(2026, 11, 25), 1200, 3456.5))

    [entry] = json.loads(path.read_text())
    assert entry["resultKey"] == {
        "dataSetDate": 1795564800000,  # 2026-11-25T00:00Z in epoch millis
        "tags": {"tables": "mart_orders_enriched,rpt_30day_revenue_by_segment"},
    }
    assert sorted(entry["analyzerContext"]["metricMap"], key=lambda m: m["analyzer"]["analyzerName"]) == [
        {
            "analyzer": {"analyzerName": "Size"},
            "metric": {
                "metricName": "DoubleMetric",
                "entity": "Dataset",
                "instance": "*",
                "name": "Size",
                "value": 1200.0,
            },
        },
        {
            "analyzer": {"analyzerName": "Sum", "column": "revenue"},
            "metric": {
                "metricName": "DoubleMetric",
                "entity": "Column",
                "instance": "revenue",
                "name": "Sum",
                "value": 3456.5,
            },
        },
    ]
    if quality.deequ_available(spark):
        from pydeequ.repository import FileSystemMetricsRepository

        loaded = FileSystemMetricsRepository(spark, str(path)).load().getSuccessMetricsAsJson()
        assert sorted((m["name"], m["instance"], m["value"], m["dataset_date"]) for m in loaded) == [
            ("Size", "*", 1200.0, 1795564800000),
            ("Sum", "revenue", 3456.5, 1795564800000),
        ]


def test_the_repository_is_keyed_by_as_of_date_so_a_rerun_replaces_its_entry(spark, tmp_path):
    repo = MetricsRepository(spark, str(tmp_path / "dq_metrics.json"))
    repo.save(published_metrics(dt.date(2026, 11, 24), 100, 10.0))
    repo.save(published_metrics(dt.date(2026, 11, 25), 110, 11.0))
    repo.save(published_metrics(dt.date(2026, 11, 25), 120, 12.0))  # rerun of the 25th

    assert [(r.as_of, r.get("Size").value) for r in repo.load()] == [
        (dt.date(2026, 11, 24), 100.0),
        (dt.date(2026, 11, 25), 120.0),
    ]


def test_the_previous_run_of_a_backfill_is_the_newest_as_of_before_it(spark, tmp_path):
    repo = MetricsRepository(spark, str(tmp_path / "dq_metrics.json"))
    for day in (20, 22, 25):
        repo.save(published_metrics(dt.date(2026, 11, day), day, float(day)))

    assert repo.previous(dt.date(2026, 11, 23)).as_of == dt.date(2026, 11, 22)
    assert repo.previous(dt.date(2026, 11, 26)).as_of == dt.date(2026, 11, 25)
    assert repo.previous(dt.date(2026, 11, 20)) is None


def test_a_file_that_is_not_a_metrics_repository_is_an_error_naming_it(spark, tmp_path):
    (tmp_path / "dq_metrics.json").write_text('{"not": "a list of results"}')
    with pytest.raises(ValueError, match=r"metrics repository .*dq_metrics.json: not a Deequ metrics repository"):
        MetricsRepository(spark, str(tmp_path / "dq_metrics.json")).load()


# --- the anomaly rule (Deequ's RelativeRateOfChangeStrategy) ------------------------------


def verdicts(current, previous, max_change=0.3):
    return {(r.check.dataset, r.status) for r in quality.anomaly_results(current, previous, max_change)}


def test_a_first_run_has_nothing_to_compare_and_passes():
    results = quality.anomaly_results(published_metrics(dt.date(2026, 11, 25), 100, 50.0), None, 0.3)
    assert [(r.status, r.check.level) for r in results] == [("Success", quality.Level.WARNING)] * 2
    assert all("no earlier run" in r.message for r in results)


def test_normal_drift_within_the_bound_passes():
    previous = published_metrics(dt.date(2026, 11, 24), 1000, 10_000.0)
    current = published_metrics(dt.date(2026, 11, 25), 1010, 10_250.0)
    assert verdicts(current, previous) == {(tables.MART, "Success"), (tables.REPORT, "Success")}


def test_a_sudden_revenue_drop_beyond_the_bound_is_a_warning():
    previous = published_metrics(dt.date(2026, 11, 24), 1000, 10_000.0)
    current = published_metrics(dt.date(2026, 11, 25), 1010, 6_000.0)  # -40%
    [revenue] = [r for r in quality.anomaly_results(current, previous, 0.3) if r.check.dataset == tables.REPORT]
    assert (revenue.status, revenue.blocks_publishing) == ("Failure", False)
    assert revenue.metric_value == pytest.approx(-0.4)
    assert "-40.0% (bound ±30%)" in revenue.message and "as of 2026-11-24" in revenue.message


def test_a_change_exactly_at_the_bound_passes_and_just_past_it_warns():
    previous = published_metrics(dt.date(2026, 11, 24), 1000, 100.0)
    assert verdicts(published_metrics(dt.date(2026, 11, 25), 1250, 75.0), previous, 0.25) == {
        (tables.MART, "Success"),
        (tables.REPORT, "Success"),
    }
    assert verdicts(published_metrics(dt.date(2026, 11, 25), 1251, 74.9), previous, 0.25) == {
        (tables.MART, "Failure"),
        (tables.REPORT, "Failure"),
    }


def test_revenue_appearing_after_an_empty_window_is_a_warning():
    previous = RunMetrics(dt.date(2026, 11, 24), (Metric("Size", None, 10.0), Metric("Sum", "revenue", 0.0)))
    assert (tables.REPORT, "Failure") in verdicts(published_metrics(dt.date(2026, 11, 25), 10, 500.0), previous)


# --- a sequence of nightly runs ------------------------------------------------------------

START = dt.date(2026, 9, 1)
CUSTOMERS = [customer("C1", email="a@shop.io", segment="enterprise"), customer("C2", email="b@shop.io")]


def daily_orders(first: dt.date, last: dt.date, per_day: int, amount: str = "100.00"):
    """`per_day` revenue orders a day, each placed at 10:00 and landed at 11:00 that day."""
    rows, day = [], first
    while day <= last:
        for i in range(per_day):
            placed = f"{day} 10:00:00"
            rows.append(
                order(f"O{day:%Y%m%d}-{i}", f"C{i % 2 + 1}", placed, amount=amount, ingested_at=f"{day} 11:00:00")
            )
        day += dt.timedelta(days=1)
    return rows


def nightly(lakehouse, config, as_of, orders):
    """`orders` as raw_orders, then the 07:00 run of the job for `as_of`."""
    lakehouse.write(orders=orders)
    return lakehouse.run(config, as_of=as_of, at=dt.datetime.combine(as_of, dt.time(7), UTC))


def anomaly_failures(outcome):
    return sorted(r.check.dataset for r in outcome.results if r.check.name == "anomaly" and r.status == "Failure")


def test_a_sudden_drop_in_a_run_sequence_warns_while_normal_drift_does_not(spark, config, tmp_path):
    lakehouse = Lakehouse(spark, tmp_path)
    lakehouse.write(customers=CUSTOMERS)
    nights = [START + dt.timedelta(days=60 + n) for n in range(4)]  # 60 days of history, then 4 nights

    # Normal nights: 10 orders a day keep arriving, so the mart grows ~1.6% a night and revenue holds.
    for night in nights[:3]:
        outcome = nightly(lakehouse, config, night, daily_orders(START, night - dt.timedelta(days=1), 10))
        assert outcome.exit_code == ExitCode.OK
        assert anomaly_failures(outcome) == []

    # An upstream load drops everything older than two weeks: both metrics fall far past 30%.
    truncated = daily_orders(nights[3] - dt.timedelta(days=14), nights[3] - dt.timedelta(days=1), 10)
    outcome = nightly(lakehouse, config, nights[3], truncated)
    assert outcome.exit_code == ExitCode.OK  # a Warning: published, and on record
    assert anomaly_failures(outcome) == [tables.MART, tables.REPORT]
    recorded = lakehouse.output(tables.DQ_RESULTS).where(
        f"run_id = '{outcome.run_id}' AND check = 'anomaly' AND status = 'Failure' AND level = 'Warning'"
    )
    assert recorded.count() == 2

    history = MetricsRepository(spark, str(lakehouse.out / tables.METRICS_REPOSITORY)).load()
    assert [run.as_of for run in history] == nights


def test_a_run_that_fails_the_gate_does_not_become_the_baseline(spark, config, tmp_path):
    lakehouse = Lakehouse(spark, tmp_path)
    lakehouse.write(customers=CUSTOMERS)
    good, bad = START + dt.timedelta(days=40), START + dt.timedelta(days=41)
    assert nightly(lakehouse, config, good, daily_orders(START, good - dt.timedelta(days=1), 5)).exit_code == 0

    broken = daily_orders(START, bad - dt.timedelta(days=1), 5) + [
        order("NEG", "C1", f"{good} 12:00:00", amount="-1.00")
    ]
    assert nightly(lakehouse, config, bad, broken).exit_code == ExitCode.QUALITY_GATE

    history = MetricsRepository(spark, str(lakehouse.out / tables.METRICS_REPOSITORY)).load()
    assert [run.as_of for run in history] == [good]
