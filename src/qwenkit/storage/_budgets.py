"""Budgets and rate limits over counters: the logic every backend shares (``open_budgets``).

A reservation is a set of ``Charge``s, one per limit of each scope it is made against:

- ``daily_cost`` → window ``day:YYYY-MM-DD`` (the local date in the configured IANA time zone;
  it resets at the next local midnight, computed in that zone, so a day across a DST change is
  23 or 25 hours long), amount ``cost`` in integer nano-units of the currency;
- ``requests_per_minute`` → window ``rpm:<epoch minute>``, amount 1;
- ``tokens_per_minute`` → window ``tpm:<epoch minute>``, amount ``tokens``.

The minute windows are fixed (aligned on the epoch minute), not sliding: a caller can use a
whole limit in the last second of one minute and again in the first second of the next, so up
to twice the limit passes within any 60 seconds around a boundary. That is the price of one
counter per window (one atomic statement per charge); DashScope's own limits behave alike.

Money is counted in integer nano-units (``Decimal * 10**9``): a reservation rounds **up** (it must
cover the worst case), a settlement to the nearest nano-unit (half up, as PostgreSQL's ``numeric``
stores the ledger's cost), limits round down. Negative amounts are refused.

A charge fits when ``spent + reserved + amount <= limit``; the check and the increment are one
atomic step in the backend (a conditional upsert in SQL, a Lua script in Redis), all charges of a
reservation or none. ``settle`` replaces what was reserved by what was used: the cost, the tokens,
and the request itself unless it was never sent (a failure before any byte reached the upstream).
A reservation lives ``ttl`` seconds; every operation first releases (a bounded batch of) expired
ones, so the holds of a crashed process come back. Settling a reservation that already expired
still adds what was spent (the money is gone) without touching ``reserved``; settling twice is a
no-op the second time. Released reservations leave a marker for ``TOMBSTONE_KEEP`` seconds so a
late settle can tell them from settled ones; a settle later than that is not counted.

Every process sharing a store must use the same time zone (the day window's name is the local
date) and clocks kept in sync (NTP): windows and expiry are computed from the caller's clock.

The backends (``_budgets_sql.SQLCounters``, ``_budgets_redis.RedisCounters``) implement only the
atomic primitives of ``BudgetCounters``; they do not import this module (no import circle).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from datetime import time as clock_time
from datetime import timezone as dt_timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from qwenkit._exceptions import BudgetExceededError
from qwenkit._settings import ConfigError
from qwenkit.storage._protocols import BudgetKind, BudgetState, Charge, Limits, Reservation
from qwenkit.storage._urls import StoreURL, parse_store_url

__all__ = [
    "COUNTER_GRACE",
    "NANO",
    "SWEEP_BATCH",
    "TOMBSTONE_KEEP",
    "BudgetCounters",
    "CounterBudgets",
    "Refusal",
    "build_charges",
    "from_units",
    "open_budgets",
    "refusal_error",
    "to_nano",
    "window_of",
]

NANO = Decimal(10**9)
SWEEP_BATCH = 100
"""Expired reservations released per operation, at most."""
COUNTER_GRACE = 3600.0
"""Seconds a window's counter is kept after the window ends (late settles still find it)."""
TOMBSTONE_KEEP = 86_400.0
"""Seconds the marker of an expired-and-released reservation is kept for a late settle."""

Refusal = tuple[int, int, int]
"""What a backend returns for a reservation that does not fit: (index of the charge, its
counter's spent, its counter's reserved)."""

_KINDS: tuple[tuple[BudgetKind, str], ...] = (
    ("daily_cost", "day"),
    ("requests_per_minute", "rpm"),
    ("tokens_per_minute", "tpm"),
)


class BudgetCounters(Protocol):
    """The atomic primitives a backend provides; ``now`` is the caller's clock (epoch s)."""

    async def reserve(
        self, charges: Sequence[Charge], reservation_id: str, expires_at: float, now: float
    ) -> Refusal | None:
        """Release expired reservations, then add every charge to ``reserved`` if all fit
        (``spent + reserved + amount <= limit``) and record the reservation, else change no
        counter and return the first charge that did not fit."""
        ...

    async def settle(self, reservation: Reservation, actual: Sequence[int], now: float) -> None:
        """Release expired reservations; then, when ``reservation`` is held, release its holds
        and add ``actual`` (one amount per charge) to ``spent``; when it expired, add ``actual``
        only; when it was settled already, nothing."""
        ...

    async def read(self, charges: Sequence[Charge], now: float) -> Sequence[tuple[int, int]]:
        """Release expired reservations, then (spent, reserved) of each charge's counter."""
        ...

    async def aclose(self) -> None: ...


