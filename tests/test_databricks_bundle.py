"""The Databricks bundle: the job it deploys to each target, the wheel that job runs, the session on a cluster.

The job is resolved per target as the Databricks CLI resolves it (tests/bundle.py) and must load into the
SDK's JobSettings without losing a key. Every Spark line of growth_revenue/jars.py has a development and a
production target, whose job runs on that line's runtime with that line's Deequ build. The wheel tests (slow) build the wheel with the bundle's own
artifact command in a copy of the project and run its entry point the way a python_wheel_task does.
"""

import configparser
import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from types import SimpleNamespace

import pytest
from bundle import ROOT, BundleError, User, job_settings, resolve, targets
from databricks.sdk.service.jobs import JobSettings
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from growth_revenue import jars
from growth_revenue.config import load_config
from growth_revenue.launch import base_conf
from growth_revenue.locations import Location
from growth_revenue.session import get_spark, stop_spark

JOB = "growth_revenue_nightly"
WHEEL_ARTIFACT = "growth_revenue_wheel"
DEVELOPER = User("dana.engineer@company.test")
PRINCIPAL = User("6f1c3a52-0d7e-4b9a-9a57-3c2f0e1d8b44", is_service_principal=True)
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# The Apache Spark each Databricks Runtime line ships (release notes, "versions and compatibility").
DBR_SPARK = {"16": "3.5", "17": "4.0", "18": "4.1", "19": "4.2"}
# The Python of each Databricks Runtime (release notes, "System environment").
DBR_PYTHON = {"16": "3.12.3", "18": "3.12.3"}
# The pydantic each runtime ships (github.com/databricks/environments, python/dbr/<runtime>/constraints.txt).
DBR_PYDANTIC = {"16": "2.8.2", "18": "2.10.6"}

TARGETS = targets()
MODES = ("development", "production")


def mode(target):
    return TARGETS[target].get("mode")


def nightly(target, user=None, **variables):
    """The resolved bundle and its job for `target`; production is deployed by the service principal (CI)."""
    config = resolve(target, user or (PRINCIPAL if mode(target) == "production" else DEVELOPER), variables)
    return config, job_settings(config, JOB)


@functools.cache
def targets_by_line() -> dict[tuple[str, str], list[str]]:
    """(Spark line, mode) -> the targets that deploy the job on that line in that mode."""
    found: dict[tuple[str, str], list[str]] = {}
    for target in TARGETS:
        config, _ = nightly(target)
        found.setdefault((config["variables"]["spark_line"]["value"]["name"], mode(target)), []).append(target)
    return found


def target_for(line, target_mode):
    (target,) = targets_by_line().get((line, target_mode), [None])
    assert target, f"no {target_mode} target runs Spark {line}"
    return target


def scala_of(maven_package):
    """The Scala binary version in a Maven artifact name (delta-spark_4.1_2.13 -> 2.13)."""
    return re.search(r"_(\d+\.\d+):[^:]+$", maven_package).group(1)


# --- the job definition ------------------------------------------------------------------------


def test_every_spark_line_has_one_development_and_one_production_target():
    assert set(targets_by_line()) == {(line, target_mode) for line in jars.LINES for target_mode in MODES}
    assert all(len(found) == 1 for found in targets_by_line().values()), targets_by_line()
    # The default targets (no target named, and prod from CI) run the default line.
    (default,) = [target for target, spec in TARGETS.items() if spec.get("default")]
    assert target_for(jars.DEFAULT_LINE, "development") == default == "dev"
    assert target_for(jars.DEFAULT_LINE, "production") == "prod"


def test_the_spark_line_is_chosen_by_target_not_by_var():
    # A complex variable: the CLI refuses it on the command line, so a line is never half-switched.
    with pytest.raises(BundleError, match="complex type via --var"):
        nightly("dev", spark_line="4.1")


@pytest.mark.parametrize("target", TARGETS)
def test_job_definition_loads_into_the_sdk_job_settings_without_loss(target):
    _, job = nightly(target)
    assert JobSettings.from_dict(job).as_dict() == job


@pytest.mark.parametrize("target", TARGETS)
def test_schedule_is_07_00_utc_daily_paused_in_dev_unpaused_in_prod(target):
    _, job = nightly(target)
    pause_status = {"development": "PAUSED", "production": "UNPAUSED"}[mode(target)]
    assert job["schedule"] == {
        "quartz_cron_expression": "0 0 7 * * ?",
        "timezone_id": "UTC",
        "pause_status": pause_status,
    }


