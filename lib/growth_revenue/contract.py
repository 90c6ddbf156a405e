"""The input contract of the raw tables: required columns, accepted types, canonical form.

`conform` is the gate between "some table somebody wrote" and the rules: it names the table
and column of any breach, drops extra columns, and casts accepted types to the canonical ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from growth_revenue import tables

AMOUNT_TYPE = T.DecimalType(18, 2)


class ContractError(ValueError):
    """A raw table breaks the input contract (missing table, missing or mistyped column)."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "string" | "timestamp" | "amount" | "boolean"


ORDERS_CONTRACT = (
    Column("order_id", "string"),
    Column("customer_id", "string"),
    Column("order_ts", "timestamp"),
    Column("status", "string"),
    Column("amount", "amount"),
    Column("updated_at", "timestamp"),
    Column("_ingested_at", "timestamp"),
)

CUSTOMERS_CONTRACT = (
    Column("customer_id", "string"),
    Column("email", "string"),
    Column("customer_segment", "string"),
    Column("is_test_user", "boolean"),
    Column("updated_at", "timestamp"),
)

CONTRACTS = {tables.RAW_ORDERS: ORDERS_CONTRACT, tables.RAW_CUSTOMERS: CUSTOMERS_CONTRACT}

_EXPECTED = {
    "string": "string",
    "timestamp": "timestamp",
    "amount": "decimal(18,2) (or a decimal/integer that fits it exactly)",
    "boolean": "boolean",
}


def _accepts(kind: str, dtype: T.DataType) -> bool:
    if kind == "string":
        return isinstance(dtype, (T.StringType, T.VarcharType, T.CharType))
    if kind == "timestamp":
        # NTZ values (e.g. from naive pandas datetimes) are read as UTC wall-clock time.
        return isinstance(dtype, (T.TimestampType, T.TimestampNTZType))
    if kind == "boolean":
        return isinstance(dtype, T.BooleanType)
    if kind == "amount":
        if isinstance(dtype, T.DecimalType):
            # Widening to decimal(18,2) must be exact: no rounding, no overflow.
            return dtype.scale <= 2 and dtype.precision - dtype.scale <= 16
        return isinstance(dtype, (T.ByteType, T.ShortType, T.IntegerType))
    raise AssertionError(kind)


def _canonical(kind: str, column: str):
    if kind == "timestamp":
        return F.col(column).cast(T.TimestampType())
    if kind == "amount":
        return F.col(column).cast(AMOUNT_TYPE)
    if kind == "string":
        return F.col(column).cast(T.StringType())
    return F.col(column)


def conform(df: DataFrame, table: str) -> DataFrame:
    """The contract columns of `table`, in canonical types; raises ContractError naming the breach."""
    contract = CONTRACTS[table]
    fields = {f.name.lower(): f for f in df.schema.fields}
    problems = []
    for column in contract:
        field = fields.get(column.name.lower())
        if field is None:
            problems.append(f"{table}: missing contract column '{column.name}' ({_EXPECTED[column.kind]})")
        elif not _accepts(column.kind, field.dataType):
            problems.append(
                f"{table}: column '{column.name}' has type {field.dataType.simpleString()}, "
                f"expected {_EXPECTED[column.kind]}"
            )
    if problems:
        raise ContractError("; ".join(problems))
    return df.select(*[_canonical(c.kind, fields[c.name.lower()].name).alias(c.name) for c in contract])