def to_nano(amount: Decimal, *, rounding: str = ROUND_HALF_UP) -> int:
    """``amount`` (currency units) in integer nano-units; negative or non-finite is an error."""
    if not isinstance(amount, Decimal):
        amount = Decimal(str(amount))
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"a money amount must be a finite, non-negative Decimal, got {amount!r}")
    return int((amount * NANO).to_integral_value(rounding=rounding))


def from_units(kind: BudgetKind, value: int) -> Decimal:
    """A counter value in the unit users see: currency units for money, else a count."""
    return Decimal(value) / NANO if kind == "daily_cost" else Decimal(value)


def window_of(kind: BudgetKind, now: float, zone: ZoneInfo) -> tuple[str, float]:
    """(window name, epoch seconds when it ends) of ``kind`` at ``now``."""
    if kind == "daily_cost":
        day = datetime.fromtimestamp(now, zone).date()
        midnight = datetime.combine(day + timedelta(days=1), clock_time(0), tzinfo=zone)
        return f"day:{day.isoformat()}", midnight.timestamp()
    minute = math.floor(now / 60)
    prefix = "rpm" if kind == "requests_per_minute" else "tpm"
    return f"{prefix}:{minute}", (minute + 1) * 60.0


def _limit_units(kind: BudgetKind, limits: Limits) -> int | None:
    if kind == "daily_cost":
        value = limits.daily_cost
        return None if value is None else to_nano(value, rounding=ROUND_FLOOR)
    count = (
        limits.requests_per_minute if kind == "requests_per_minute" else limits.tokens_per_minute
    )
    if count is not None and count < 0:
        raise ValueError(f"{kind} must not be negative, got {count}")
    return count


def build_charges(
    scopes: Mapping[str, Limits], *, cost_nano: int, tokens: int, now: float, zone: ZoneInfo
) -> tuple[Charge, ...]:
    """The charges of one reservation, sorted by (scope, window): the order in which backends
    take their locks, so two reservations never wait on each other in a cycle."""
    amounts: dict[BudgetKind, int] = {
        "daily_cost": cost_nano,
        "requests_per_minute": 1,
        "tokens_per_minute": tokens,
    }
    charges = []
    for scope, limits in scopes.items():
        for kind, _ in _KINDS:
            limit = _limit_units(kind, limits)
            if limit is None:
                continue
            window, resets_at = window_of(kind, now, zone)
            charges.append(Charge(scope, kind, window, amounts[kind], limit, resets_at))
    return tuple(sorted(charges, key=lambda charge: (charge.scope, charge.window)))


def _show(kind: BudgetKind, value: Decimal) -> str:
    if kind != "daily_cost":
        return str(value)
    cents = value.quantize(Decimal("0.01"))
    return f"{cents:.2f}" if cents == value else format(value.normalize(), "f")


_LABELS: dict[BudgetKind, tuple[str, str, str]] = {
    "daily_cost": ("daily budget", "spent", "reserved"),
    "requests_per_minute": ("requests-per-minute limit", "sent", "in flight"),
    "tokens_per_minute": ("tokens-per-minute limit", "used", "reserved"),
}


def refusal_error(
    charge: Charge,
    spent: int,
    reserved: int,
    *,
    zone: ZoneInfo,
    currency: str | None = None,
    request_id: str | None = None,
) -> BudgetExceededError:
    """The ``BudgetExceededError`` of ``charge`` not fitting next to ``spent`` and ``reserved``."""
    kind = charge.kind
    limit, used, held, asked = (
        from_units(kind, value) for value in (charge.limit, spent, reserved, charge.amount)
    )
    resets = datetime.fromtimestamp(charge.resets_at, dt_timezone.utc)
    name, used_word, held_word = _LABELS[kind]
    unit = f" {currency}" if currency and kind == "daily_cost" else ""
    message = (
        f"{name} of {charge.scope} exceeded: {_show(kind, used)} {used_word} + "
        f"{_show(kind, held)} {held_word} + {_show(kind, asked)} requested > "
        f"{_show(kind, limit)}{unit} (resets {resets.astimezone(zone).isoformat()})"
    )
    return BudgetExceededError(
        message,
        scope=charge.scope,
        kind=kind,
        limit=limit,
        spent=used,
        reserved=held,
        requested=asked,
        resets_at=resets,
        currency=currency if kind == "daily_cost" else None,
        request_id=request_id,
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"budget time zone {name!r} is not an IANA time zone (e.g. 'UTC', 'Asia/Shanghai')"
        ) from exc


