"""The Airflow DAG dags/growth_revenue_nightly.py, as Airflow itself sees and runs it.

Airflow lives in its own venv (.venv-airflow, `make test` creates it from
dags/requirements-airflow.txt); these tests run in the job's venv and call that venv's python in
subprocesses: tests/airflow_probe/dag_probe.py reports what a DagBag parsed and what the templates
render to, as JSON, and the last tests run the DAG end to end with `airflow dags test`.
"""

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from demo import AS_OF, ROOT, small_job_config
from lakehouse import Lakehouse

from growth_revenue import jars, launch, tables
from growth_revenue.exit_codes import ExitCode

DAGS = ROOT / "dags"
AIRFLOW_VENV = ROOT / ".venv-airflow"
AIRFLOW_PYTHON = AIRFLOW_VENV / "bin" / "python"
PROBE = Path(__file__).resolve().parent / "airflow_probe" / "dag_probe.py"
REQUIREMENTS = DAGS / "requirements-airflow.txt"
JOB_PYTHON = Path(sys.executable)  # the job's venv: pyspark, and spark-submit beside it
DEFAULT_LINE = jars.line(jars.DEFAULT_LINE)
OTHER_LINE = jars.line(next(name for name in jars.LINES if name != jars.DEFAULT_LINE))

RENDER_CASES = [
    # The scheduled run of 2026-11-25: CronTriggerTimetable's logical_date is the 07:00 trigger itself.
    {
        "name": "scheduled",
        "run_type": "scheduled",
        "logical_date": "2026-11-25T07:00:00+00:00",
        "run_after": "2026-11-25T07:00:00+00:00",
    },
    # Triggered by hand at 15:32 with a logical date picked for an earlier day.
    {
        "name": "manual_for_a_date",
        "run_type": "manual",
        "logical_date": "2026-11-20T00:00:00+00:00",
        "run_after": "2026-11-25T15:32:00+00:00",
    },
    # Triggered by hand with no logical date (Airflow 3 allows it): the trigger time decides.
    {
        "name": "manual_without_logical_date",
        "run_type": "manual",
        "logical_date": None,
        "run_after": "2026-11-25T15:32:00+00:00",
    },
    # `airflow backfill create` for 2026-10-03: the run stands for that day's 07:00.
    {
        "name": "backfill",
        "run_type": "backfill",
        "logical_date": "2026-10-03T07:00:00+00:00",
        "run_after": "2026-10-03T07:00:00+00:00",
    },
    # 07:00 in Tokyo on 2026-11-25 is 22:00 UTC on 2026-11-24.
    {
        "name": "tokyo_07_00",
        "run_type": "scheduled",
        "logical_date": "2026-11-24T22:00:00+00:00",
        "run_after": "2026-11-24T22:00:00+00:00",
    },
]


def airflow_env(home: Path, **overrides: str) -> dict[str, str]:
    """A clean environment for the Airflow venv: nothing of the job's Spark session or of a real Airflow."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "GROWTH_REVENUE_", "PYSPARK_", "SPARK_", "PYTHONPATH"))
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
    )
    env.update(overrides)
    return env


@pytest.fixture(scope="module")
def airflow_python():
    if not AIRFLOW_PYTHON.exists():
        pytest.fail(f"no Airflow venv at {AIRFLOW_VENV}: run `make test` (or `make airflow-venv`)")
    return AIRFLOW_PYTHON


def probe(airflow_python, workdir: Path, **settings: str) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    cases, out = workdir / "cases.json", workdir / "probe.json"
    cases.write_text(json.dumps(RENDER_CASES))
    done = subprocess.run(
        [str(airflow_python), str(PROBE), str(DAGS), str(out), str(cases)],
        env=airflow_env(workdir / "home", **settings),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def parsed(airflow_python, tmp_path_factory):
    """The DAG as parsed with no settings at all: every default."""
    return probe(airflow_python, tmp_path_factory.mktemp("defaults"))


@pytest.fixture(scope="module")
def tokyo_ivy(tmp_path_factory):
    """An absolute Ivy cache where set-up recorded the default line's Deequ jar as resolved."""
    ivy = tmp_path_factory.mktemp("tokyo-ivy")
    jars.ivy_dir(ivy, DEFAULT_LINE).mkdir()
    (jars.ivy_dir(ivy, DEFAULT_LINE) / jars.RECORD).write_text(json.dumps({"deequ_resolved": True}))
    return ivy