def test_dev_is_a_personal_copy_and_prod_one_copy_run_as_the_service_principal():
    dev_config, dev = nightly("dev")
    assert dev["name"] == "[dev dana_engineer] growth_revenue_nightly"
    assert "run_as" not in dev  # runs as the developer who deployed it
    assert dev_config["workspace"]["root_path"] == f"/Workspace/Users/{DEVELOPER.user_name}/.bundle/growth_revenue/dev"

    prod_config, prod = nightly("prod")
    assert prod["name"] == JOB
    assert prod["run_as"] == {"service_principal_name": PRINCIPAL.user_name}
    assert (
        prod_config["workspace"]["root_path"] == f"/Workspace/Users/{PRINCIPAL.user_name}/.bundle/growth_revenue/prod"
    )
    # A person who deploys prod names the principal and gets the very same job, in the same place.
    _, by_hand = nightly("prod", DEVELOPER, job_identity=PRINCIPAL.user_name)
    assert by_hand == prod


@pytest.mark.parametrize("line", [line for line in jars.LINES if line != jars.DEFAULT_LINE])
def test_another_line_is_a_second_dev_copy_but_the_same_one_prod_job(line):
    dev_config, dev = nightly(target_for(line, "development"))
    assert dev["name"] == "[dev dana_engineer] growth_revenue_nightly"
    assert dev_config["workspace"]["root_path"] == (
        f"/Workspace/Users/{DEVELOPER.user_name}/.bundle/growth_revenue/{target_for(line, 'development')}"
    )

    # Same folder (so the same deployment state): deploying it moves the prod job to the line, it never
    # schedules a second job on the same tables.
    prod_config, prod = nightly("prod")
    other_config, other = nightly(target_for(line, "production"))
    assert other_config["workspace"]["root_path"] == prod_config["workspace"]["root_path"]
    assert other_config["workspace"]["state_path"] == prod_config["workspace"]["state_path"]
    line_specific = {"job_clusters", "tasks"}
    assert {key: value for key, value in other.items() if key not in line_specific} == {
        key: value for key, value in prod.items() if key not in line_specific
    }


@pytest.mark.parametrize("target_mode", MODES)
@pytest.mark.parametrize("line", jars.LINES)
def test_job_cluster_is_classic_compute_dedicated_to_the_run_as_identity_on_the_lines_runtime(line, target_mode):
    spark_line = jars.line(line)
    _, job = nightly(target_for(line, target_mode))
    (cluster,) = job["job_clusters"]
    spec = cluster["new_cluster"]
    runs_as = job.get("run_as", {"user_name": DEVELOPER.user_name})
    assert spec["data_security_mode"] == "SINGLE_USER"
    assert spec["single_user_name"] in runs_as.values()
    assert spec["spark_version"] == spark_line.databricks_runtime
    # The runtime ships the line's Spark, on the Scala its Delta jar is built for.
    runtime = re.fullmatch(r"(\d+)(?:\.\d+)?\.x-scala(\d+\.\d+)", spec["spark_version"])
    assert runtime, spec["spark_version"]
    assert (DBR_SPARK[runtime.group(1)], runtime.group(2)) == (spark_line.name, scala_of(spark_line.delta_package))
    assert spec["spark_env_vars"] == {"SPARK_VERSION": spark_line.name}
    (task,) = job["tasks"]
    assert task["job_cluster_key"] == cluster["job_cluster_key"]
    assert "environment_key" not in task and "environments" not in job  # not serverless


@pytest.mark.parametrize("target", TARGETS)
def test_task_runs_the_console_script_with_the_synced_databricks_config(target):
    identity, folder = (PRINCIPAL, "prod") if mode(target) == "production" else (DEVELOPER, target)
    _, job = nightly(target)
    (task,) = job["tasks"]
    wheel_task = task["python_wheel_task"]
    script = PROJECT["scripts"][wheel_task["entry_point"]]
    assert script.split(".")[0] == wheel_task["package_name"]
    assert canonicalize_name(wheel_task["package_name"]) == canonicalize_name(PROJECT["name"])
    assert wheel_task["parameters"] == [
        "--config",
        f"/Workspace/Users/{identity.user_name}/.bundle/growth_revenue/{folder}/files/conf/databricks.yaml",
    ]
    # The bundle syncs every file git does not ignore.
    ignored = subprocess.run(["git", "check-ignore", "-q", "conf/databricks.yaml"], cwd=ROOT)
    assert (ROOT / "conf" / "databricks.yaml").is_file() and ignored.returncode == 1


