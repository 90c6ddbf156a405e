"""Airflow DAG `growth_revenue_nightly`: the nightly revenue job through spark-submit at 07:00.

The spark-submit options (Delta package, excludes, session confs, driver memory, app name) come
from `growth_revenue.launch.submit_settings`, the same function spark-submit.sh uses, so the jar
coordinates and confs are written in one place. That module is pure Python: the scheduler parses
this file often, and nothing here imports pyspark or pydeequ (the Airflow environment has neither).

Settings read when the file is parsed, from the environment (no metadata-DB query per parse):

| variable                        | default                                   |
|---------------------------------|-------------------------------------------|
| GROWTH_REVENUE_PROJECT_DIR      | this file's folder's parent (the checkout)|
| GROWTH_REVENUE_CONFIG           | <project>/conf/local.yaml                 |
| GROWTH_REVENUE_SPARK_CONN_ID    | spark_default                             |
| GROWTH_REVENUE_TIMEZONE         | UTC (the zone of the 07:00 schedule)      |
| GROWTH_REVENUE_RETRIES          | 3 (0 in a test or dev deployment)         |
| GROWTH_REVENUE_SPARK_LINE       | the default line (growth_revenue/jars.py) |

Read when the task runs, as an Airflow Variable (a template, so parsing never queries it):

| Variable                | default                                                  |
|-------------------------|----------------------------------------------------------|
| growth_revenue_python   | $GROWTH_REVENUE_PYTHON, else <project>/.venv-<line>/bin/python |
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, CronTriggerTimetable

PROJECT_DIR = Path(os.environ.get("GROWTH_REVENUE_PROJECT_DIR") or Path(__file__).resolve().parents[1])
JOB_CONFIG = os.environ.get("GROWTH_REVENUE_CONFIG") or str(PROJECT_DIR / "conf" / "local.yaml")
SPARK_CONN_ID = os.environ.get("GROWTH_REVENUE_SPARK_CONN_ID") or "spark_default"
SCHEDULE_TIMEZONE = os.environ.get("GROWTH_REVENUE_TIMEZONE") or "UTC"
RETRIES = int(os.environ.get("GROWTH_REVENUE_RETRIES") or 3)

# The job's own package, for its launch settings only (pure Python + PyYAML, which Airflow has).
if str(PROJECT_DIR / "lib") not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR / "lib"))

from growth_revenue import jars, launch  # noqa: E402
from growth_revenue.config import load_config  # noqa: E402
from growth_revenue.exit_codes import ExitCode  # noqa: E402

# The Spark line the job's venv was set up for (make venv SPARK_LINE=...): its packages and Ivy cache.
SPARK_LINE = jars.line(os.environ.get("GROWTH_REVENUE_SPARK_LINE") or jars.DEFAULT_LINE)
DEFAULT_PYTHON = os.environ.get("GROWTH_REVENUE_PYTHON") or str(
    PROJECT_DIR / f".venv-{SPARK_LINE.name}" / "bin" / "python"
)

APPLICATION = PROJECT_DIR / "jobs" / "nightly_revenue.py"
# Built at deploy time: `python -m growth_revenue.package <project>/build/growth_revenue.zip`.
PACKAGED_LIB = PROJECT_DIR / "build" / "growth_revenue.zip"

# The report date of this run: the calendar date, in the report's time zone, of the instant the run
# stands for. A scheduled run's logical_date is its 07:00 trigger time (CronTriggerTimetable), a
# backfill's is the 07:00 of the date being backfilled, a manual run's is the date picked when
# triggering; a run triggered without a logical date (Airflow 3 allows it) falls back to run_after,
# the moment it was triggered. The reporting zone is the job's own "run date" zone (cli.parse_as_of),
# so the date is never after the run date the job checks against, whatever the schedule's zone.
AS_OF_TEMPLATE = "{{ (dag_run.logical_date or dag_run.run_after).astimezone(reporting_timezone).strftime('%Y-%m-%d') }}"
PYTHON_TEMPLATE = "{{ var.value.get('growth_revenue_python', '%s') }}" % DEFAULT_PYTHON  # noqa: UP031 - Jinja braces

# The exit codes as growth_revenue.exit_codes defines them (README "Exit codes" is the same table).
EXIT_CODES_MD = "\n".join(f"* `{code.value}`: {code.meaning}." for code in ExitCode if code is not ExitCode.OK)

DOC_MD = f"""
### growth_revenue_nightly

