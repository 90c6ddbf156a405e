"""Configuration: packaged defaults (defaults.yaml) overlaid by one environment file.

Every key is typed; an unknown key or a value of the wrong type is rejected with its
dotted name, so a typo in a nightly config fails loudly instead of silently using a default.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml


class ConfigError(ValueError):
    """The configuration file is unreadable, has an unknown key or a value of the wrong type."""


@dataclass(frozen=True)
class Rules:
    revenue_statuses: tuple[str, ...]
    test_email_domains: tuple[str, ...]
    unknown_segment: str
    reporting_timezone: str
    report_window_days: int
    earliest_order_date: dt.date
    max_future_skew_hours: float


@dataclass(frozen=True)
class Quality:
    freshness_max_age_hours: float
    engine: str
    anomaly_max_relative_change: float
    metrics_repository: str | None
    quarantine_max_share: float


@dataclass(frozen=True)
class Publish:
    conflict_retries: int
    conflict_backoff_seconds: float


@dataclass(frozen=True)
class Incremental:
    lookback_hours: float
    deletion_vectors: bool


@dataclass(frozen=True)
class Observability:
    stage_metrics_dir: str | None


@dataclass(frozen=True)
class Tables:
    raw_orders: str
    raw_customers: str
    output_dir: str
    output_schema: str | None


@dataclass(frozen=True)
class SparkSettings:
    app_name: str
    master: str
    driver_memory: str
    shuffle_partitions: int
    broadcast_threshold_mb: int
    ivy_dir: str
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    rules: Rules
    quality: Quality
    publish: Publish
    incremental: Incremental
    tables: Tables
    spark: SparkSettings
    observability: Observability


QUALITY_ENGINES = ("auto", "deequ", "spark")


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the environment file at `path`, then `overrides` ({"tables.raw_orders": ...})."""
    merged = _read_yaml(resources.files("growth_revenue").joinpath("defaults.yaml").read_text(), "defaults.yaml")
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"config file {path}: cannot read it ({exc.strerror})") from exc
        _merge(merged, _read_yaml(text, str(path)), prefix="", source=str(path))
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        _merge(merged, {section: {key: value}}, prefix="", source="command line")
    config = _build(Config, merged, prefix="")
    _validate(config)
    return config


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


def _merge(base: dict[str, Any], extra: dict[str, Any], prefix: str, source: str) -> None:
    for key, value in extra.items():
        name = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"config {source}: unknown key '{name}'")
        if isinstance(base[key], dict) and name != "spark.conf":
            if not isinstance(value, dict):
                raise ConfigError(f"config {source}: '{name}' must be a mapping")
            _merge(base[key], value, prefix=f"{name}.", source=source)
        else:
            base[key] = value


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        values[f.name] = _coerce(hints[f.name], data.get(f.name), name)
    return cls(**values)


def _coerce(kind: Any, value: Any, name: str) -> Any:
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _build(kind, value or {}, prefix=f"{name}.")
    origin, args = get_origin(kind), get_args(kind)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"config: '{name}' must be a list of strings, got {value!r}")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config: '{name}' must be a mapping, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    if args and type(None) in args:  # Optional[X]
        return None if value is None else _coerce(args[0], value, name)
    if kind is dt.date:  # YAML reads 2000-01-01 as a date; the command line gives text
        with contextlib.suppress(ValueError):  # not a date: the check below says so
            value = dt.date.fromisoformat(value) if isinstance(value, str) else value
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise ConfigError(f"config: '{name}' must be a date (YYYY-MM-DD), got {value!r}")
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"config: '{name}' must be {kind.__name__}, got {value!r}")
    return value


def _validate(config: Config) -> None:
    rules, quality = config.rules, config.quality
    if not rules.revenue_statuses:
        raise ConfigError("config: 'rules.revenue_statuses' must name at least one status")
    if rules.report_window_days < 1:
        raise ConfigError("config: 'rules.report_window_days' must be at least 1")
    try:
        ZoneInfo(rules.reporting_timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"config: 'rules.reporting_timezone' is not an IANA time zone: {rules.reporting_timezone!r}"
        ) from exc
    if rules.max_future_skew_hours < 0:
        raise ConfigError("config: 'rules.max_future_skew_hours' must not be negative")
    if quality.freshness_max_age_hours <= 0:
        raise ConfigError("config: 'quality.freshness_max_age_hours' must be positive")
    if quality.anomaly_max_relative_change <= 0:
        raise ConfigError("config: 'quality.anomaly_max_relative_change' must be positive")
    if not 0 <= quality.quarantine_max_share <= 1:
        raise ConfigError("config: 'quality.quarantine_max_share' must be between 0 and 1")
    if config.publish.conflict_retries < 0 or config.publish.conflict_backoff_seconds < 0:
        raise ConfigError(
            "config: 'publish.conflict_retries' and 'publish.conflict_backoff_seconds' must not be negative"
        )
    if config.incremental.lookback_hours < 0:
        raise ConfigError("config: 'incremental.lookback_hours' must not be negative")
    if quality.engine not in QUALITY_ENGINES:
        raise ConfigError(f"config: 'quality.engine' must be one of {', '.join(QUALITY_ENGINES)}")