@pytest.mark.parametrize("target_mode", MODES)
@pytest.mark.parametrize("line", jars.LINES)
def test_task_libraries_are_the_bundle_wheel_and_the_lines_deequ_jar_of_jars_py(line, target_mode):
    config, job = nightly(target_for(line, target_mode))
    artifact = config["artifacts"][WHEEL_ARTIFACT]
    (task,) = job["tasks"]
    wheel, deequ = task["libraries"]
    assert artifact["type"] == "whl"
    assert wheel == {"whl": os.path.normpath(os.path.join(artifact["path"], "dist", "*.whl"))}
    assert deequ == {
        "maven": {"coordinates": jars.line(line).deequ_package, "exclusions": list(jars.EXCLUDED_PACKAGES)}
    }
    # The wheel is built with the venv set up for the line (make venv SPARK_LINE=<line>).
    assert artifact["build"] == f".venv-{line}/bin/python -m build --wheel"


def test_databricks_config_loads_and_names_unity_catalog_tables():
    config = load_config(ROOT / "conf" / "databricks.yaml")
    for table in (config.tables.raw_orders, config.tables.raw_customers):
        location = Location.parse(table)
        assert location.path is None and location.name.count(".") == 2, table  # catalog.schema.table
    output = Location.parse(config.tables.output_schema)
    assert output.path is None and output.name.count(".") == 1  # catalog.schema
    assert config.quality.engine == "deequ"  # the cluster carries the jar
    assert config.incremental.adaptive_execution  # turned off only where it was measured: local mode


# --- the session on a cluster -----------------------------------------------------------------


def test_on_databricks_get_spark_reuses_the_running_session_without_packages_or_master(
    spark, config, monkeypatch, tmp_path
):
    # An Ivy cache where set-up recorded Deequ as resolved: a local session would load it, a cluster's must not.
    ivy = jars.ivy_dir(tmp_path / "ivy", jars.installed_line())
    ivy.mkdir(parents=True)
    (ivy / jars.RECORD).write_text(json.dumps({"deequ_resolved": True}))
    settings = dataclasses.replace(
        config.spark,
        app_name="not_this_name",
        master="spark://not-this-master:7077",
        ivy_dir=str(tmp_path / "ivy"),
        shuffle_partitions=3,
    )
    launcher_owned = ["spark.master", "spark.app.name", "spark.jars.packages", "spark.jars.ivy", "spark.jars.excludes"]
    runtime = [*base_conf(settings), "spark.sql.session.timeZone"]
    before = {key: spark.conf.get(key, None) for key in launcher_owned + runtime}
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "18.x")
    try:
        assert get_spark(settings) is spark
        assert {key: spark.conf.get(key, None) for key in launcher_owned} == {
            key: before[key] for key in launcher_owned
        }
        # The settings a cluster does not carry are still put on its session.
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
        assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    finally:
        for key in runtime:  # the shared session goes back to how the other tests expect it
            if before[key] is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, before[key])


def test_on_databricks_stop_spark_leaves_the_platform_session_running(monkeypatch):
    class Gateway:
        callback_server_running = True

        def shutdown_callback_server(self):
            self.callback_server_running = False

    class PlatformSession:
        stopped = False

        def __init__(self):
            self.sparkContext = SimpleNamespace(_gateway=Gateway())

        def stop(self):
            self.stopped = True

    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "18.x")
    session = PlatformSession()
    stop_spark(session)
    assert not session.stopped
    assert not session.sparkContext._gateway.callback_server_running  # pydeequ's callback server still goes


# --- the wheel (slow: builds it, installs it, runs it) -----------------------------------------

# What a python_wheel_task does on the cluster (the CLI's own wrapper for it, bundle/python/transform.go):
# find the entry point in the distribution's metadata, call it with the task's parameters as sys.argv,
# and ignore what it returns.
RUN_WHEEL_TASK = """
import sys
from importlib import metadata
package_name, entry_point, *parameters = sys.argv[1:]
sys.argv = ["python", *parameters]
(entry,) = [ep for ep in metadata.distribution(package_name).entry_points if ep.name == entry_point]
function = entry.load()
print("loaded from", sys.modules[function.__module__].__file__, file=sys.stderr, flush=True)
function()
"""


