"""Storage: the usage ledger, budgets and rate limits, the response cache and virtual keys, on
SQLite (embedded default, one file), PostgreSQL and Redis, chosen by URL (``qwenkit.storage._urls``).

Nothing here loads SQLAlchemy, Alembic or redis-py until a store is opened, so ``import
qwenkit`` works without the storage extras.

Used by the client (``AsyncQwen(store="sqlite:///qwenkit.db")``) and by the gateway alike; it
never imports either. Install with ``pip install 'qwenkit[storage]'`` (SQLite), ``[postgres]``,
``[redis]``.
"""

from __future__ import annotations

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
    "Store",
    "StoreURL",
    "parse_store_url",
    "upgrade_store",
]
