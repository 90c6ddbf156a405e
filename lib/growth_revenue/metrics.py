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
import logging
import re
import time
import uuid
from dataclasses import dataclass

from pyspark.sql import SparkSession

from growth_revenue import sparkutil, tables

log = logging.getLogger("growth_revenue")

_LEGACY_NULL_WHERE = re.compile(r'"where"\s*:\s*null')


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

# The tags of every entry: Deequ keys an entry by (date, tags), so a rerun's key equals the first run's.
RESULT_TAGS = {"tables": f"{tables.MART},{tables.REPORT}"}


def published_metrics(as_of: dt.date, mart_rows: int, report_revenue: float) -> RunMetrics:
    """What the anomaly checks watch: mart row count and total 30-day revenue."""
    return RunMetrics(as_of, (Metric(*MART_ROWS, float(mart_rows)), Metric(*REPORT_REVENUE, float(report_revenue))))


# --- Deequ's JSON format -------------------------------------------------------------------


def date_key(as_of: dt.date) -> int:
    """Deequ's dataSetDate for an as-of date: midnight UTC, epoch milliseconds."""
    return int(dt.datetime.combine(as_of, dt.time(0), dt.timezone.utc).timestamp() * 1000)


def _date_of(key: int) -> dt.date:
    return dt.datetime.fromtimestamp(key / 1000, dt.timezone.utc).date()