@pytest.fixture(scope="module")
def bundle_build(tmp_path_factory):
    """The bundle's artifact build command, run as the CLI runs it, in a copy of the project."""
    config = resolve("dev", DEVELOPER)
    artifact = config["artifacts"][WHEEL_ARTIFACT]
    project = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "pyproject.toml", project)
    shutil.copy(ROOT / "README.md", project)
    shutil.copytree(ROOT / "lib", project / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = f".venv-{config['variables']['spark_line']['value']['name']}"
    (project / venv).symlink_to(ROOT / venv)
    done = subprocess.run(
        ["bash", "-c", artifact["build"]], cwd=project / artifact["path"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return config, project


@pytest.fixture(scope="module")
def wheel(bundle_build):
    _, project = bundle_build
    (path,) = project.glob("dist/*.whl")
    return path


@pytest.fixture(scope="module")
def site(wheel, tmp_path_factory):
    """The wheel alone, installed into an empty directory."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
    )
    return target


def run_wheel_task(site, *parameters):
    (task,) = job_settings(resolve("prod", PRINCIPAL), JOB)["tasks"]
    wheel_task = task["python_wheel_task"]
    env = {key: value for key, value in os.environ.items() if key != "DATABRICKS_RUNTIME_VERSION"}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-c", RUN_WHEEL_TASK, wheel_task["package_name"], wheel_task["entry_point"], *parameters],
        cwd=site.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def wheel_file(wheel, name):
    dist_info = f"{canonicalize_name(PROJECT['name']).replace('-', '_')}-{PROJECT['version']}.dist-info"
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(f"{dist_info}/{name}").decode()


@pytest.mark.slow
def test_bundle_artifact_builds_the_one_wheel_the_task_attaches(bundle_build):
    config, project = bundle_build
    (task,) = job_settings(config, JOB)["tasks"]
    attached = sorted(path.name for path in project.glob(task["libraries"][0]["whl"]))
    assert attached == [f"growth_revenue-{PROJECT['version']}-py3-none-any.whl"]


@pytest.mark.slow
def test_wheel_entry_point_named_by_the_task_prints_usage_from_the_installed_wheel(wheel, site):
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel_file(wheel, "entry_points.txt"))
    assert dict(entry_points["console_scripts"]) == PROJECT["scripts"]

    done = run_wheel_task(site, "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("usage: growth-revenue")
    assert f"loaded from {site}{os.sep}growth_revenue{os.sep}cli.py" in done.stderr


@pytest.mark.slow
def test_wheel_entry_point_fails_the_task_when_the_job_exits_non_zero(site, tmp_path):
    done = run_wheel_task(site, "--config", str(tmp_path / "missing.yaml"))
    assert "cannot read it" in done.stderr
    # A wheel task fails only on an exception: a returned exit code 2 would show the run as succeeded.
    assert done.returncode == 2, "the entry point returned its exit code instead of raising SystemExit"


@pytest.mark.slow
def test_wheel_installs_on_the_runtime_python_and_leaves_its_pyspark_alone(wheel):
    metadata = Parser().parsestr(wheel_file(wheel, "METADATA"))
    for spark_line in jars.LINES.values():
        python = DBR_PYTHON[spark_line.databricks_runtime.split(".")[0]]
        assert python in SpecifierSet(metadata["Requires-Python"]), (spark_line.name, metadata["Requires-Python"])
    requirements = [Requirement(text) for text in metadata.get_all("Requires-Dist") or []]
    always = {canonicalize_name(requirement.name) for requirement in requirements if requirement.marker is None}
    # The runtime ships Spark and Delta; a wheel that pulls them from PyPI replaces the runtime's own.
    assert not always & {"pyspark", "delta-spark"}, sorted(always)
    # pydantic (the config's types) is kept at the runtime's own version, not upgraded under it.
    (pydantic,) = (requirement for requirement in requirements if canonicalize_name(requirement.name) == "pydantic")
    for spark_line in jars.LINES.values():
        shipped = DBR_PYDANTIC[spark_line.databricks_runtime.split(".")[0]]
        assert pydantic.specifier.contains(shipped), (spark_line.databricks_runtime, str(pydantic.specifier))
