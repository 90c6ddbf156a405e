"""The exploration notebooks: committed clean, and run top to bottom in their own kernel on a demo lakehouse.

The slow tests build a lakehouse with two runs (two as-of dates, so the report has history and two Delta
versions), then execute each notebook with nbclient in a python3 kernel started from this venv, the
lakehouse injected through GROWTH_LAKEHOUSE as an analyst, papermill or a Databricks widget would set it.
"""

import datetime as dt
import json
import struct
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from demo import ROOT, small_job_config
from lakehouse import Lakehouse
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell
from pyspark.sql import functions as F
from rows import order

from growth_revenue import tables
from growth_revenue.exit_codes import ExitCode

SPARK_NOTEBOOK = ROOT / "notebooks" / "explore_growth_revenue.ipynb"
PANDAS_NOTEBOOK = ROOT / "notebooks" / "explore_growth_revenue_pandas.ipynb"
NOTEBOOKS = (SPARK_NOTEBOOK, PANDAS_NOTEBOOK)

UTC = dt.timezone.utc
RUNS = [  # (as-of date, run time): two nightly runs, so the report has two snapshots and two Delta versions
    (dt.date(2026, 11, 24), dt.datetime(2026, 11, 24, 7, tzinfo=UTC)),
    (dt.date(2026, 11, 25), dt.datetime(2026, 11, 25, 7, tzinfo=UTC)),
]
LATEST = RUNS[-1][0]
# Orders at the last run's plausible bounds (rules.earliest_order_date, run time + 24 h of skew); the
# first run quarantines the later one, the second publishes it.
BOUND_ORDERS = {"bound-first": "2000-01-01 00:00:00", "bound-last": "2026-11-26 07:00:00"}
SHOWN_COLUMNS = ["customer_segment", "revenue", "order_count", "customer_count"]
CATALOG_SCHEMA = "spark_catalog.growth_notebook"
PROBE = """\
import json, sys
latest.to_pickle({pickle!r})
print(json.dumps({{"prefix": sys.prefix, "pyspark_loaded": "pyspark" in sys.modules}}))"""


# --- building the lakehouse and running the notebooks ------------------------------------------


@pytest.fixture(scope="module")
def lakehouse(spark, config, tmp_path_factory):
    """The sample raw tables, published by two runs of the job (their outcomes in `outcomes`)."""
    lakehouse = Lakehouse(spark, tmp_path_factory.mktemp("notebook_lakehouse"))
    lakehouse.write_sample(LATEST, orders=3000, customers=300)
    landed = "2026-11-23 06:00:00"
    lakehouse.land(
        landed, [order(order_id, None, at, amount="1.00", updated_at=landed) for order_id, at in BOUND_ORDERS.items()]
    )
    for as_of, run_time in RUNS:
        assert lakehouse.run(config, as_of=as_of, at=run_time).exit_code == ExitCode.OK
    return lakehouse


def execute(notebook: Path, workdir: Path, env: dict[str, str], after: dict[str, str] | None = None):
    """Runs `notebook` from the repo root in a fresh python3 kernel; returns (executed cells by id, probe).

    `after` inserts test-only cells after the cell with the given id. A last cell records the kernel's
    sys.prefix, whether pyspark was imported, and pickles the notebook's `latest` frame.
    """
    nb = nbformat.read(notebook, as_version=4)
    for cell_id, source in (after or {}).items():
        index = next(i for i, cell in enumerate(nb.cells) if cell.get("id") == cell_id)
        nb.cells.insert(index + 1, new_code_cell(source))
    pickle = workdir / "latest.pkl"
    nb.cells.append(new_code_cell(PROBE.format(pickle=str(pickle))))
    config = small_job_config(workdir / "notebook.yaml")  # the notebook's own Spark, beside the tests' JVM
    with pytest.MonkeyPatch.context() as patch:
        for name in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET"):  # never attach to the tests' JVM
            patch.delenv(name, raising=False)
        patch.setenv("GROWTH_CONFIG", str(config))
        for name, value in env.items():
            patch.setenv(name, value)
        client = NotebookClient(
            nb, kernel_name="python3", timeout=300, startup_timeout=120, resources={"metadata": {"path": str(ROOT)}}
        )
        client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    probe = json.loads(nb.cells[-1].outputs[-1]["text"])
    return {cell.id: cell for cell in nb.cells if "id" in cell}, probe, pd.read_pickle(pickle)


