"""Builders for raw rows, so each test shows only what its case is about."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

UTC = dt.timezone.utc


def ts(text: str) -> dt.datetime:
    """'2026-11-24 23:59:59' as a UTC instant."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def order(
    order_id,
    customer_id="C1",
    order_ts="2026-11-20 12:00:00",
    status="completed",
    amount="10.00",
    updated_at=None,
    ingested_at=None,
):
    """One raw_orders row; updated_at and _ingested_at default to order_ts."""
    updated = ts(updated_at or order_ts)
    return (
        order_id,
        customer_id,
        ts(order_ts),
        status,
        None if amount is None else Decimal(amount),
        updated,
        ts(ingested_at) if ingested_at else updated,
    )


def customer(customer_id, email=None, segment="smb", is_test_user=False, updated_at="2026-01-01 00:00:00"):
    """One raw_customers row."""
    return (customer_id, email, segment, is_test_user, ts(updated_at))
