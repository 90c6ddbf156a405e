"""What launchers share: settings importable without pyspark, and the zip shipped to executors."""

import subprocess
import sys
import zipfile

from growth_revenue import jars, launch, package


def test_launch_settings_import_without_pyspark_so_an_airflow_dag_can_use_them():
    probe = ("import sys, growth_revenue.launch, growth_revenue.package; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'pydeequ', 'py4j')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_submit_settings_carry_the_delta_package_and_session_extension():
    settings = launch.submit_settings(None)
    assert settings.packages == (jars.DELTA_PACKAGE,)
    assert settings.conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert settings.conf["spark.sql.session.timeZone"] == "UTC"
    options = settings.options()
    assert options[options.index("--packages") + 1] == jars.DELTA_PACKAGE


def test_the_shipped_zip_holds_the_package_and_its_defaults(tmp_path):
    out = package.build_zip(tmp_path / "job.zip")
    names = set(zipfile.ZipFile(out).namelist())
    assert {"growth_revenue/__init__.py", "growth_revenue/pipeline.py", "growth_revenue/defaults.yaml"} <= names
    assert not any("__pycache__" in name for name in names)
