"""A gateway served for a test module: ``GatewaySite`` (its URL, store, gateway object and
upstream) with the two things every gateway test does: make a virtual key, read the ledger.

Not a test module: imported by name (``from gateway_site import GatewaySite``); test modules
subclass it with their own client helpers (the openai SDK, a WebSocket...)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from qwenkit import UsageRecord
from qwenkit.gateway import Gateway
from qwenkit.storage import Store, recent_records

__all__ = ["GatewaySite"]


@dataclass
class GatewaySite:
    url: str
    store_url: str
    gateway: Gateway
    upstream: str

    def key(self, name: str = "app", **options: Any) -> tuple[str, str]:
        """A new virtual key (``(key, id)``), made on the store as ``qwenkit keys create`` does."""

        async def create() -> tuple[str, str]:
            store = Store.open(self.store_url, parts=["keys"])
            try:
                assert store.keys is not None
                created = await store.keys.create(name, **options)
                return created.key, created.info.id
            finally:
                await store.aclose()

        return asyncio.run(create())

    def records(self, key_id: str | None = None) -> list[UsageRecord]:
        """The ledger's records (newest first), after what the gateway queued is written."""
        ledger = self.gateway.store.ledger
        assert ledger is not None
        assert ledger.flush(timeout=10)
        return recent_records(self.store_url, limit=1000, key_id=key_id)
