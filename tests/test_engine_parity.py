"""The two quality engines are interchangeable: Deequ and the built-in Spark engine give the same
dq_check_results rows on the same data, and share one metrics history.

Run with Deequ's real jar on the default line; a line whose Deequ build is not served skips them
(conftest `deequ`). Each case is one rule on a few rows, where Deequ's metric definitions are subtle.
"""

import datetime as dt
from decimal import Decimal

import pytest

from growth_revenue import quality
from growth_revenue.metrics import MetricsRepository, published_metrics
from growth_revenue.quality import Check, Level, Rule

NON_NEGATIVE = Rule("non_negative", "v", "v is never negative")
POSITIVE = Rule("positive", "v", "v is positive")
COMPLETE = Rule("complete", "v", "v is never null")
UNIQUE = Rule("unique", "k", "k is unique")
ONLY_REAL = Rule("contained_in", "k", "k is real", allowed=("real",))

# (case, rows of (k, v), rule, expected (status, metric_value))
CASES = [
    ("non-negative holds", [("a", 0.0), ("b", 2.5)], NON_NEGATIVE, ("Success", 1.0)),
    ("non-negative: a null complies", [("a", -1.0), ("b", None), ("c", 3.0)], NON_NEGATIVE, ("Failure", 2 / 3)),
    ("positive: zero breaks, null complies", [("a", 0.0), ("b", None), ("c", 1.0)], POSITIVE, ("Failure", 2 / 3)),
    ("completeness counts nulls", [("a", None), ("b", None), ("c", 1.0)], COMPLETE, ("Failure", 1 / 3)),
    ("contained-in: a null complies", [("real", 1.0), ("test", 1.0), (None, 1.0)], ONLY_REAL, ("Failure", 2 / 3)),
    ("uniqueness holds", [("a", 1.0), ("b", 1.0)], UNIQUE, ("Success", 1.0)),
    ("uniqueness over duplicates", [("a", 1.0), ("b", 1.0), ("b", 1.0)], UNIQUE, ("Failure", 1 / 3)),
    ("uniqueness ignores nulls", [("a", 1.0), (None, 1.0)], UNIQUE, ("Success", 1.0)),
    (
        "uniqueness over duplicates and nulls",
        [("a", 1.0), ("b", 1.0), ("b", 1.0), (None, 1.0)],
        UNIQUE,
        ("Failure", 1 / 3),
    ),
    ("uniqueness with only nulls has no metric", [(None, 1.0), (None, 2.0)], UNIQUE, ("Failure", None)),
    ("empty data holds vacuously", [], NON_NEGATIVE, ("Success", None)),
    ("empty data holds vacuously (uniqueness)", [], UNIQUE, ("Success", None)),
]


def _rows(results):
    """The dq_check_results columns that must not depend on the engine."""
    return [
        (r.check.dataset, r.check.name, r.check.level.value, r.rule.deequ_name, r.status, r.metric_value, r.message)
        for r in results
    ]


@pytest.mark.parametrize("level", [Level.ERROR, Level.WARNING])
@pytest.mark.parametrize(("case", "rows", "rule", "expected"), CASES, ids=[c[0] for c in CASES])
def test_both_engines_give_the_same_result_row(spark, deequ, case, rows, rule, expected, level):
    data = spark.createDataFrame(rows, "k string, v double")
    checks = [Check("t", "case", level, data, (rule,))]

    by_deequ = quality.verify(spark, checks, "deequ")
    by_spark = quality.verify(spark, checks, "spark")

    assert _rows(by_deequ) == _rows(by_spark)
    assert (by_deequ[0].status, by_deequ[0].metric_value) == expected


def test_both_engines_agree_on_every_rule_of_one_check_at_once(spark, deequ):
    data = spark.createDataFrame(
        [("O1", Decimal("-1.00"), "real"), ("O1", None, "test"), (None, Decimal("2.00"), None)],
        "order_id string, revenue decimal(18,2), customer_kind string",
    )
    rules = (
        Rule("non_negative", "revenue", "revenue is never negative"),
        Rule("complete", "revenue", "revenue is never null"),
        Rule("unique", "order_id", "order_id is unique"),
        Rule("contained_in", "customer_kind", "no order of a test user", allowed=("real",)),
    )
    checks = [Check("mart_orders_enriched", "mart integrity", Level.ERROR, data, rules)]

    by_deequ = quality.verify(spark, checks, "deequ")

    assert _rows(by_deequ) == _rows(quality.verify(spark, checks, "spark"))
    assert [r.status for r in by_deequ] == ["Failure"] * 4 and all(r.blocks_publishing for r in by_deequ)


def test_the_deequ_engine_never_starts_the_py4j_callback_server(spark, deequ):
    data = spark.createDataFrame([("real", 1.0)], "k string, v double")
    quality.verify(
        spark, [Check("t", "case", Level.ERROR, data, (NON_NEGATIVE, POSITIVE, COMPLETE, UNIQUE, ONLY_REAL))], "deequ"
    )
    assert spark.sparkContext._gateway.get_callback_server() is None


# --- one history, either engine ------------------------------------------------------------

