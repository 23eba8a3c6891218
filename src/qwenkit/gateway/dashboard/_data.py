"""What the dashboard's pages show, from the reports API (``qwenkit.storage.usage_report`` and
``recent_records``) and the budget states: no SQL of its own.

A time range is ``24h`` (hourly buckets), ``7d`` or ``30d`` (daily buckets, UTC). A series has a
value per bucket of the range, ``None`` where the bucket has no request (a gap, not a zero:
an hour without traffic has no latency). The report functions are synchronous (they stream the
ledger through SQLAlchemy's sync engine); the pages call them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

from qwenkit._core.usage import UsageRecord
from qwenkit.storage import ReportRow, UsageReport, recent_records, usage_report
from qwenkit.storage._reports import By

__all__ = [
    "RANGES",
    "Window",
    "log_page",
    "range_report",
    "series",
    "window",
]

Bucket = Literal["hour", "day"]
RANGES: dict[str, tuple[timedelta, Bucket]] = {
    "24h": (timedelta(hours=24), "hour"),
    "7d": (timedelta(days=7), "day"),
    "30d": (timedelta(days=30), "day"),
}


@dataclass(frozen=True)
class Window:
    """A time range of the dashboard: its name, bounds, bucket and the label of each bucket."""

    name: str
    since: datetime
    until: datetime
    bucket: Bucket
    labels: tuple[str, ...]


def window(name: str | None, now: datetime | None = None) -> Window:
    """The window of a range name (``24h``, ``7d``, ``30d``; anything else: ``7d``)."""
    name = name if name in RANGES else "7d"
    length, bucket = RANGES[name]
    until = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    since = until - length
    labels: list[str] = []
    if bucket == "hour":
        moment = since.replace(minute=0, second=0, microsecond=0)
        while moment <= until:
            labels.append(moment.strftime("%Y-%m-%dT%H:00"))
            moment += timedelta(hours=1)
    else:
        day = since.date()
        while day <= until.date():
            labels.append(day.isoformat())
            day += timedelta(days=1)
    return Window(name, since, until, bucket, tuple(labels))


def range_report(ledger: Any, span: Window, by: By | Literal["bucket"]) -> UsageReport:
    """``usage_report`` over the window, grouped ``by`` (``bucket`` for the window's buckets)."""
    grouping: By = span.bucket if by == "bucket" else by
    return usage_report(ledger, since=span.since, until=span.until, by=grouping)


def series(
    span: Window, rows: Sequence[ReportRow], field: str, *, scale: float = 1.0
) -> list[float | None]:
    """One value per bucket of ``span``: ``field`` of the row of that bucket (``None`` when the
    bucket has no row, or the field no value)."""
    by_bucket: Mapping[str | None, ReportRow] = {row.group: row for row in rows}
    values: list[float | None] = []
    for label in span.labels:
        row = by_bucket.get(label)
        value = getattr(row, field) if row is not None else None
        if isinstance(value, Decimal):
            value = float(value)
        values.append(None if value is None else float(value) * scale)
    return values


def log_page(
    ledger: Any,
    *,
    limit: int = 100,
    endpoint: str | None = None,
    model: str | None = None,
    key_id: str | None = None,
    status: str | None = None,
) -> list[UsageRecord]:
    """The newest requests matching the filters (no prompt text: the ledger holds none unless
    prompt capture is on, and the page does not show it either way)."""
    return recent_records(
        ledger, limit=limit, endpoint=endpoint, model=model, key_id=key_id, status=status
    )