@pytest.fixture(scope="module")
def tokyo_config(tmp_path_factory, tokyo_ivy):
    config = tmp_path_factory.mktemp("tokyo") / "tokyo.yaml"
    config.write_text(f"rules:\n  reporting_timezone: Asia/Tokyo\nspark:\n  ivy_dir: {tokyo_ivy}\n")
    return config


@pytest.fixture(scope="module")
def configured(airflow_python, tmp_path_factory, tokyo_config):
    """The DAG as a Tokyo deployment configures it: the environment and one Variable."""
    return probe(
        airflow_python,
        tmp_path_factory.mktemp("tokyo-run"),
        GROWTH_REVENUE_CONFIG=str(tokyo_config),
        GROWTH_REVENUE_TIMEZONE="Asia/Tokyo",
        GROWTH_REVENUE_SPARK_CONN_ID="spark_cluster",
        GROWTH_REVENUE_RETRIES="1",
        AIRFLOW_VAR_GROWTH_REVENUE_PYTHON="/opt/growth/venv/bin/python",
        # Would turn a plain "0 7 * * *" into a data-interval timetable (logical_date a day early).
        AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS="True",
    )


@pytest.fixture(scope="module")
def other_line(airflow_python, tmp_path_factory):
    """The DAG as a deployment on the other Spark line parses it: the line is the only setting."""
    return probe(airflow_python, tmp_path_factory.mktemp("other-line"), GROWTH_REVENUE_SPARK_LINE=OTHER_LINE.name)


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"{line!r} in {REQUIREMENTS.name} is not pinned with =="
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


# --- the Airflow venv ------------------------------------------------------------------------------


def test_airflow_requirements_pin_airflow_3_and_the_spark_provider_exactly():
    pins = requirement_pins()
    assert pins["apache-airflow"] == "3.3.2"
    assert pins["apache-airflow-providers-apache-spark"] == "6.3.4"
    # growth_revenue.config needs them when the DAG loads the job config.
    assert {"pyyaml", "pydantic"} <= set(pins)
    assert "pyspark" not in pins  # the job's pyspark stays in the job's venv