@pytest.fixture(scope="module", params=["path", "catalog"])
def spark_notebook(request, lakehouse, tmp_path_factory):
    """The Spark notebook run on the lakehouse folder (chart at its default place), or on a catalog schema."""
    out = lakehouse.out
    workdir = tmp_path_factory.mktemp(f"spark_notebook_{request.param}")
    if request.param == "path":
        cells, probe, latest = execute(SPARK_NOTEBOOK, workdir, {"GROWTH_LAKEHOUSE": str(out)})
        chart = out / f"{tables.REPORT}.png"
    else:
        # The kernel's local catalog is empty: register the published tables in it, as a metastore would.
        register = "\n".join(
            [f'spark.sql("CREATE SCHEMA IF NOT EXISTS {CATALOG_SCHEMA}")']
            + [
                f"spark.sql(\"CREATE TABLE {CATALOG_SCHEMA}.{name} USING DELTA LOCATION '{out / name}'\")"
                for name in tables.OUTPUTS
            ]
        )
        chart = workdir / "charts" / "revenue.png"
        cells, probe, latest = execute(
            SPARK_NOTEBOOK,
            workdir,
            {"GROWTH_LAKEHOUSE": CATALOG_SCHEMA, "GROWTH_CHART_PATH": str(chart)},
            after={"session": register},
        )
    return cells, probe, latest, chart


@pytest.fixture(scope="module")
def pandas_notebook(lakehouse, tmp_path_factory):
    """(cells, probe, latest, mart_df): the notebook's run, and the mart as its cell read it."""
    out = lakehouse.out
    workdir = tmp_path_factory.mktemp("pandas_notebook")
    mart = workdir / "mart.pkl"
    run = execute(
        PANDAS_NOTEBOOK, workdir, {"GROWTH_LAKEHOUSE": str(out)}, after={"mart": f"mart_df.to_pickle({str(mart)!r})"}
    )
    return (*run, pd.read_pickle(mart))


# --- reading what a cell showed ----------------------------------------------------------------


def shown_text(cell) -> str:
    """Everything a cell printed or displayed as text."""
    return "\n".join(
        o.get("text", "") if o["output_type"] == "stream" else o.get("data", {}).get("text/plain", "")
        for o in cell.outputs
    )


def shown_table(cell) -> list[list[str]]:
    """The frame a cell displayed last (pandas' text form), one list of cells per row, index dropped."""
    frame = [o for o in cell.outputs if "text/plain" in o.get("data", {})][-1]["data"]["text/plain"]
    header, *rows = frame.splitlines()
    return [header.split()] + [row.split()[1:] for row in rows]


def latest_snapshot(lakehouse: Lakehouse):
    report = lakehouse.output(tables.REPORT)
    return report.where(F.col("as_of_date") == LATEST).orderBy(F.desc("revenue"), "customer_segment")


def over_time(lakehouse: Lakehouse) -> str:
    """What a chart over the report's history says it draws: every segment, every as-of date (one per run)."""
    segments = lakehouse.output(tables.REPORT).select("customer_segment").distinct().count()
    return f"{segments} segments over {len(RUNS)} as-of dates"


def assert_shows_the_latest_snapshot(lakehouse: Lakehouse, cell) -> None:
    expected = [
        [r["customer_segment"], str(r["revenue"]), str(r["order_count"]), str(r["customer_count"])]
        for r in latest_snapshot(lakehouse).collect()
    ]
    assert len(expected) >= 2
    assert f"{tables.REPORT} as of {LATEST}" in shown_text(cell)
    assert shown_table(cell) == [SHOWN_COLUMNS, *expected]