def to_deequ_json(runs: list[RunMetrics]) -> str:
    entries = []
    for run in sorted(runs, key=lambda r: r.as_of):
        metric_map = []
        for m in run.metrics:
            # No "where" key for an unfiltered analyzer: Deequ's serializer omits it, and its
            # deserializer rejects a null one (UnsupportedOperationException: JsonNull).
            analyzer = {"analyzerName": m.analyzer}
            if m.column is not None:
                analyzer["column"] = m.column
            metric_map.append(
                {
                    "analyzer": analyzer,
                    "metric": {
                        "metricName": "DoubleMetric",
                        "entity": "Dataset" if m.column is None else "Column",
                        "instance": "*" if m.column is None else m.column,
                        "name": m.analyzer,
                        "value": m.value,
                    },
                }
            )
        entries.append(
            {
                "resultKey": {"dataSetDate": date_key(run.as_of), "tags": dict(RESULT_TAGS)},
                "analyzerContext": {"metricMap": metric_map},
            }
        )
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
    """A Deequ-compatible file-system metrics repository at `path` (a JSON file).

    `save` writes the new content to a staging file beside it (`<path>.<32 hex>.tmp`), deletes
    the old file and renames the staging file into place (deleting first because a Hadoop rename
    onto an existing file fails on HDFS and object stores). A crash between the delete and the
    rename leaves no file but a complete staging file: `load` then recovers from the newest staging
    file that parses and moves it into place. A staging file cut short by a crash mid-write does
    not parse and is ignored; a later `save` removes the leftovers once they are stale.

    One writer at a time is assumed: two runs saving at the same moment (an overlapping retry)
    keep a complete file, but one of their two updates can be lost.
    """

    _SAVE_ATTEMPTS = 3
    # A staging file younger than this may be another run's save in progress: it is left alone.
    _STALE_AFTER_SECONDS = 60

    def __init__(self, spark: SparkSession, path: str, deequ: bool = False):
        """`deequ`: new entries are written by Deequ's own FileSystemMetricsRepository (into the
        staging file, which this class then swaps into place); else by `to_deequ_json`."""
        self.path = path
        self._spark, self._deequ = spark, deequ
        jvm = sparkutil.jvm(spark)
        self._jvm = jvm
        self._file = jvm.org.apache.hadoop.fs.Path(path)
        self._fs = self._file.getFileSystem(spark._jsc.hadoopConfiguration())
        self._staging_name = re.compile(rf"{re.escape(self._file.getName())}\.[0-9a-f]{{32}}\.tmp")

    def load(self) -> list[RunMetrics]:
        text = self._read(self._file)
        if text is None:
            text = self._recover()
        return [] if text is None else from_deequ_json(text, self.path)

    def previous(self, as_of: dt.date) -> RunMetrics | None:
        """The newest run keyed before `as_of`: what a run (or a backfill) is compared with."""
        earlier = [run for run in self.load() if run.as_of < as_of]
        return max(earlier, key=lambda r: r.as_of) if earlier else None

    def save(self, run: RunMetrics) -> None:
        """Add `run`, replacing any entry for the same as-of date (a rerun), in one file swap."""
        self._swap_in(run)

    def make_readable_by_deequ(self) -> None:
        """Rewrite, in one file swap, a file from an earlier release: it has a null "where" in every
        analyzer, which Deequ's own reader rejects (UnsupportedOperationException: JsonNull)."""
        text = self._read(self._file)
        if text is not None and _LEGACY_NULL_WHERE.search(text):
            self._swap_in(None)
            log.info("metrics repository %s rewritten in the format Deequ's reader accepts", self.path)

    def _swap_in(self, run: RunMetrics | None) -> None:
        for _ in range(self._SAVE_ATTEMPTS):
            others = [r for r in self.load() if run is None or r.as_of != run.as_of]
            if self._deequ and run is not None:
                # Deequ's own repository adds the entry to the others (written as Deequ reads them).
                staging = self._write_staging(to_deequ_json(others), run)
            else:
                staging = self._write_staging(to_deequ_json(others + ([run] if run else [])))
            if self._fs.exists(self._file):
                self._fs.delete(self._file, False)
            if self._fs.rename(staging, self._file):
                self._remove_stale_staging_files()
                return
            # Our staging file is gone: another run's `load` found no file (between our delete and
            # this rename) and moved it into place. Start again from whatever is in place now.
            log.warning("metrics repository %s: could not move %s into place; saving again", self.path, staging)
        raise OSError(
            f"metrics repository {self.path}: could not move a staging file into place "
            f"in {self._SAVE_ATTEMPTS} attempts"
        )

    # --- files ---

    def _read(self, file) -> str | None:
        """The file's text, None when it does not exist (or was moved away meanwhile)."""
        if not self._fs.exists(file):
            return None
        try:
            stream = self._fs.open(file)
        except Exception as exc:  # a Py4J error: only "not found" means None
            if "FileNotFoundException" in str(exc):
                return None
            raise
        try:
            return self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()

    def _write_staging(self, text: str | None, run: RunMetrics | None = None):
        """A new staging file holding `text`; in Deequ mode Deequ then adds (or replaces) `run`'s entry."""
        staging = self._jvm.org.apache.hadoop.fs.Path(f"{self.path}.{uuid.uuid4().hex}.tmp")
        if text is not None:
            out = self._fs.create(staging, True)
            try:
                out.write(bytearray(text.encode("utf-8")))
            finally:
                out.close()
        if run is not None:
            from growth_revenue import deequ_engine

            deequ_engine.save(
                self._spark, str(staging), run.as_of, [(m.analyzer, m.column, m.value) for m in run.metrics]
            )
        return staging

    def _staging_files(self) -> list:
        """The staging files beside the repository file, newest first."""
        parent = self._file.getParent()
        if parent is None or not self._fs.exists(parent):
            return []
        found = [
            s for s in self._fs.listStatus(parent) if s.isFile() and self._staging_name.fullmatch(s.getPath().getName())
        ]
        return sorted(found, key=lambda s: s.getModificationTime(), reverse=True)

    def _recover(self) -> str | None:
        """The newest complete staging file's text, moved into place; None when there is none."""
        for status in self._staging_files():
            text = self._read(status.getPath())
            if text is None:
                continue
            try:
                from_deequ_json(text, str(status.getPath()))
            except ValueError:
                continue  # cut short by a crash mid-write
            if self._fs.rename(status.getPath(), self._file):
                log.warning(
                    "metrics repository %s was missing (a save was interrupted between removing the "
                    "old file and moving the new one in): recovered it from %s",
                    self.path,
                    status.getPath().getName(),
                )
            return text
        return None

    def _remove_stale_staging_files(self) -> None:
        now_ms = time.time() * 1000
        for status in self._staging_files():
            if now_ms - status.getModificationTime() > self._STALE_AFTER_SECONDS * 1000:
                self._fs.delete(status.getPath(), False)
