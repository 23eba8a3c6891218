"""The store protocols: what the client, the gateway and the CLI rely on, whatever the backend.

``Ledger`` (usage records, append-only), ``Budgets`` (reserve, settle; daily money budgets and
per-minute request and token limits), ``Keys`` (virtual keys, hashed) and ``ResponseCache``
(``qwenkit._core.cache``). Each has a SQLite and a PostgreSQL implementation; ``Budgets`` and
``ResponseCache`` also a Redis one. One contract test suite, run against every backend, is their
specification (``tests/storage``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from qwenkit._core.cache import ResponseCache
from qwenkit._core.usage import UsageRecord

__all__ = [
    "BudgetKind",
    "BudgetState",
    "Budgets",
    "Charge",
    "CreatedKey",
    "KeyInfo",
    "Keys",
    "Ledger",
    "LedgerStats",
    "Limits",
    "Reservation",
    "ResponseCache",
]

BudgetKind = Literal["daily_cost", "requests_per_minute", "tokens_per_minute"]


@dataclass(frozen=True, slots=True)
class LedgerStats:
    """Counters of a ledger since it opened. ``dropped`` exists to show it stays 0."""

    queued: int
    """Records in the queue now (the queue depth)."""
    written: int
    spilled: int
    """Records written to the spill file because the queue stayed full or the database failed."""
    replayed: int
    """Records of a spill file written to the database at start."""
    dropped: int = 0


class Ledger(Protocol):
    """Append-only usage records. ``emit`` is a ``UsageSink``: it never does I/O on the caller's
    thread beyond a bounded wait when the queue is full (then the record spills to a file)."""

    def emit(self, record: UsageRecord) -> None: ...

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything queued so far; ``False`` when ``timeout`` passed first."""
        ...

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the writer. Records emitted afterwards spill to the file."""
        ...

    @property
    def stats(self) -> LedgerStats: ...


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of one budget scope; ``None`` is no limit of that kind. ``daily_cost`` is in
    the catalog's currency of the calls it counts."""

    daily_cost: Decimal | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    @property
    def empty(self) -> bool:
        return (
            self.daily_cost is None
            and self.requests_per_minute is None
            and self.tokens_per_minute is None
        )


@dataclass(frozen=True, slots=True)
class Charge:
    """One counter a reservation holds: ``amount`` in the counter's unit (nano-units of money for
    ``daily_cost``, requests, tokens) in window ``window`` of ``scope``."""

    scope: str
    kind: BudgetKind
    window: str
    amount: int
    limit: int
    resets_at: float
    """Epoch seconds when ``window`` ends."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """What ``Budgets.reserve`` holds until ``settle``; released by itself at ``expires_at``."""

    id: str
    charges: tuple[Charge, ...]
    expires_at: float


@dataclass(frozen=True, slots=True)
class BudgetState:
    """One limit of one scope now: ``spent`` settled, ``reserved`` held by calls in flight."""

    scope: str
    kind: BudgetKind
    limit: Decimal
    spent: Decimal
    reserved: Decimal
    resets_at: datetime

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.limit - self.spent - self.reserved)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: amounts as decimal strings, the reset time in ISO 8601."""
        return {
            "scope": self.scope,
            "kind": self.kind,
            "limit": str(self.limit),
            "spent": str(self.spent),
            "reserved": str(self.reserved),
            "remaining": str(self.remaining),
            "resets_at": self.resets_at.isoformat(),
        }


class Budgets(Protocol):
    """Atomic reservations against limits; never check-then-increment."""

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
        """Hold ``cost`` (money), one request and ``tokens`` against every limit of every scope,
        all or nothing; ``BudgetExceededError`` names the first limit that does not fit (and
        ``currency``, the catalog's currency of ``cost``, when given)."""
        ...

    async def settle(
        self, reservation: Reservation, *, cost: Decimal, tokens: int, sent: bool = True
    ) -> None:
        """Replace the reservation by what the call really used: ``cost`` and ``tokens``, and the
        request itself unless ``sent`` is false (a call never sent). A second settle of the same
        reservation changes nothing."""
        ...

    async def status(self, scope: str, limits: Limits) -> Sequence[BudgetState]:
        """The current window of each limit of ``scope``."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A virtual key as stored (never the key itself)."""

    id: str
    name: str
    environment: str | None
    limits: Limits
    models: tuple[str, ...] | None
    """Models the key may call (``None``: any)."""
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    reasoning: str | None = None
    """What the gateway does with the model's reasoning for this key: ``strip``, ``pass`` or
    ``log`` (``None``: the gateway's default)."""
    max_tokens: int | None = None
    """The most output tokens one call of this key may ask for: a larger ``max_tokens`` (or a
    default above it) is clamped to it, and the budget reserves only that (``None``: only the
    gateway's and the model's caps)."""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (never the key: it is not stored)."""
        limits = self.limits
        return {
            "id": self.id,
            "name": self.name,
            "environment": self.environment,
            "daily_budget": None if limits.daily_cost is None else str(limits.daily_cost),
            "rpm": limits.requests_per_minute,
            "tpm": limits.tokens_per_minute,
            "models": None if self.models is None else list(self.models),
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "reasoning": self.reasoning,
            "max_tokens": self.max_tokens,
        }


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: ``key`` is shown once and never stored."""

    key: str
    info: KeyInfo


class Keys(Protocol):
    """Virtual keys ``qk-<id>-<secret>``, stored as salted scrypt hashes."""

    async def create(
        self,
        name: str,
        *,
        environment: str | None = None,
        limits: Limits = Limits(),
        models: Sequence[str] | None = None,
        reasoning: str | None = None,
        max_tokens: int | None = None,
    ) -> CreatedKey: ...

    async def verify(self, key: str) -> KeyInfo | None:
        """The key's info when ``key`` is a valid, unrevoked key (constant-time comparison);
        ``None`` otherwise. Records the last-used time."""
        ...

    async def get(self, key_id: str) -> KeyInfo | None: ...

    async def list(self, *, include_revoked: bool = False) -> Sequence[KeyInfo]: ...

    async def revoke(self, key_id: str) -> bool:
        """``True`` when the key existed and was active."""
        ...

    async def set_environment(self, name: str, limits: Limits) -> None: ...

    async def environment(self, name: str) -> Limits | None: ...

    async def aclose(self) -> None: ...
