"""How much of a table a query read, from the scan metrics Spark itself reports.

Used by the report-pruning test and the benchmark: "the report reads only its window" is a
claim about files and bytes read, so it is measured, not inferred from the plan's text.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from growth_revenue.sparkutil import single_row


@dataclass(frozen=True)
class ScanMetrics:
    files_read: int
    bytes_read: int


def scan_metrics(df: DataFrame) -> ScanMetrics:
    """Runs `df` (collect) and sums the files and bytes its file scans read."""
    df.collect()
    plan = df._jdf.queryExecution().executedPlan()
    files = bytes_read = 0
    for node in _nodes(plan):
        metrics = node.metrics()
        if node.nodeName().startswith("Scan") and metrics.contains("numFiles"):
            files += metrics.apply("numFiles").value()
            bytes_read += metrics.apply("filesSize").value()
    return ScanMetrics(files, bytes_read)


def _nodes(plan):
    """Every node of a physical plan, looking through adaptive execution's wrappers and stages."""
    stack = [plan]
    while stack:
        node = stack.pop()
        name = node.getClass().getSimpleName()
        if name == "AdaptiveSparkPlanExec":
            stack.append(node.executedPlan())  # the final plan, after the query ran
            continue
        if name.endswith("QueryStageExec"):
            stack.append(node.plan())
            continue
        yield node
        children = node.children()
        stack.extend(children.apply(i) for i in range(children.size()))


def table_files(spark: SparkSession, path: str) -> tuple[int, int]:
    """(files, bytes) of the current version of the Delta table at `path`."""
    detail = single_row(spark.sql(f"DESCRIBE DETAIL delta.`{path.replace('`', '``')}`"))
    return detail["numFiles"], detail["sizeInBytes"]
