"""Reports over the ledger: usage by endpoint, model, key, environment or day, and the
week-over-week growth of prompt tokens per request that flags a prompt that silently bloated.

``usage_report(source, since=..., by="endpoint")`` returns a ``UsageReport``: one ``ReportRow``
per group and a total (requests, outcomes, error rate, the five token kinds, cost, the upstream
prefix-cache hit rate ``cached / prompt`` tokens, the edge-cache hit rate ``cache hits /
requests``, p50/p95 of latency and TTFT, prompt tokens per request), plus ``week_over_week``: per
endpoint, prompt tokens per request in the 7 days before ``until`` against the 7 days before
those, ``bloat`` at ``ratio >= bloat_threshold`` (1.5 by default). ``recent_records`` is the
request log. The CLI (``qwenkit report``) and the dashboard are built on these.

**How.** One narrow query per report over ``qk_usage`` in the time range (served by the index on
``ts``; ``recent_records`` filters by endpoint, model or key over their ``(column, ts)`` indexes),
streamed in chunks and folded in Python: percentiles then have one definition on every backend
(linear interpolation between closest ranks, PostgreSQL's ``percentile_cont``), a calendar day is
the day in the report's time zone, and SQLite and PostgreSQL give the same numbers by
construction. Memory is O(requests in range) for the latency values only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from qwenkit._core.usage import UsageRecord
from qwenkit._exceptions import StorageError
from qwenkit.storage._rows import record_from_row
from qwenkit.storage._schema import usage
from qwenkit.storage._urls import StoreURL, parse_store_url

__all__ = [
    "By",
    "Growth",
    "ReportRow",
    "UsageReport",
    "parse_since",
    "percentile",
    "recent_records",
    "usage_report",
]

By = Literal["endpoint", "model", "key", "env", "day", "hour"]
_COLUMN = {"endpoint": "endpoint", "model": "model", "key": "key_id", "env": "environment"}
_WEEK = timedelta(days=7)
_CHUNK = 5000


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation (``percentile_cont``)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class _Fold:
    requests: int = 0
    ok: int = 0
    errors: int = 0
    cancelled: int = 0
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    creation: int = 0
    reasoning: int = 0
    cost: Decimal = Decimal(0)
    currencies: set[str] = field(default_factory=set)
    hits: int = 0
    latency: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)

    def add(self, row: Any) -> None:
        self.requests += 1
        self.ok += row.status == "ok"
        self.errors += row.status == "error"
        self.cancelled += row.status == "cancelled"
        self.prompt += row.prompt_tokens
        self.completion += row.completion_tokens
        self.cached += row.cached_tokens
        self.creation += row.cache_creation_tokens
        self.reasoning += row.reasoning_tokens
        if row.cost is not None:
            self.cost += Decimal(str(row.cost))
        if row.currency:
            self.currencies.add(row.currency)
        self.hits += bool(row.cache_hit)
        self.latency.append(row.latency_s)
        if row.ttft_s is not None:
            self.ttft.append(row.ttft_s)


@dataclass(frozen=True)
class ReportRow:
    """One group of a report (``group`` ``None``: calls without that tag; ``"total"`` row)."""

    group: str | None
    requests: int
    ok: int
    errors: int
    cancelled: int
    error_rate: float
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_creation_tokens: int
    reasoning_tokens: int
    cost: Decimal
    currency: str | None
    """The currency of the costs; ``"mixed"`` when the group has several."""
    prefix_cache_hit_rate: float | None
    edge_cache_hit_rate: float
    latency_p50: float | None
    latency_p95: float | None
    ttft_p50: float | None
    ttft_p95: float | None
    prompt_tokens_per_request: float

    @classmethod
    def of(cls, group: str | None, fold: _Fold) -> ReportRow:
        n = max(fold.requests, 1)
        currency = None if not fold.currencies else (
            next(iter(fold.currencies)) if len(fold.currencies) == 1 else "mixed"
        )  # fmt: skip
        return cls(
            group=group,
            requests=fold.requests,
            ok=fold.ok,
            errors=fold.errors,
            cancelled=fold.cancelled,
            error_rate=fold.errors / n,
            prompt_tokens=fold.prompt,
            completion_tokens=fold.completion,
            cached_tokens=fold.cached,
            cache_creation_tokens=fold.creation,
            reasoning_tokens=fold.reasoning,
            cost=fold.cost,
            currency=currency,
            prefix_cache_hit_rate=fold.cached / fold.prompt if fold.prompt else None,
            edge_cache_hit_rate=fold.hits / n,
            latency_p50=percentile(fold.latency, 0.5),
            latency_p95=percentile(fold.latency, 0.95),
            ttft_p50=percentile(fold.ttft, 0.5),
            ttft_p95=percentile(fold.ttft, 0.95),
            prompt_tokens_per_request=fold.prompt / n,
        )

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["cost"] = format(self.cost.normalize(), "f")  # 0.0106, not 0.010600000
        return data


@dataclass(frozen=True)
class Growth:
    """Prompt tokens per request of one endpoint, this week against the week before."""

    endpoint: str | None
    this_week: float
    last_week: float | None
    ratio: float | None
    bloat: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class UsageReport:
    since: datetime
    until: datetime
    by: By
    rows: list[ReportRow]
    total: ReportRow
    week_over_week: list[Growth]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times in ISO 8601, money as decimal strings."""
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "by": self.by,
            "rows": [row.to_dict() for row in self.rows],
            "total": self.total.to_dict(),
            "week_over_week": [growth.to_dict() for growth in self.week_over_week],
        }


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``30m``, ``24h``, ``7d``, ``4w`` before ``now``, or an ISO date/time (UTC if naive)."""
    now = now or datetime.now(timezone.utc)
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    value = text.strip().lower()
    if value[-1:] in units and value[:-1].isdigit():
        return now - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a duration (30m, 24h, 7d, 4w) or an ISO date (2026-12-01)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def usage_report(
    source: str | StoreURL | Engine,
    *,
    since: datetime,
    until: datetime | None = None,
    by: By = "endpoint",
    tz: str = "UTC",
    bloat_threshold: float = 1.5,
    key_id: str | None = None,
    endpoint: str | None = None,
    model: str | None = None,
    environment: str | None = None,
) -> UsageReport:
    """The report of the ledger at ``source`` between ``since`` and ``until`` (now), of the
    records matching the filters given (``key_id``, ``endpoint``, ``model``, ``environment``).
    ``by="day"`` groups by calendar day in ``tz`` (``2026-12-07``), ``by="hour"`` by hour
    (``2026-12-07T14:00``); both come in time order."""
    if by not in (*_COLUMN, "day", "hour"):
        raise ValueError(f"by must be one of endpoint, model, key, env, day, hour; got {by!r}")
    until = until or datetime.now(timezone.utc)
    zone = ZoneInfo(tz)
    filters = {"key_id": key_id, "endpoint": endpoint, "model": model, "environment": environment}
    groups: dict[str | None, _Fold] = {}
    total = _Fold()
    with _engine(source) as engine:
        for row in _rows(engine, since, until, filters):
            if by == "day":
                key = _day(row.ts, zone)
            elif by == "hour":
                key = _hour(row.ts, zone)
            else:
                key = getattr(row, _COLUMN[by])
            groups.setdefault(key, _Fold()).add(row)
            total.add(row)
        weeks = _week_over_week(engine, until, bloat_threshold, filters)
    ordered = sorted(groups.items(), key=lambda item: (item[0] is None, item[0] or ""))
    if by not in ("day", "hour"):
        ordered.sort(key=lambda item: -item[1].cost)
    rows = [ReportRow.of(group, fold) for group, fold in ordered]
    return UsageReport(since, until, by, rows, ReportRow.of("total", total), weeks)


def recent_records(
    source: str | StoreURL | Engine,
    *,
    limit: int = 100,
    before: datetime | None = None,
    endpoint: str | None = None,
    model: str | None = None,
    key_id: str | None = None,
    status: str | None = None,
) -> list[UsageRecord]:
    """The newest records (before ``before``), filtered; the request log."""
    query = select(usage).order_by(usage.c.ts.desc()).limit(limit)
    if before is not None:
        query = query.where(usage.c.ts < _utc(before))
    for column, value in (("endpoint", endpoint), ("model", model), ("key_id", key_id)):
        if value is not None:
            query = query.where(usage.c[column] == value)
    if status is not None:
        query = query.where(usage.c.status == status)
    with _engine(source) as engine, engine.connect() as conn:
        return [record_from_row(row) for row in conn.execute(query)]


def _week_over_week(
    engine: Engine, until: datetime, threshold: float, filters: dict[str, str | None]
) -> list[Growth]:
    this: dict[str | None, list[int]] = {}
    last: dict[str | None, list[int]] = {}
    split = until - _WEEK
    for row in _rows(engine, until - 2 * _WEEK, until, filters):
        ts = _aware(row.ts)
        counts = (this if ts >= split else last).setdefault(row.endpoint, [0, 0])
        counts[0] += row.prompt_tokens
        counts[1] += 1
    growth: list[Growth] = []
    for endpoint, (tokens, requests) in sorted(this.items(), key=lambda i: i[0] or ""):
        now = tokens / requests
        before = last.get(endpoint)
        then = before[0] / before[1] if before else None
        ratio = now / then if then else None
        growth.append(Growth(endpoint, now, then, ratio, ratio is not None and ratio >= threshold))
    return growth


def _rows(
    engine: Engine, since: datetime, until: datetime, filters: dict[str, str | None]
) -> Iterator[Any]:
    c = usage.c
    query = (
        select(
            c.ts,
            c.endpoint,
            c.model,
            c.key_id,
            c.environment,
            c.status,
            c.prompt_tokens,
            c.completion_tokens,
            c.cached_tokens,
            c.cache_creation_tokens,
            c.reasoning_tokens,
            c.cost,
            c.currency,
            c.cache_hit,
            c.latency_s,
            c.ttft_s,
        )
        .where(c.ts >= _utc(since), c.ts < _utc(until))
        .where(*(c[column] == value for column, value in filters.items() if value is not None))
        .execution_options(yield_per=_CHUNK)
    )
    with engine.connect() as conn:
        yield from conn.execute(query)


def _utc(moment: datetime) -> datetime:
    """As stored: UTC (naive on SQLite, which keeps no zone)."""
    return _aware(moment).astimezone(timezone.utc)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _day(ts: datetime, zone: ZoneInfo) -> str:
    return _aware(ts).astimezone(zone).date().isoformat()


def _hour(ts: datetime, zone: ZoneInfo) -> str:
    return _aware(ts).astimezone(zone).strftime("%Y-%m-%dT%H:00")


@contextmanager
def _engine(source: str | StoreURL | Engine) -> Iterator[Engine]:
    """The engine of ``source``: the one given (left open) or one opened for the report; a
    database error (an unmigrated store...) becomes a ``StorageError`` naming the store."""
    from qwenkit.storage._sql import check_reachable, sync_engine

    parsed = None if isinstance(source, Engine) else parse_store_url(source, part="ledger")
    engine = source if isinstance(source, Engine) else sync_engine(parsed, pool_size=1)  # type: ignore[arg-type]
    try:
        if parsed is not None:
            check_reachable(engine, parsed)
        yield engine
    except SQLAlchemyError as exc:
        where = "the ledger" if parsed is None else parsed.masked
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StorageError(
            f"cannot read the usage of {where}: {cause} (never migrated? run `qwenkit db upgrade`)",
            url=None if parsed is None else parsed.masked,
        ) from exc
    finally:
        if parsed is not None:
            engine.dispose()