Runs the growth_revenue job (`jobs/nightly_revenue.py`, code shipped as `build/growth_revenue.zip`)
once a day at 07:00 {SCHEDULE_TIMEZONE} through spark-submit on the `{SPARK_CONN_ID}` connection's master,
with `--config {JOB_CONFIG}` and `--as-of` = the run's date.

**Publishes** (Delta, under the config's output dir or schema):
`mart_orders_enriched` (kept up to date incrementally, rebuilt when needed), `quarantine_orders`,
`rpt_30day_revenue_by_segment` (the snapshot for the as-of date, replaced atomically) and
`dq_check_results` (one row per quality check, every run).

**A failed task means the date's numbers were not published**: the dashboards keep serving the
previous (yesterday's) tables. The spark-submit exit code in the task log says why:

{EXIT_CODES_MD}

Fix the cause, then clear the task. A crash between the writes can leave the mart new and the
report old: the rerun puts both right. Retrying does not fix a usage error (a bad job config shows
up earlier, as this DAG's import error); the retries do pick up data that lands late for the gate.

Rerunning (clearing) a date is safe: it replaces only that date's report snapshot.
"""

_job_config = load_config(JOB_CONFIG)
# A relative Ivy cache is anchored in the checkout, not in whatever directory the worker runs in.
_submit = launch.submit_settings(JOB_CONFIG, base_dir=PROJECT_DIR, line=SPARK_LINE)


def _spark_conf() -> dict[str, str]:
    conf = dict(_submit.conf)
    # Spark's own logging at WARN, as under spark-submit.sh (the job's lines stay at INFO).
    conf.setdefault(
        "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{PROJECT_DIR / 'conf' / 'log4j2.properties'}"
    )
    return conf


with DAG(
    dag_id="growth_revenue_nightly",
    description="Nightly revenue mart and 30-day revenue-by-segment report, gated by data-quality checks",
    # Explicit rather than the string "0 7 * * *", so logical_date is the 07:00 trigger time even where
    # [scheduler] create_cron_data_intervals is True (which would make it the previous day's 07:00).
    schedule=CronTriggerTimetable("0 7 * * *", timezone=SCHEDULE_TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=SCHEDULE_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    tags=["nightly", "marketing"],
    doc_md=DOC_MD,
    user_defined_macros={"reporting_timezone": ZoneInfo(_job_config.rules.reporting_timezone)},
    default_args={
        "owner": "growth-data-engineering",
        "retries": RETRIES,
        "retry_delay": dt.timedelta(minutes=10),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(hours=1),
        "execution_timeout": dt.timedelta(hours=3),
    },
) as dag:
    SparkSubmitOperator(
        task_id="nightly_revenue",
        conn_id=SPARK_CONN_ID,
        application=str(APPLICATION),
        py_files=str(PACKAGED_LIB),
        packages=",".join(_submit.packages),
        exclude_packages=",".join(_submit.exclude_packages),
        conf=_spark_conf(),
        driver_memory=_submit.driver_memory,
        name=_submit.name,
        env_vars={
            # pydeequ refuses to import without it.
            "SPARK_VERSION": SPARK_LINE.name,
            # The job's interpreter (pyspark, delta-spark, pydeequ), for the driver and the executors;
            # pip's spark-submit also uses it to find SPARK_HOME.
            "PYSPARK_PYTHON": PYTHON_TEMPLATE,
        },
        # No --run-timestamp: the job's clock is the real run time, so freshness is judged when the
        # data is actually read (a retry sees what landed since), and a backfill of a past date is
        # judged as of the end of that date (pipeline.freshness_reference).
        application_args=["--config", JOB_CONFIG, "--as-of", AS_OF_TEMPLATE],
        doc_md="spark-submit of jobs/nightly_revenue.py; exit codes:\n\n" + EXIT_CODES_MD,
    )