class CounterBudgets:
    """``Budgets`` over a backend's ``BudgetCounters`` (see the module docstring)."""

    def __init__(
        self,
        counters: BudgetCounters,
        *,
        timezone: str = "UTC",
        default_ttl: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if default_ttl <= 0:
            raise ValueError("default_ttl must be positive")
        self.counters = counters
        self.zone = _zone(timezone)
        self.default_ttl = default_ttl
        self._clock = clock

    async def reserve(
        self,
        scopes: Mapping[str, Limits],
        *,
        cost: Decimal,
        tokens: int,
        ttl: float | None = None,
        request_id: str | None = None,
        currency: str | None = None,
    ) -> Reservation:
        lifetime = self.default_ttl if ttl is None else ttl
        if lifetime <= 0:
            raise ValueError("ttl must be positive")
        if tokens < 0:
            raise ValueError(f"tokens must not be negative, got {tokens}")
        now = self._clock()
        money = to_nano(cost, rounding=ROUND_CEILING)
        charges = build_charges(scopes, cost_nano=money, tokens=tokens, now=now, zone=self.zone)
        reservation = Reservation(uuid.uuid4().hex, charges, now + lifetime)
        if not charges:
            return reservation
        too_big = next((i for i, c in enumerate(charges) if c.amount > c.limit), None)
        if too_big is not None:  # can never fit: refuse without holding anything
            [(spent, held)] = await self.counters.read([charges[too_big]], now)
            refusal: Refusal | None = (too_big, spent, held)
        else:
            refusal = await self.counters.reserve(
                charges, reservation.id, reservation.expires_at, now
            )
        if refusal is not None:
            index, spent, held = refusal
            charge = charges[index]
            raise refusal_error(
                charge, spent, held, zone=self.zone, currency=currency, request_id=request_id
            )
        return reservation

    async def settle(
        self, reservation: Reservation, *, cost: Decimal, tokens: int, sent: bool = True
    ) -> None:
        if tokens < 0:
            raise ValueError(f"tokens must not be negative, got {tokens}")
        if not reservation.charges:
            return
        money = to_nano(cost)
        actual = {
            "daily_cost": money,
            "requests_per_minute": int(sent),
            "tokens_per_minute": tokens,
        }
        amounts = [actual[charge.kind] for charge in reservation.charges]
        await self.counters.settle(reservation, amounts, self._clock())

    async def status(self, scope: str, limits: Limits) -> Sequence[BudgetState]:
        now = self._clock()
        charges = build_charges({scope: limits}, cost_nano=0, tokens=0, now=now, zone=self.zone)
        if not charges:
            return []
        values = await self.counters.read(charges, now)
        order = [kind for kind, _ in _KINDS]
        states = [
            BudgetState(
                scope=scope,
                kind=charge.kind,
                limit=from_units(charge.kind, charge.limit),
                spent=from_units(charge.kind, spent),
                reserved=from_units(charge.kind, held),
                resets_at=datetime.fromtimestamp(charge.resets_at, dt_timezone.utc),
            )
            for charge, (spent, held) in zip(charges, values, strict=True)
        ]
        return sorted(states, key=lambda state: order.index(state.kind))

    async def aclose(self) -> None:
        await self.counters.aclose()

    def __repr__(self) -> str:
        return f"CounterBudgets({self.counters!r}, timezone={self.zone.key!r})"


def open_budgets(
    url: str | StoreURL,
    *,
    timezone: str = "UTC",
    default_ttl: float = 300.0,
    clock: Callable[[], float] = time.time,
    migrate: bool = True,
) -> CounterBudgets:
    """The budgets at ``url``: SQLite or PostgreSQL (migrated first unless ``migrate=False``) or
    Redis (pinged). An unreachable store is a ``StorageError`` naming it, within seconds."""
    parsed = parse_store_url(url, part="budgets")
    parsed.require_driver()
    zone = _zone(timezone).key  # a bad zone fails before any connection
    counters: BudgetCounters
    if parsed.is_sql:
        if migrate:
            from qwenkit.storage._migrate import upgrade_store

            upgrade_store(parsed)
        from qwenkit.storage._budgets_sql import SQLCounters

        counters = SQLCounters(parsed, grace=COUNTER_GRACE, keep=TOMBSTONE_KEEP, batch=SWEEP_BATCH)
    else:
        from qwenkit.storage._budgets_redis import RedisCounters

        remote = RedisCounters(parsed, grace=COUNTER_GRACE, keep=TOMBSTONE_KEEP, batch=SWEEP_BATCH)
        remote.ping()  # unreachable: a StorageError now, not on the first call
        counters = remote
    return CounterBudgets(counters, timezone=zone, default_ttl=default_ttl, clock=clock)