# --- the committed notebooks (fast) ------------------------------------------------------------


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_committed_notebooks_are_valid_nbformat_without_outputs_or_stray_metadata(notebook):
    nb = nbformat.read(notebook, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert set(nb.metadata) == {"kernelspec", "language_info"}
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        assert set(cell.metadata) <= {"tags"}, cell.id
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_the_first_code_cell_is_the_parameters_cell_and_the_env_var_overrides_the_demo_lakehouse(notebook, monkeypatch):
    nb = nbformat.read(notebook, as_version=4)
    first = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", [])
    monkeypatch.delenv("GROWTH_LAKEHOUSE", raising=False)
    defaults = {}
    exec(first.source, defaults)  # our own committed cell
    assert defaults["LAKEHOUSE"] == "data/lakehouse/curated"
    monkeypatch.setenv("GROWTH_LAKEHOUSE", "main.growth")
    overridden = {}
    exec(first.source, overridden)  # our own committed cell
    assert overridden["LAKEHOUSE"] == "main.growth"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_the_notebooks_code_spells_no_table_name_but_uses_growth_revenue_tables(notebook):
    code = "\n".join(cell.source for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code")
    names = (*tables.OUTPUTS, tables.RAW_ORDERS, tables.RAW_CUSTOMERS)
    assert [name for name in names if name in code] == []
    assert "from growth_revenue import" in code and "tables" in code


# --- the Spark notebook, executed (slow) -------------------------------------------------------


@pytest.mark.slow
def test_the_spark_notebook_runs_every_cell_in_the_venvs_kernel(spark_notebook):
    cells, probe, _, _ = spark_notebook
    assert probe["prefix"] == sys.prefix  # the kernel is this venv's python
    assert all(o["output_type"] != "error" for cell in cells.values() for o in cell.get("outputs", []))


@pytest.mark.slow
def test_the_spark_notebook_shows_the_latest_snapshot_of_the_report(spark, lakehouse, spark_notebook):
    cells, _, _, _ = spark_notebook
    assert_shows_the_latest_snapshot(lakehouse, cells["latest-report"])


@pytest.mark.slow
def test_the_spark_notebook_shows_the_report_history_across_as_of_dates(spark_notebook):
    cells, _, _, _ = spark_notebook
    shown = shown_text(cells["history"])
    assert all(str(as_of) in shown for as_of, _ in RUNS)


@pytest.mark.slow
def test_time_travel_to_the_previous_version_shows_the_latest_run_added_its_snapshot(spark, lakehouse, spark_notebook):
    cells, _, _, _ = spark_notebook
    segments = latest_snapshot(lakehouse).count()
    assert f"{tables.REPORT}: version 0 -> 1" in shown_text(cells["what-changed"])
    assert shown_table(cells["what-changed"]) == [
        ["as_of_date", "rows_added", "rows_removed"],
        [str(LATEST), str(segments), "0"],
    ]


@pytest.mark.slow
def test_the_spark_notebook_shows_the_quality_results_of_the_last_run_only(spark, lakehouse, spark_notebook):
    cells, _, _, _ = spark_notebook
    last_run = lakehouse.outcomes[-1].run_id
    shown = cells["quality"]
    assert f"{tables.DQ_RESULTS}: run {last_run}" in shown_text(shown)
    checks = lakehouse.output(tables.DQ_RESULTS).where(F.col("run_id") == last_run)
    html = [o for o in shown.outputs if "text/html" in o.get("data", {})][-1]["data"]["text/html"]
    assert html.count("<tr>") == checks.count()  # one body row per check of that run, none of the first run


@pytest.mark.slow
def test_the_spark_notebook_shows_the_quarantine_and_whether_the_report_is_in_line_with_the_mart(
    spark, lakehouse, spark_notebook
):
    cells, _, _, _ = spark_notebook
    shown = shown_text(cells["quarantine"])
    quarantined = lakehouse.output(tables.QUARANTINE).count()
    assert f"{tables.QUARANTINE}: {quarantined:,} revenue orders kept out of the mart" in shown
    mart_version = lakehouse.version(tables.MART)
    assert f"built from {tables.MART} version {mart_version}, the current one" in shown


@pytest.mark.slow
def test_the_chart_of_revenue_by_segment_over_the_as_of_dates_is_shown_and_saved_as_a_png(lakehouse, spark_notebook):
    cells, _, _, chart = spark_notebook
    assert any("image/png" in o.get("data", {}) for o in cells["chart"].outputs)
    assert over_time(lakehouse) in shown_text(cells["chart"])
    png = chart.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (800, 450) and len(png) > 10_000
    assert f"saved {chart}" in shown_text(cells["chart"])


# --- the Spark-free notebook, executed (slow) --------------------------------------------------


@pytest.mark.slow
def test_the_pandas_notebook_reads_the_latest_snapshot_with_delta_rs_and_no_spark(spark, lakehouse, pandas_notebook):
    _, probe, latest, _ = pandas_notebook
    assert probe == {"prefix": sys.prefix, "pyspark_loaded": False}
    expected = latest_snapshot(lakehouse).toPandas()
    for frame in (latest, expected):
        frame["computed_at"] = pd.to_datetime(frame["computed_at"], utc=True).astype("datetime64[us, UTC]")
    pd.testing.assert_frame_equal(latest.reset_index(drop=True), expected, check_dtype=False)


@pytest.mark.slow
def test_the_pandas_notebook_shows_the_same_latest_report_and_chart(spark, lakehouse, pandas_notebook):
    cells, _, _, _ = pandas_notebook
    assert all(o["output_type"] != "error" for cell in cells.values() for o in cell.get("outputs", []))
    assert_shows_the_latest_snapshot(lakehouse, cells["latest-report"])
    assert any("image/png" in o.get("data", {}) for o in cells["chart"].outputs)
    assert over_time(lakehouse) in shown_text(cells["chart"])


@pytest.mark.slow
def test_the_pandas_notebook_reads_the_marts_order_ts_as_spark_does_up_to_the_plausible_bounds(
    spark, lakehouse, pandas_notebook
):
    mart_df = pandas_notebook[3]
    spark_mart = lakehouse.output(tables.MART)
    in_spark = {
        r["order_id"]: r["order_ts"]
        for r in spark_mart.select(
            "order_id", F.date_format("order_ts", "yyyy-MM-dd HH:mm:ss.SSSSSS").alias("order_ts")
        ).collect()
    }
    in_notebook = {row.order_id: row.order_ts.strftime("%Y-%m-%d %H:%M:%S.%f") for row in mart_df.itertuples()}
    assert in_notebook == in_spark
    assert {order_id: in_notebook[order_id][:19] for order_id in BOUND_ORDERS} == BOUND_ORDERS
