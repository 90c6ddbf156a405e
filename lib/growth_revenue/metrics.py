"""Quality history: the metrics of every published run, in a file-system metrics repository.

The file is in Deequ's `FileSystemMetricsRepository` JSON format (a list of analysis results,
each a `resultKey` {dataSetDate, tags} and an `analyzerContext` {metricMap}, field names as in
Deequ's AnalysisResultSerde), so Deequ's own `FileSystemMetricsRepository` can load the history
this job writes, where the Deequ jar is available.
Results are keyed by the as-of date (midnight UTC, epoch milliseconds): a rerun of a date
replaces that date's entry, and a backfill slots in between its neighbours.

The file is read and written through Hadoop's FileSystem, so any path Spark can write (local,
s3a://, abfss://, dbfs:/, /Volumes/...) works.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

from pyspark.sql import SparkSession

from growth_revenue import tables


@dataclass(frozen=True)
class Metric:
    """One Deequ DoubleMetric and the analyzer that produced it."""

    analyzer: str  # Deequ analyzer name: Size, Sum, ...
    column: str | None  # None for dataset-level analyzers (Size)
    value: float


@dataclass(frozen=True)
class RunMetrics:
    """The metrics of one published run, keyed by its as-of date."""

    as_of: dt.date
    metrics: tuple[Metric, ...]

    def get(self, analyzer: str, column: str | None = None) -> Metric | None:
        return next((m for m in self.metrics if (m.analyzer, m.column) == (analyzer, column)), None)


# The metrics each published run keeps, as Deequ (analyzer, column): Size of mart_orders_enriched,
# and Sum(revenue) of the as-of snapshot of rpt_30day_revenue_by_segment.
MART_ROWS = ("Size", None)
REPORT_REVENUE = ("Sum", "revenue")


def published_metrics(as_of: dt.date, mart_rows: int, report_revenue: float) -> RunMetrics:
    """What the anomaly checks watch: mart row count and total 30-day revenue."""
    return RunMetrics(as_of, (Metric(*MART_ROWS, float(mart_rows)), Metric(*REPORT_REVENUE, float(report_revenue))))


# --- Deequ's JSON format -------------------------------------------------------------------


def _date_key(as_of: dt.date) -> int:
    return int(dt.datetime.combine(as_of, dt.time(0), dt.timezone.utc).timestamp() * 1000)


def _date_of(key: int) -> dt.date:
    return dt.datetime.fromtimestamp(key / 1000, dt.timezone.utc).date()


def to_deequ_json(runs: list[RunMetrics]) -> str:
    entries = []
    for run in sorted(runs, key=lambda r: r.as_of):
        metric_map = []
        for m in run.metrics:
            analyzer = {"analyzerName": m.analyzer, "where": None}
            if m.column is not None:
                analyzer["column"] = m.column
            metric_map.append({
                "analyzer": analyzer,
                "metric": {
                    "metricName": "DoubleMetric",
                    "entity": "Dataset" if m.column is None else "Column",
                    "instance": "*" if m.column is None else m.column,
                    "name": m.analyzer,
                    "value": m.value,
                },
            })
        entries.append({
            "resultKey": {"dataSetDate": _date_key(run.as_of), "tags": {"tables": f"{tables.MART},{tables.REPORT}"}},
            "analyzerContext": {"metricMap": metric_map},
        })
    return json.dumps(entries, indent=2)


def from_deequ_json(text: str, source: str) -> list[RunMetrics]:
    try:
        entries = json.loads(text)
        runs = []
        for entry in entries:
            metrics = []
            for pair in entry["analyzerContext"]["metricMap"]:
                analyzer, metric = pair["analyzer"], pair["metric"]
                if metric.get("metricName") == "DoubleMetric" and metric.get("value") is not None:
                    metrics.append(Metric(analyzer["analyzerName"], analyzer.get("column"), float(metric["value"])))
            runs.append(RunMetrics(_date_of(entry["resultKey"]["dataSetDate"]), tuple(metrics)))
        return runs
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"metrics repository {source}: not a Deequ metrics repository file ({exc!r})") from exc


# --- the repository ------------------------------------------------------------------------


class MetricsRepository:
    """A Deequ-compatible file-system metrics repository at `path` (a JSON file)."""

    def __init__(self, spark: SparkSession, path: str):
        self.path = path
        jvm = spark._jvm
        self._jvm = jvm
        self._file = jvm.org.apache.hadoop.fs.Path(path)
        self._fs = self._file.getFileSystem(spark._jsc.hadoopConfiguration())

    def load(self) -> list[RunMetrics]:
        if not self._fs.exists(self._file):
            return []
        stream = self._fs.open(self._file)
        try:
            text = self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()
        return from_deequ_json(text, self.path)

    def previous(self, as_of: dt.date) -> RunMetrics | None:
        """The newest run keyed before `as_of`: what a run (or a backfill) is compared with."""
        earlier = [run for run in self.load() if run.as_of < as_of]
        return max(earlier, key=lambda r: r.as_of) if earlier else None

    def save(self, run: RunMetrics) -> None:
        """Add `run`, replacing any entry for the same as-of date (a rerun), in one file swap."""
        runs = [r for r in self.load() if r.as_of != run.as_of] + [run]
        data = bytearray(to_deequ_json(runs).encode("utf-8"))
        # Write beside the file, then swap it in: a crash mid-write leaves the old history intact.
        staging = self._jvm.org.apache.hadoop.fs.Path(f"{self.path}.{uuid.uuid4().hex}.tmp")
        out = self._fs.create(staging, True)
        try:
            out.write(data)
        finally:
            out.close()
        if self._fs.exists(self._file):
            self._fs.delete(self._file, False)
        if not self._fs.rename(staging, self._file):
            raise OSError(f"metrics repository {self.path}: could not move {staging} into place")