@pytest.mark.slow
def test_airflow_venv_holds_exactly_the_pinned_packages(airflow_python):
    done = subprocess.run(
        [str(airflow_python), "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True, check=True
    )
    installed = {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, _, version in (line.partition("==") for line in done.stdout.split())
    }
    assert installed == requirement_pins()


# --- what the scheduler parses ---------------------------------------------------------------------


@pytest.mark.slow
def test_dag_file_loads_into_a_dagbag_with_no_import_errors(parsed):
    assert parsed["describe"]["import_errors"] == {}
    assert parsed["describe"]["dag_ids"] == ["growth_revenue_nightly"]


@pytest.mark.slow
def test_dag_module_pulls_no_pyspark_or_pydeequ_into_the_scheduler(parsed):
    # The Airflow venv has pyspark-client, so an import of growth_revenue.session would succeed there:
    # what is checked is what parsing the file loaded.
    assert parsed["describe"]["job_modules_imported"] == []


@pytest.mark.slow
def test_dag_triggers_daily_at_07_00_utc_on_a_cron_trigger_timetable(parsed):
    dag = parsed["describe"]["dag"]
    assert dag["timetable_type"] == "CronTriggerTimetable"
    assert dag["schedule"] == "0 7 * * *"
    assert dag["timezone"] == "UTC"
    # The run of 2026-11-25 has logical_date 2026-11-25T07:00Z itself (not the previous day's, as a
    # data-interval timetable would give).
    assert dag["next_triggers"] == {
        "2026-11-24T12:00:00+00:00": "2026-11-25T07:00:00+00:00",
        "2026-11-25T06:59:00+00:00": "2026-11-25T07:00:00+00:00",
        "2026-11-25T07:00:01+00:00": "2026-11-26T07:00:00+00:00",
    }


@pytest.mark.slow
def test_dag_is_tagged_nightly_and_marketing_runs_one_at_a_time_without_catchup(parsed):
    dag = parsed["describe"]["dag"]
    assert dag["tags"] == ["marketing", "nightly"]
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    assert dag["task_ids"] == ["nightly_revenue"]


@pytest.mark.slow
def test_a_failed_run_is_retried_with_exponential_backoff_by_its_owner(parsed):
    task = parsed["describe"]["task"]
    assert task["owner"] == "growth-data-engineering"
    assert task["retries"] == 3
    assert task["retry_delay_s"] == 600
    assert task["retry_exponential_backoff"] is True
    assert task["max_retry_delay_s"] == 3600
    assert task["execution_timeout_s"] == 3 * 3600


@pytest.mark.slow
def test_doc_md_says_what_is_published_and_what_each_exit_code_means(parsed):
    doc = parsed["describe"]["dag"]["doc_md"]
    for table in (tables.MART, tables.REPORT, tables.DQ_RESULTS):
        assert table in doc
    for code in ExitCode:  # every failure code, each with its meaning from the one enum
        if code != ExitCode.OK:
            assert f"`{code.value}`: {code.meaning}" in doc
    assert "previous (yesterday's) tables" in doc


@pytest.mark.slow
def test_task_spark_submits_the_job_entry_point_with_the_packaged_lib(parsed):
    task = parsed["describe"]["task"]
    assert task["type"] == "airflow.providers.apache.spark.operators.spark_submit.SparkSubmitOperator"
    assert task["conn_id"] == "spark_default"
    assert task["application"] == str(ROOT / "jobs" / "nightly_revenue.py")
    assert task["py_files"] == str(ROOT / "build" / "growth_revenue.zip")


@pytest.mark.slow
def test_packages_excludes_and_confs_are_launch_submit_settings_of_the_job_config(parsed):
    task = parsed["describe"]["task"]
    expected = launch.submit_settings(str(ROOT / "conf" / "local.yaml"), line=DEFAULT_LINE)
    # The default line's Delta, and its Deequ exactly when set-up recorded it as resolved in the checkout's cache.
    assert (
        task["packages"]
        == ",".join(expected.packages)
        == ",".join(jars.packages(DEFAULT_LINE, jars.deequ_resolved(ROOT / ".ivy", DEFAULT_LINE)))
    )
    assert task["packages"].split(",")[0] == DEFAULT_LINE.delta_package
    assert task["exclude_packages"] == ",".join(jars.EXCLUDED_PACKAGES)
    assert task["driver_memory"] == expected.driver_memory
    assert task["name"] == expected.name
    assert task["conf"] == {
        **expected.conf,
        # the line's own cache, anchored in the checkout, not in whatever directory the worker runs in
        "spark.jars.ivy": str(ROOT / ".ivy" / DEFAULT_LINE.name),
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{ROOT / 'conf' / 'log4j2.properties'}",
    }


@pytest.mark.slow
def test_env_vars_give_pydeequ_its_spark_version_and_spark_the_jobs_python(parsed, configured):
    assert parsed["describe"]["task"]["env_vars"]["SPARK_VERSION"] == DEFAULT_LINE.name
    default = parsed["rendered"]["scheduled"]["env_vars"]
    assert default == {
        "SPARK_VERSION": DEFAULT_LINE.name,
        "PYSPARK_PYTHON": str(ROOT / f".venv-{DEFAULT_LINE.name}" / "bin" / "python"),
    }
    from_variable = configured["rendered"]["scheduled"]["env_vars"]
    assert from_variable["PYSPARK_PYTHON"] == "/opt/growth/venv/bin/python"


@pytest.mark.slow
def test_application_args_pass_the_job_config_and_the_runs_date_as_as_of(parsed):
    args = parsed["rendered"]["scheduled"]["application_args"]
    assert args == ["--config", str(ROOT / "conf" / "local.yaml"), "--as-of", "2026-11-25"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, as_of",
    [
        ("scheduled", "2026-11-25"),
        ("manual_for_a_date", "2026-11-20"),
        ("manual_without_logical_date", "2026-11-25"),
        ("backfill", "2026-10-03"),
        ("tokyo_07_00", "2026-11-24"),  # the UTC report's date at that instant: the job's own run date
    ],
)
def test_as_of_is_the_calendar_date_of_the_run_in_the_reporting_timezone(parsed, case, as_of):
    args = parsed["rendered"][case]["application_args"]
    assert args[args.index("--as-of") + 1] == as_of


@pytest.mark.slow
def test_settings_from_the_environment_choose_config_connection_timezone_and_retries(
    configured, tokyo_config, tokyo_ivy
):
    dag, task = configured["describe"]["dag"], configured["describe"]["task"]
    assert configured["describe"]["import_errors"] == {}
    assert task["conn_id"] == "spark_cluster"
    assert task["retries"] == 1
    assert dag["timezone"] == "Asia/Tokyo"
    assert dag["timetable_type"] == "CronTriggerTimetable"
    assert dag["next_triggers"]["2026-11-24T12:00:00+00:00"] == "2026-11-24T22:00:00+00:00"  # 07:00 JST
    # The config decides the Ivy cache (absolute, kept as is, the line's folder in it), and so the packages:
    # set-up recorded Deequ as resolved there.
    assert task["packages"] == f"{DEFAULT_LINE.delta_package},{DEFAULT_LINE.deequ_package}"
    assert task["conf"]["spark.jars.ivy"] == str(jars.ivy_dir(tokyo_ivy, DEFAULT_LINE))
    args = configured["rendered"]["tokyo_07_00"]["application_args"]
    # 07:00 in Tokyo on 2026-11-25 reports 2026-11-25 in a Tokyo-reporting config ({{ ds }} would say 11-24).
    assert args == ["--config", str(tokyo_config), "--as-of", "2026-11-25"]


@pytest.mark.slow
def test_spark_line_setting_switches_packages_venv_spark_version_and_ivy_cache(other_line):
    assert other_line["describe"]["import_errors"] == {}
    task = other_line["describe"]["task"]
    expected = launch.submit_settings(str(ROOT / "conf" / "local.yaml"), base_dir=ROOT, line=OTHER_LINE)
    assert (
        task["packages"]
        == ",".join(expected.packages)
        == ",".join(jars.packages(OTHER_LINE, jars.deequ_resolved(ROOT / ".ivy", OTHER_LINE)))
    )
    assert task["packages"].split(",")[0] == OTHER_LINE.delta_package
    assert task["exclude_packages"] == ",".join(jars.EXCLUDED_PACKAGES)
    assert task["conf"]["spark.jars.ivy"] == str(ROOT / ".ivy" / OTHER_LINE.name)
    assert task["env_vars"]["SPARK_VERSION"] == OTHER_LINE.name
    assert other_line["rendered"]["scheduled"]["env_vars"] == {
        "SPARK_VERSION": OTHER_LINE.name,
        "PYSPARK_PYTHON": str(ROOT / f".venv-{OTHER_LINE.name}" / "bin" / "python"),
    }


# --- end to end through Airflow --------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployment(airflow_python, spark, tmp_path_factory):
    """A deployed project (checkout + built zip), a demo lakehouse, a job config, a migrated Airflow DB."""
    root = tmp_path_factory.mktemp("airflow-e2e")
    # The project as deployed: the checkout's code, and build/growth_revenue.zip built for this deploy
    # (here, not in the repo's build/, which spark-submit.sh rewrites on every launch).
    project = root / "project"
    (project / "build").mkdir(parents=True)
    for part in ("lib", "jobs", "conf"):
        (project / part).symlink_to(ROOT / part)
    lakehouse = Lakehouse(spark, root)
    lakehouse.write_sample(AS_OF, orders=1500, customers=150)
    raw_orders, raw_customers = (lakehouse.raw_path(name) for name in (tables.RAW_ORDERS, tables.RAW_CUSTOMERS))
    # spark.master is not used: the Airflow connection's master wins.
    config = small_job_config(
        root / "job.yaml",
        extra=f"tables:\n  raw_orders: {raw_orders}\n  raw_customers: {raw_customers}\n  output_dir: {lakehouse.out}\n",
    )
    subprocess.run(
        [str(JOB_PYTHON), "-m", "growth_revenue.package", str(project / "build" / "growth_revenue.zip")],
        check=True,
        capture_output=True,
    )
    env = airflow_env(
        root / "home",
        GROWTH_REVENUE_PROJECT_DIR=str(project),
        GROWTH_REVENUE_CONFIG=str(config),
        GROWTH_REVENUE_RETRIES="0",  # a failure ends the test run at once instead of waiting to retry
        GROWTH_REVENUE_SPARK_LINE=jars.installed_line().name,  # the line of the job's venv below
        AIRFLOW_CONN_SPARK_DEFAULT=json.dumps({"conn_type": "spark", "host": "local[2]"}),
        AIRFLOW_VAR_GROWTH_REVENUE_PYTHON=str(JOB_PYTHON),
        PATH=f"{JOB_PYTHON.parent}{os.pathsep}{os.environ['PATH']}",  # spark-submit from the job's venv
    )
    airflow = str(AIRFLOW_VENV / "bin" / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, cwd=root, check=True, capture_output=True, timeout=180)
    return root, env, airflow


def dags_test(deployment, logical_date: str, timeout: int = 300) -> subprocess.CompletedProcess:
    root, env, airflow = deployment
    process = subprocess.Popen(
        [airflow, "dags", "test", "growth_revenue_nightly", logical_date],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        log, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # spark-submit's JVM and the driver with it
        log, _ = process.communicate()
        pytest.fail(f"airflow dags test took over {timeout}s:\n{log[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, log, "")


@pytest.mark.slow
def test_airflow_dags_test_spark_submits_the_job_and_publishes_the_as_of_snapshot(deployment, spark):
    done = dags_test(deployment, "2026-11-25T07:00:00+00:00")
    assert done.returncode == 0, done.stdout[-4000:]
    line = jars.installed_line()
    # The job config's Ivy cache is the checkout's: Deequ is loaded if set-up resolved it there.
    packages = ",".join(jars.packages(line, jars.deequ_resolved(ROOT / ".ivy", line)))
    assert re.search(
        r"Spark-Submit cmd: spark-submit --master local\[2\] .*"
        rf"--py-files \S+/project/build/growth_revenue\.zip .*--packages {re.escape(packages)} "
        r".*/project/jobs/nightly_revenue\.py --config \S+/job\.yaml --as-of 2026-11-25",
        done.stdout,
    )
    assert "published, exit 0" in done.stdout
    assert "state=success" in done.stdout

    lakehouse = Lakehouse(spark, deployment[0])
    report = lakehouse.output(tables.REPORT)
    assert report.where(f"as_of_date = DATE'{AS_OF}'").count() >= 2
    assert {r.as_of_date for r in report.select("as_of_date").distinct().collect()} == {AS_OF}
    dq = lakehouse.output(tables.DQ_RESULTS)
    assert dq.where("status = 'Failure' AND level = 'Error'").count() == 0


@pytest.mark.slow
def test_a_job_exit_code_fails_the_airflow_task_and_the_dag_run(deployment):
    # A run for a date after today: the job refuses an as-of after its run date with exit 2.
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)).strftime("%Y-%m-%dT07:00:00+00:00")
    done = dags_test(deployment, future, timeout=240)
    assert done.returncode != 0
    assert "Error code is: 2" in done.stdout
    assert "after the run date" in done.stdout
    assert "DagRun failed" in done.stdout