NIGHTS = [dt.date(2026, 11, d) for d in (20, 21, 22, 24, 23)]  # the 23rd is a backfill after the 24th
ROWS = [
    1000,
    1100,
    2000,
    2100,
    1450,
]  # 21st +10%, 22nd +82% (anomaly), 24th vs 22nd +5%, 23rd vs 22nd -27.5% (vs the 24th: -31%)


def _sequence(spark, path, engines):
    """Runs the anomaly checks and saves each night's metrics with the engine of that night."""
    outcomes = []
    for night, rows, engine in zip(NIGHTS, ROWS, engines, strict=True):
        repo = MetricsRepository(spark, str(path), deequ=engine == "deequ")
        current = published_metrics(night, rows, 50.0)
        judge = None
        if engine == "deequ":
            from growth_revenue import deequ_engine

            def judge(analyzer, column, value, low, high, night=night):
                return deequ_engine.newest_point_is_normal(spark, str(path), night, analyzer, column, value, low, high)

        results = quality.anomaly_results(current, repo.previous(night), 0.3, judge)
        outcomes.append([(r.check.dataset, r.status, r.metric_value) for r in results])
        repo.save(current)
    return outcomes


@pytest.mark.parametrize(
    "engines",
    [["spark"] * 5, ["deequ"] * 5, ["spark", "deequ"] * 2 + ["spark"], ["deequ", "spark"] * 2 + ["deequ"]],
    ids=["spark", "deequ", "alternating from spark", "alternating from deequ"],
)
def test_a_run_sequence_gives_the_same_anomalies_and_history_whichever_engine_runs(spark, deequ, tmp_path, engines):
    outcomes = _sequence(spark, tmp_path / "dq_metrics.json", engines)
    reference = _sequence(spark, tmp_path / "reference.json", ["spark"] * 5)

    assert outcomes == reference
    statuses = [[status for dataset, status, _ in night if dataset == "mart_orders_enriched"] for night in outcomes]
    assert statuses == [["Success"], ["Success"], ["Failure"], ["Success"], ["Success"]]
    # Deequ's own repository loads the shared history, in as-of order.
    from pydeequ.repository import FileSystemMetricsRepository

    loaded = FileSystemMetricsRepository(spark, str(tmp_path / "dq_metrics.json")).load().getSuccessMetricsAsJson()
    sizes = sorted((m["dataset_date"], m["value"]) for m in loaded if m["name"] == "Size")
    assert [value for _, value in sizes] == [1000.0, 1100.0, 2000.0, 1450.0, 2100.0]

    def entries(name):
        return sorted(MetricsRepository(spark, str(tmp_path / name)).load(), key=lambda run: run.as_of)

    assert entries("dq_metrics.json") == entries("reference.json")


def test_a_rerun_replaces_its_dates_entry_with_either_engine(spark, deequ, tmp_path):
    path = tmp_path / "dq_metrics.json"
    MetricsRepository(spark, str(path), deequ=True).save(published_metrics(NIGHTS[0], 1000, 50.0))
    MetricsRepository(spark, str(path)).save(published_metrics(NIGHTS[0], 1200, 50.0))
    MetricsRepository(spark, str(path), deequ=True).save(published_metrics(NIGHTS[0], 1300, 50.0))

    [run] = MetricsRepository(spark, str(path)).load()
    assert run.get("Size").value == 1300.0


@pytest.mark.parametrize(
    ("previous", "current"), [(100, 130), (100, 130.01), (100, 70), (100, 69.99), (0, 0), (0, 5), (3, 1)]
)
def test_both_engines_draw_the_anomaly_bounds_at_the_same_place(spark, deequ, tmp_path, previous, current):
    from growth_revenue import deequ_engine

    path = tmp_path / "dq_metrics.json"
    MetricsRepository(spark, str(path)).save(published_metrics(NIGHTS[0], 10, float(previous)))
    low, high = quality.rate_bounds(0.3)
    by_deequ = deequ_engine.newest_point_is_normal(
        spark, str(path), NIGHTS[1], "Sum", "revenue", float(current), low, high
    )
    assert by_deequ == quality.is_normal_change(float(previous), float(current), 0.3)


def test_a_metrics_file_from_an_earlier_release_is_rewritten_so_deequ_reads_it(spark, deequ, tmp_path):
    """Earlier releases wrote "where": null in every analyzer, which Deequ's own reader rejects."""
    from growth_revenue import deequ_engine
    from growth_revenue.metrics import to_deequ_json

    path = tmp_path / "dq_metrics.json"
    legacy = (
        to_deequ_json([published_metrics(NIGHTS[0], 1000, 50.0)])
        .replace('"analyzerName": "Size"', '"analyzerName": "Size", "where": null')
        .replace('"analyzerName": "Sum"', '"analyzerName": "Sum", "where": null')
    )
    path.write_text(legacy)
    repo = MetricsRepository(spark, str(path), deequ=True)

    repo.make_readable_by_deequ()
    assert '"where"' not in path.read_text()
    assert deequ_engine.newest_point_is_normal(spark, str(path), NIGHTS[1], "Size", None, 1100.0, 0.7, 1.3)
    repo.save(published_metrics(NIGHTS[1], 1100, 50.0))
    assert [run.get("Size").value for run in sorted(repo.load(), key=lambda r: r.as_of)] == [1000.0, 1100.0]
