"""What launchers share: settings importable without pyspark, and the zip shipped to executors."""

import subprocess
import sys
import zipfile

from growth_revenue import jars, launch, package


def test_launch_settings_import_without_pyspark_so_an_airflow_dag_can_use_them():
    probe = (
        "import sys, growth_revenue.launch, growth_revenue.package; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'pydeequ', 'py4j')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_submit_settings_carry_the_lines_packages_and_session_extension():
    line = jars.installed_line()
    settings = launch.submit_settings(None)
    expected = (line.delta_package, *([line.deequ_package] if jars.deequ_resolved(".ivy", line) else []))
    assert settings.packages == expected
    assert settings.conf["spark.jars.ivy"].endswith(f"/.ivy/{line.name}")
    assert settings.conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert settings.conf["spark.sql.session.timeZone"] == "UTC"
    options = settings.options()
    assert options[options.index("--packages") + 1] == ",".join(expected)


def test_a_line_loads_deequ_only_when_set_up_recorded_it_as_resolved(tmp_path):
    line = jars.line("3.5")
    assert launch.submit_settings(None, tmp_path, line).packages == (line.delta_package,)  # no record
    (tmp_path / ".ivy" / "3.5").mkdir(parents=True)
    (tmp_path / ".ivy" / "3.5" / jars.RECORD).write_text('{"deequ_resolved": true}')
    assert launch.submit_settings(None, tmp_path, line).packages == (line.delta_package, line.deequ_package)


def test_settings_whose_defaults_differ_between_the_lines_are_pinned_at_every_launch():
    conf = launch.submit_settings(None).conf
    assert conf["spark.sql.ansi.enabled"] == "false"
    assert launch.SAME_ON_EVERY_LINE.items() <= conf.items()


def test_the_running_session_has_the_pinned_settings(spark):
    for key, value in launch.SAME_ON_EVERY_LINE.items():
        assert spark.conf.get(key) == value, key


def test_the_shipped_zip_holds_the_package_and_its_defaults(tmp_path):
    out = package.build_zip(tmp_path / "job.zip")
    names = set(zipfile.ZipFile(out).namelist())
    assert {"growth_revenue/__init__.py", "growth_revenue/pipeline.py", "growth_revenue/defaults.yaml"} <= names
    assert not any("__pycache__" in name for name in names)
