"""``UsageRecord`` ⇄ a ``qk_usage`` row (and its JSON line in a spill file)."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from qwenkit._core.usage import UsageRecord

__all__ = ["USAGE_COLUMNS", "record_from_row", "record_to_row"]

USAGE_COLUMNS = tuple(f.name if f.name != "timestamp" else "ts" for f in fields(UsageRecord))


def record_to_row(record: UsageRecord) -> dict[str, Any]:
    """The ``qk_usage`` row of ``record`` (the timestamp in UTC, the cost exact)."""
    row = {f.name: getattr(record, f.name) for f in fields(UsageRecord)}
    ts: datetime = row.pop("timestamp")
    row["ts"] = ts.astimezone(timezone.utc) if ts.tzinfo is not None else ts
    return row


def record_from_row(row: Any) -> UsageRecord:
    """A ``UsageRecord`` from a row mapping (SQLite gives naive UTC times; they are made aware)."""
    data = dict(row._mapping if hasattr(row, "_mapping") else row)
    ts = data.pop("ts")
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    cost = data.get("cost")
    if cost is not None and not isinstance(cost, Decimal):
        data["cost"] = Decimal(str(cost))
    return UsageRecord(timestamp=ts, **data)
