"""What a quality check is: the constraint kinds, the rules and checks built from them, their results.

`KINDS` holds one `ConstraintKind` per constraint kind, and everything about a kind is in its
entry: its name in Deequ's vocabulary (the Deequ Check method, also the `constraint` recorded in
dq_check_results), the message of a failing rule, and how the built-in spark engine measures it.
Both engines read this table (spark_engine.py, deequ_engine.py), so adding a kind is one entry.

Every kind is measured with Deequ's metric definitions, and a rule holds when its metric is exactly
1 (Deequ's Check.IsOne):
- Compliance (non_negative, positive, contained_in): rows satisfying the predicate / all rows,
  where a null complies (Deequ: COALESCE(col, 0) >= 0, COALESCE(col, 1) > 0, col IS NULL OR IN).
- Completeness: non-null rows / all rows.
- Uniqueness: values occurring exactly once / non-null rows; with only nulls there is no metric.

The lambdas below build Spark Column expressions on the driver. None reaches Deequ: a Python
assertion there would make py4j start a callback server (see deequ_engine.py).

Anomaly and quarantine rules are decided on the driver from counts and stored metrics, not by an
engine; their declarations are here so a Result names any rule the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from growth_revenue import tables


class Level(str, Enum):  # noqa: UP042 - str() of a member stays as recorded today
    ERROR = "Error"
    WARNING = "Warning"


SUCCESS, FAILURE = "Success", "Failure"


# --- constraint kinds ----------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    """A rule's metric as plain Spark computes it: numerator / denominator, both aggregated over
    `over`; no metric when the denominator is 0 or null."""

    numerator: Column
    denominator: Column
    over: DataFrame | None = None  # None: the checked rows themselves, all in one shared pass


@dataclass(frozen=True)
class ConstraintKind:
    """One kind of constraint, as both engines and dq_check_results know it."""

    name: str  # what Rule.kind says
    deequ_method: str  # the Deequ Check method the deequ engine calls; also the recorded constraint name
    fails_as: str  # a failing rule's message: str.format of column, allowed, rows, broken, metric
    measure: Callable[[DataFrame, Rule], Ratio]  # the built-in spark engine's metric
    takes_values: bool = False  # the Deequ method takes the rule's `allowed` after the column


def rows_where(complies: Callable[[Column, tuple[str, ...]], Column]) -> Callable[[DataFrame, Rule], Ratio]:
    """Deequ's Compliance (and Completeness): rows where `complies(column, allowed)` / all rows."""

    def measure(data: DataFrame, rule: Rule) -> Ratio:
        return Ratio(F.count(F.when(complies(F.col(rule.column), rule.allowed), 1)), F.count(F.lit(1)))

    return measure


def values_occurring_once(data: DataFrame, rule: Rule) -> Ratio:
    """Deequ's Uniqueness: values occurring exactly once / non-null rows, over the value counts."""
    counts = data.where(F.col(rule.column).isNotNull()).groupBy(rule.column).count()
    return Ratio(F.count(F.when(F.col("count") == 1, 1)), F.sum("count"), over=counts)


def rows_have(what: str) -> str:
    """The failure message of a kind measured row by row."""
    return "{broken:,} of {rows:,} rows have " + what + " (metric {metric:.6g})"


KINDS = {
    kind.name: kind
    for kind in (
        ConstraintKind(
            "non_negative",
            "isNonNegative",
            rows_have("{column} < 0"),
            rows_where(lambda column, allowed: F.coalesce(column.cast("double"), F.lit(0.0)) >= 0),
        ),
        ConstraintKind(
            "positive",
            "isPositive",
            rows_have("{column} <= 0"),
            rows_where(lambda column, allowed: F.coalesce(column.cast("double"), F.lit(1.0)) > 0),
        ),
        ConstraintKind(
            "complete",
            "isComplete",
            rows_have("{column} is null"),
            rows_where(lambda column, allowed: column.isNotNull()),
        ),
        ConstraintKind(
            "unique",
            "isUnique",
            "{column} is not unique (uniqueness {metric:.6g}: values occurring once per non-null row, "
            "over {rows:,} rows)",
            values_occurring_once,
        ),
        ConstraintKind(
            "contained_in",
            "isContainedIn",
            rows_have("{column} not in [{allowed}]"),
            rows_where(lambda column, allowed: column.isNull() | column.isin(list(allowed))),
            takes_values=True,
        ),
    )
}


# --- rules and checks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One constraint: `kind` names its entry in KINDS, `says` is the rule in plain words."""

    kind: str  # a key of KINDS
    column: str
    says: str
    allowed: tuple[str, ...] = ()

    @property
    def constraint(self) -> ConstraintKind:
        return KINDS[self.kind]

    @property
    def deequ_name(self) -> str:
        extra = f", [{', '.join(self.allowed)}]" if self.allowed else ""
        return f"{self.constraint.deequ_method}({self.column}{extra})"

    def failure(self, metric: float, rows: int) -> str:
        """What a failing metric over `rows` rows means, in the kind's words."""
        return self.constraint.fails_as.format(
            column=self.column,
            allowed=", ".join(self.allowed),
            rows=rows,
            metric=metric,
            broken=round((1.0 - metric) * rows),
        )


def rate_bounds(max_change: float) -> tuple[float, float]:
    """RelativeRateOfChangeStrategy's (maxRateDecrease, maxRateIncrease) for a relative bound."""
    return 1 - max_change, 1 + max_change


@dataclass(frozen=True)
class AnomalyRule:
    """Deequ's RelativeRateOfChangeStrategy on one metric: |current / previous - 1| <= max_change."""

    analyzer: str  # Deequ analyzer of the watched metric: Size, Sum
    column: str | None
    says: str
    max_change: float
    kind = "relative_change"

    @property
    def deequ_name(self) -> str:
        decrease, increase = rate_bounds(self.max_change)
        return (
            f"anomaly({self.analyzer}({self.column or ''}), RelativeRateOfChangeStrategy("
            f"maxRateDecrease={decrease:g}, maxRateIncrease={increase:g}))"
        )


@dataclass(frozen=True)
class QuarantineRule:
    """How many revenue orders went to quarantine_orders: none (Warning), at most a share (Error)."""

    says: str
    max_share: float | None  # None: any quarantined order breaks the rule
    column = None
    kind = "quarantine"

    @property
    def deequ_name(self) -> str:
        if self.max_share is None:
            return f"hasSize({tables.QUARANTINE}, _ == 0)"
        return f"ratio(Size({tables.QUARANTINE}), Size(revenue orders)) <= {self.max_share:g}"


@dataclass(frozen=True)
class Check:
    """Rules verified on one DataFrame at one level, recorded against `dataset`."""

    dataset: str
    name: str
    level: Level
    data: DataFrame | None  # None for checks decided on the driver from stored metrics (anomalies)
    rules: tuple[Rule | AnomalyRule | QuarantineRule, ...]


@dataclass(frozen=True)
class Result:
    check: Check
    rule: Rule | AnomalyRule | QuarantineRule
    status: str
    metric_value: float | None
    message: str

    @property
    def blocks_publishing(self) -> bool:
        return self.status == FAILURE and self.check.level is Level.ERROR

    def plain(self) -> str:
        verdict = "ok    " if self.status == SUCCESS else ("FAILED" if self.blocks_publishing else "WARN  ")
        return f"{verdict} [{self.check.level.value}] {self.check.dataset}: {self.rule.says} - {self.message}"
