"""The built-in spark engine: each rule's Deequ metric with plain Spark aggregations.

It runs where Deequ cannot (a Spark line whose Deequ build is not served, Databricks serverless).
How each constraint kind is measured is declared in checks.KINDS; this module only runs the
aggregations: one pass over the checked rows for every rule measured on them, and one more for each
rule measured on a frame derived from them (uniqueness: the values and their counts).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from growth_revenue.checks import Rule
from growth_revenue.sparkutil import single_row


def measure(data: DataFrame, rules: tuple[Rule, ...]) -> tuple[int, list[tuple[bool, float | None]]]:
    """(rows, (holds, metric) per rule in order); a rule holds when its metric is exactly 1."""
    ratios = [rule.constraint.measure(data, rule) for rule in rules]
    shared = [
        column
        for i, ratio in enumerate(ratios)
        if ratio.over is None
        for column in (ratio.numerator.alias(f"n{i}"), ratio.denominator.alias(f"d{i}"))
    ]
    row = single_row(data.agg(F.count(F.lit(1)).alias("rows"), *shared))
    verdicts = []
    for i, ratio in enumerate(ratios):
        if ratio.over is None:
            numerator, denominator = row[f"n{i}"], row[f"d{i}"]
        else:
            numerator, denominator = single_row(
                ratio.over.agg(ratio.numerator.alias("n"), ratio.denominator.alias("d"))
            )
        metric = numerator / denominator if denominator else None
        verdicts.append((metric == 1.0, metric))
    return row["rows"], verdicts
