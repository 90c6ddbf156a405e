"""Configuration: packaged defaults (defaults.yaml) overlaid by one environment file.

The sections are pydantic dataclasses: every key is typed and checked (strict types, ranges, a
real time zone), and an unknown key or a wrong value is rejected by its dotted name, so a typo in
a nightly config fails loudly instead of silently using a default. pydantic 2 ships with the
Databricks runtimes the job targets (16.4 LTS: 2.8; 18.x: 2.10) and with Airflow 3, so it adds
nothing to a cluster or to the Airflow venv. Only the layering (defaults, then the environment
file) is written here: pydantic-settings would do it, but it is on none of those.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError, field_validator
from pydantic.dataclasses import dataclass


class ConfigError(ValueError):
    """The configuration file is unreadable, has an unknown key or a value of the wrong type."""


_SECTION = ConfigDict(extra="forbid")


def _iso_date(value: Any) -> Any:
    """YAML reads 2000-01-01 as a date; a quoted one is text in the same form."""
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return value  # not a date: the strict check says so
    return value


def _text_values(value: Any) -> Any:
    """Spark settings are text; YAML reads `false` or `200` as a bool or an int."""
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value


# Strict scalars: "3" is not an int, true is not 1, 1 is not text. An int is a float.
Text = Annotated[str, Strict()]
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Flag = Annotated[bool, Strict()]
# A YAML list of text, kept as an (immutable) tuple.
Names = tuple[Text, ...]
QualityEngine = Literal["auto", "deequ", "spark"]


@dataclass(frozen=True, config=_SECTION)
class Rules:
    revenue_statuses: Annotated[Names, Field(min_length=1)]
    test_email_domains: Names
    unknown_segment: Text
    reporting_timezone: Text
    report_window_days: Annotated[Int, Field(ge=1)]
    earliest_order_date: Annotated[dt.date, Strict(), BeforeValidator(_iso_date)]
    max_future_skew_hours: Annotated[Float, Field(ge=0)]

    @field_validator("reporting_timezone")
    @classmethod
    def _iana_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("is not an IANA time zone") from exc
        return name


@dataclass(frozen=True, config=_SECTION)
class Quality:
    freshness_max_age_hours: Annotated[Float, Field(gt=0)]
    engine: QualityEngine
    anomaly_max_relative_change: Annotated[Float, Field(gt=0)]
    metrics_repository: Text | None
    quarantine_max_share: Annotated[Float, Field(ge=0, le=1)]


@dataclass(frozen=True, config=_SECTION)
class Publish:
    conflict_retries: Annotated[Int, Field(ge=0)]
    conflict_backoff_seconds: Annotated[Float, Field(ge=0)]


@dataclass(frozen=True, config=_SECTION)
class Incremental:
    lookback_hours: Annotated[Float, Field(ge=0)]
    deletion_vectors: Flag
    mart_days_per_file: Annotated[Int, Field(ge=1)]
    mart_resort_share: Annotated[Float, Field(gt=0, le=1)]
    mart_resort_min_mb: Annotated[Float, Field(ge=0)]
    adaptive_execution: Flag


@dataclass(frozen=True, config=_SECTION)
class Observability:
    stage_metrics_dir: Text | None


@dataclass(frozen=True, config=_SECTION)
class Tables:
    raw_orders: Text
    raw_customers: Text
    output_dir: Text
    output_schema: Text | None


@dataclass(frozen=True, config=_SECTION)
class SparkSettings:
    app_name: Text
    master: Text
    driver_memory: Text
    shuffle_partitions: Annotated[Int, Field(ge=1)]
    broadcast_threshold_mb: Int
    ivy_dir: Text
    conf: Annotated[dict[str, str], BeforeValidator(_text_values)] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, config=_SECTION)
class Config:
    rules: Rules
    quality: Quality
    publish: Publish
    incremental: Incremental
    tables: Tables
    spark: SparkSettings
    observability: Observability


def load_config(path: str | Path | None = None) -> Config:
    """The packaged defaults, overlaid key by key by the environment file at `path`."""
    merged = _read_yaml(resources.files("growth_revenue").joinpath("defaults.yaml").read_text(), "defaults.yaml")
    source = "defaults.yaml"
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"config file {path}: cannot read it ({exc.strerror})") from exc
        source = str(path)
        merged = _overlay(merged, _read_yaml(text, source))
    try:
        return TypeAdapter(Config).validate_python(merged)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(error, source) for error in exc.errors())) from exc


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {source}: not valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {source}: expected a mapping of sections at the top level")
    return data


def _overlay(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra`'s keys replacing its own, mappings merged key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(merged.get(key), dict) and value is None:
            continue  # a section left with every key commented out
        both_mappings = isinstance(merged.get(key), dict) and isinstance(value, dict)
        merged[key] = _overlay(merged[key], value) if both_mappings else value
    return merged


# pydantic's wording where a YAML user would not recognise it.
_PLAIN = {"tuple_type": "must be a list of strings", "dataclass_type": "must be a mapping of keys"}


def _describe(error: Any, source: str) -> str:
    """One pydantic error as a line naming the key by its dotted path."""
    name = ".".join(str(part) for part in error["loc"])
    if error["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        return f"config {source}: unknown key '{name}'"
    message = _PLAIN.get(error["type"]) or str(error["msg"]).removeprefix("Value error, ").removeprefix("Input ")
    return f"config {source}: '{name}' {message}, got {error['input']!r}"
