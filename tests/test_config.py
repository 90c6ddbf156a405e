"""Config: packaged defaults, environment overlays, and loud rejection of typos and wrong types."""

import datetime as dt
import re
from importlib import metadata

import pytest

from growth_revenue import jars
from growth_revenue.config import ConfigError, load_config


def write(tmp_path, text):
    path = tmp_path / "env.yaml"
    path.write_text(text)
    return path


def test_defaults_hold_the_documented_rule_values():
    rules = load_config().rules
    assert rules.revenue_statuses == ("completed", "fulfilled")
    assert rules.test_email_domains == ("example.com", "test.example")
    assert rules.reporting_timezone == "UTC"
    assert rules.report_window_days == 30
    assert load_config().quality.freshness_max_age_hours == 24.0


def test_environment_file_overrides_only_the_keys_it_names(tmp_path):
    config = load_config(write(tmp_path, "rules:\n  reporting_timezone: Europe/Berlin\n"))
    assert config.rules.reporting_timezone == "Europe/Berlin"
    assert config.rules.revenue_statuses == ("completed", "fulfilled")


def test_unknown_key_is_rejected_by_its_dotted_name(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'rules\.revenue_status'"):
        load_config(write(tmp_path, "rules:\n  revenue_status: [completed]\n"))


def test_wrong_type_is_rejected_by_its_dotted_name(tmp_path):
    with pytest.raises(ConfigError, match=r"'quality\.freshness_max_age_hours' should be a valid number, got 'soon'"):
        load_config(write(tmp_path, "quality:\n  freshness_max_age_hours: soon\n"))
    with pytest.raises(ConfigError, match=r"'rules\.revenue_statuses' must be a list of strings"):
        load_config(write(tmp_path, "rules:\n  revenue_statuses: completed\n"))


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("rules:\n  report_window_days: '30'\n", "rules.report_window_days"),  # text is not a number
        ("rules:\n  report_window_days: true\n", "rules.report_window_days"),  # nor is a flag
        ("rules:\n  report_window_days: 0\n", "rules.report_window_days"),
        ("rules:\n  revenue_statuses: []\n", "rules.revenue_statuses"),
        ("rules:\n  test_email_domains: [example.com, 7]\n", "rules.test_email_domains.1"),
        ("rules:\n  earliest_order_date: 2000-01-01 10:00:00\n", "rules.earliest_order_date"),
        ("rules:\n  max_future_skew_hours: -1\n", "rules.max_future_skew_hours"),
        ("quality:\n  engine: fast\n", "quality.engine"),
        ("quality:\n  quarantine_max_share: 1.5\n", "quality.quarantine_max_share"),
        ("quality:\n  anomaly_max_relative_change: 0\n", "quality.anomaly_max_relative_change"),
        ("publish:\n  conflict_retries: -1\n", "publish.conflict_retries"),
        ("incremental:\n  deletion_vectors: yes please\n", "incremental.deletion_vectors"),
        ("tables:\n  output_schema: 3\n", "tables.output_schema"),
        ("spark: local\n", "spark"),
    ],
)
def test_a_value_out_of_its_type_or_range_is_rejected_by_its_dotted_name(tmp_path, text, named):
    with pytest.raises(ConfigError, match=f"'{re.escape(named)}' "):
        load_config(write(tmp_path, text))


def test_every_bad_key_is_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, "rules:\n  report_window_days: 0\nquality:\n  engine: fast\n"))
    assert str(raised.value).count("\n") == 1, str(raised.value)


def test_values_yaml_reads_as_other_types_are_taken_as_meant(tmp_path):
    config = load_config(
        write(
            tmp_path,
            "rules:\n  earliest_order_date: '2001-02-03'\n"
            "quality:\n  freshness_max_age_hours: 6\n"
            "spark:\n  conf: {spark.sql.ansi.enabled: false, spark.sql.shuffle.partitions: 4}\n",
        )
    )
    assert config.rules.earliest_order_date == dt.date(2001, 2, 3)
    assert config.quality.freshness_max_age_hours == 6.0
    assert config.spark.conf == {"spark.sql.ansi.enabled": "False", "spark.sql.shuffle.partitions": "4"}


def test_a_section_with_every_key_commented_out_keeps_its_defaults(tmp_path):
    assert load_config(write(tmp_path, "rules:\n  # report_window_days: 7\n")).rules.report_window_days == 30


def test_unknown_time_zone_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="reporting_timezone"):
        load_config(write(tmp_path, "rules:\n  reporting_timezone: Mars/Olympus\n"))


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_environment_configs_load():
    load_config("conf/local.yaml")


def test_the_venv_holds_its_lines_pins_and_the_delta_jar_matches_the_delta_spark_wheel():
    line = jars.installed_line()
    assert {f"{name}=={metadata.version(name)}" for name in ("pyspark", "delta-spark")} <= set(line.requirements)
    assert line.delta_package.endswith(":" + metadata.version("delta-spark"))
    assert metadata.version("pyspark").startswith(line.name + ".")


@pytest.mark.parametrize("line", jars.LINES.values(), ids=list(jars.LINES))
def test_each_line_names_one_scala_build_for_delta_and_deequ(line):
    scala = "2.12" if line.name.startswith("3.") else "2.13"
    assert f"_{scala}:" in line.delta_package and line.databricks_runtime.endswith(f"-scala{scala}")
    assert line.deequ_package.endswith(f"-spark-{line.name}")


def test_the_default_line_is_3_5_where_deequ_is_served():
    assert jars.DEFAULT_LINE == "3.5" and jars.line("3.5").deequ_package == "com.amazon.deequ:deequ:2.1.0-spark-3.5"
