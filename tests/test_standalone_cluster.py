"""The job on a real Spark standalone cluster: a master and two workers on 127.0.0.1.

Local mode keeps the driver and the executors in one JVM with one Python path, so it cannot show
a packaging bug. Here `./spark-submit.sh --master spark://...` runs the driver on its own and the
executors in separate JVMs started by the workers, which must fetch the jars and the shipped
growth_revenue.zip from the driver. The cluster is started once for the module and stopped
afterwards, also when a test fails (tests/standalone.py).
"""

import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from chispa import assert_df_equality
from demo import AS_OF, ROOT, job_env, small_job_config
from lakehouse import Lakehouse
from standalone import LOOPBACK, processes_under, standalone_cluster

from growth_revenue import tables

pytestmark = pytest.mark.slow

NIGHTLY = "2026-11-25T07:00:00Z"
APP_NAME = "growth_revenue_nightly"  # spark.app_name's default
# Small on purpose: the master, two workers, two executors and the driver share a 2-core machine.
# Short-lived executor JVMs spend less CPU on the C1 compiler alone.
EXECUTOR_CONF = {
    "spark.executor.memory": "640m",
    "spark.executor.cores": "1",
    "spark.cores.max": "2",
    "spark.executor.extraJavaOptions": "-XX:TieredStopAtLevel=1",
    "spark.ui.enabled": "false",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # Not waited for here: the daemons start up while the lakehouse is written; cluster_run waits.
    with standalone_cluster(
        tmp_path_factory.mktemp("standalone"), workers=2, cores=1, memory="1g", wait=False
    ) as running:
        yield running


@pytest.fixture(scope="module")
def lakehouse(spark, tmp_path_factory):
    lakehouse = Lakehouse(spark, tmp_path_factory.mktemp("lakehouse"))
    lakehouse.write_sample(AS_OF, orders=1500, customers=150)
    # spark.master stays local[2]: the --master on the command line must win over it.
    lakehouse.job_config = small_job_config(lakehouse.root / "cluster.yaml")
    return lakehouse


@pytest.fixture(scope="module")
def cluster_run(cluster, lakehouse):
    """One nightly run submitted to the standalone master, as an operator would type it."""
    cluster.wait_until_ready(timeout=120)
    confs = [arg for key, value in EXECUTOR_CONF.items() for arg in ("--conf", f"{key}={value}")]
    command = [
        str(ROOT / "spark-submit.sh"),
        "--config",
        str(lakehouse.job_config),
        "--master",
        cluster.master_url,
        *confs,
        *lakehouse.argv(),
        "--as-of",
        str(AS_OF),
        "--run-timestamp",
        NIGHTLY,
    ]
    env = job_env()
    env["SPARK_LOCAL_IP"] = LOOPBACK  # the driver listens on loopback only, like the daemons
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    # Spark's PythonRunner merges the driver's stderr into its stdout (the job's log and any traceback);
    # spark-submit's own stderr is Ivy and JVM noise, so a failure shows the end of each.
    done.log = f"{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-1500:]}"
    done.app = _completed_app(cluster)
    return done


def _completed_app(cluster, wait: float = 15.0) -> dict | None:
    """The master's record of the job's application, once the driver has unregistered it."""
    deadline = time.monotonic() + wait
    while True:
        apps = [app for app in cluster.state()["completedapps"] if app["name"] == APP_NAME]
        if apps or time.monotonic() > deadline:
            return apps[-1] if apps else None
        time.sleep(0.5)


def executor_dirs(cluster, app_id: str) -> dict[str, list[Path]]:
    """worker dir name -> the executor dirs (app-<id>/<executor id>/) that worker ran for the app."""
    return {w.name: sorted(p for p in (w / app_id).glob("*") if p.is_dir()) for w in cluster.worker_dirs}


def test_a_run_submitted_to_the_standalone_master_exits_0_and_publishes_what_the_rules_give(
    cluster_run, spark, lakehouse, config
):
    assert cluster_run.returncode == 0, cluster_run.log
    assert f"{tables.REPORT} as of {AS_OF}" in cluster_run.stdout

    assert_df_equality(
        lakehouse.output(tables.MART),
        lakehouse.expected_mart(config.rules),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert lakehouse.output(tables.REPORT).where(f"as_of_date = DATE'{AS_OF}'").count() >= 2
    dq = lakehouse.output(tables.DQ_RESULTS)
    assert dq.count() > 0 and dq.where("status = 'Failure' AND level = 'Error'").count() == 0


def test_master_on_the_command_line_wins_over_the_configs_local_master(cluster_run):
    # spark.master in the config is local[2]; had it won, the master would have seen no application.
    assert cluster_run.returncode == 0, cluster_run.log
    assert cluster_run.app is not None, "the standalone master never saw the job's application"
    assert cluster_run.app["state"] == "FINISHED"


def test_both_workers_ran_an_executor_of_the_job_in_its_own_jvm(cluster, cluster_run):
    assert cluster_run.app is not None, cluster_run.log
    per_worker = executor_dirs(cluster, cluster_run.app["id"])
    assert all(len(dirs) >= 1 for dirs in per_worker.values()), per_worker
    for dirs in per_worker.values():
        # The worker logs the java command line of the executor JVM it launched for the app.
        command = (dirs[0] / "stderr").read_text(errors="replace").splitlines()[0]
        assert command.startswith("Spark Executor Command:") and "CoarseGrainedExecutorBackend" in command
        assert f'"--app-id" "{cluster_run.app["id"]}"' in command


def test_every_executor_fetched_the_shipped_package_and_can_import_the_job_from_it(cluster, cluster_run):
    assert cluster_run.app is not None, cluster_run.log
    dirs = [d for ds in executor_dirs(cluster, cluster_run.app["id"]).values() for d in ds]
    assert len(dirs) >= 2
    for executor_dir in dirs:
        # --py-files lands in the executor's working dir, fetched from the driver (the executor logs the fetch).
        shipped = next(executor_dir.glob("growth_revenue*.zip"), None)
        assert shipped is not None, sorted(p.name for p in executor_dir.iterdir())
        assert f"files/{shipped.name}" in (executor_dir / "stderr").read_text(errors="replace")
        modules = [name[:-3].replace("/", ".") for name in zipfile.ZipFile(shipped).namelist() if name.endswith(".py")]
        assert {"growth_revenue.transforms", "growth_revenue.pipeline"} <= set(modules)
        assert "growth_revenue/defaults.yaml" in zipfile.ZipFile(shipped).namelist()
        # An executor's Python worker puts the zip at the front of sys.path; every module must import from it.
        probe = (
            "import importlib, sys; sys.path.insert(0, sys.argv[1]); "
            "mods = [importlib.import_module(m) for m in sys.argv[2:]]; "
            "print(all(m.__file__.startswith(sys.argv[1]) for m in mods))"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe, str(shipped), *modules],
            cwd=executor_dir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.stdout.strip() == "True", done.stderr[-2000:]


def test_no_executor_needs_python_because_the_job_runs_entirely_in_the_jvm(cluster, cluster_run):
    assert cluster_run.app is not None, cluster_run.log
    dirs = [d for ds in executor_dirs(cluster, cluster_run.app["id"]).values() for d in ds]
    for executor_dir in dirs:
        # A task that needs Python (a UDF, createDataFrame from driver rows) logs PythonRunner timings.
        assert "PythonRunner" not in (executor_dir / "stderr").read_text(errors="replace"), executor_dir


def test_the_cluster_is_stopped_even_when_start_up_fails(tmp_path):
    # timeout=0 gives up before any worker registers
    with pytest.raises(TimeoutError), standalone_cluster(tmp_path, workers=2, timeout=0):
        pytest.fail("the body must not run")
    assert processes_under(tmp_path) == []


def test_the_cluster_is_stopped_even_when_the_test_using_it_fails(tmp_path):
    with pytest.raises(ZeroDivisionError), standalone_cluster(tmp_path, workers=1, memory="512m"):
        assert len(processes_under(tmp_path)) >= 2  # the master and the worker
        raise ZeroDivisionError("the body failed")
    assert processes_under(tmp_path) == []
