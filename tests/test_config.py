"""Config: packaged defaults, environment overlays, and loud rejection of typos and wrong types."""

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
    with pytest.raises(ConfigError, match=r"'quality\.freshness_max_age_hours' must be float"):
        load_config(write(tmp_path, "quality:\n  freshness_max_age_hours: soon\n"))
    with pytest.raises(ConfigError, match=r"'rules\.revenue_statuses' must be a list of strings"):
        load_config(write(tmp_path, "rules:\n  revenue_statuses: completed\n"))


def test_unknown_time_zone_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="reporting_timezone"):
        load_config(write(tmp_path, "rules:\n  reporting_timezone: Mars/Olympus\n"))


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_environment_configs_load():
    load_config("conf/local.yaml")


def test_delta_jar_matches_the_installed_delta_spark_wheel():
    assert jars.DELTA_PACKAGE.endswith(":" + metadata.version("delta-spark"))
    assert metadata.version("pyspark").startswith(jars.SPARK_MINOR + ".")
