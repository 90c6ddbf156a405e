"""Command-line parsing and usage errors (no Spark needed)."""

import datetime as dt

import pytest

from growth_revenue import cli

RUN = dt.datetime(2026, 11, 25, 7, 0, tzinfo=dt.timezone.utc)


def test_as_of_defaults_to_the_run_date_in_the_reporting_timezone():
    assert cli.parse_as_of(None, RUN, "UTC") == dt.date(2026, 11, 25)
    assert cli.parse_as_of(None, RUN, "America/Los_Angeles") == dt.date(2026, 11, 24)


def test_as_of_in_the_future_is_a_usage_error():
    with pytest.raises(cli.UsageError, match="after the run date"):
        cli.parse_as_of("2026-11-26", RUN, "UTC")


def test_malformed_as_of_is_a_usage_error():
    with pytest.raises(cli.UsageError, match="not a date"):
        cli.parse_as_of("25/11/2026", RUN, "UTC")


def test_run_timestamp_without_offset_is_utc():
    assert cli.parse_run_timestamp("2026-11-25T07:00:00") == RUN
    assert cli.parse_run_timestamp("2026-11-25T08:00:00+01:00") == RUN


def test_malformed_run_timestamp_is_a_usage_error():
    with pytest.raises(cli.UsageError, match="ISO-8601"):
        cli.parse_run_timestamp("yesterday")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--as-of", "2999-01-01"], "after the run date"),
        (["--as-of", "tomorrow"], "not a date"),
        (["--raw-orders", "bad name!"], "not a table path"),
        (["--config", "does/not/exist.yaml"], "cannot read"),
    ],
)
def test_main_exits_2_on_usage_errors_and_says_why(argv, fragment, capsys):
    assert cli.main(argv) == 2
    assert fragment in capsys.readouterr().err


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "Exit codes" in capsys.readouterr().out
