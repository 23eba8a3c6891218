"""Storage: the usage ledger, budgets and rate limits, the response cache and virtual keys, on
SQLite (embedded default, one file), PostgreSQL and Redis, chosen by URL (``qwenkit.storage._urls``).

Nothing here loads SQLAlchemy, Alembic or redis-py until a store is opened, so ``import
qwenkit`` works without the storage extras.

Used by the client (``AsyncQwen(store="sqlite:///qwenkit.db")``) and by the gateway alike; it
never imports either. Install with ``pip install 'qwenkit[storage]'`` (SQLite), ``[postgres]``,
``[redis]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qwenkit.storage._protocols import (
    BudgetKind,
    Budgets,
    BudgetState,
    Charge,
    CreatedKey,
    KeyInfo,
    Keys,
    Ledger,
    LedgerStats,
    Limits,
    Reservation,
    ResponseCache,
)
from qwenkit.storage._store import Store, upgrade_store
from qwenkit.storage._urls import StoreURL, parse_store_url

if TYPE_CHECKING:
    from qwenkit.storage._reports import (
        Growth,
        ReportRow,
        UsageReport,
        parse_since,
        recent_records,
        usage_report,
    )

_REPORTS = frozenset(
    {"Growth", "ReportRow", "UsageReport", "parse_since", "recent_records", "usage_report"}
)


def __getattr__(name: str) -> Any:
    """The reports API, imported on first use (it loads SQLAlchemy)."""
    if name in _REPORTS:
        from qwenkit.storage import _reports

        return getattr(_reports, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BudgetKind",
    "BudgetState",
    "Budgets",
    "Charge",
    "CreatedKey",
    "Growth",
    "KeyInfo",
    "Keys",
    "Ledger",
    "LedgerStats",
    "Limits",
    "ReportRow",
    "Reservation",
    "ResponseCache",
    "Store",
    "StoreURL",
    "UsageReport",
    "parse_since",
    "parse_store_url",
    "recent_records",
    "upgrade_store",
    "usage_report",
]
