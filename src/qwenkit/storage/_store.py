"""``Store``: the parts of storage one client or gateway uses, opened from URLs.

``Store.open("sqlite:///qwenkit.db")`` opens every part on one SQLite file;
``Store.open(ledger="postgresql://...", budgets="redis://...", cache="redis://...")`` puts each
part where it scales; ``Store.open(settings=Settings.load())`` takes ``QWENKIT_STORE_URL`` and the
per-part ``QWENKIT_*_URL``. Each SQL database is migrated once on open (``migrate=False`` to
skip, e.g. when ``qwenkit db upgrade`` runs at deploy time), and an unreachable one is a
``StorageError`` naming its URL, at open, never later on the first call.

Closing (``await store.aclose()`` or ``store.close()`` from sync code) flushes the ledger and
releases the connections. The async parts (budgets, cache, keys) open their connections lazily
in the event loop that first uses them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from qwenkit._settings import Settings
from qwenkit.storage._protocols import Budgets, Keys, Ledger, ResponseCache
from qwenkit.storage._urls import Part, StoreURL, configured_url, parse_store_url

__all__ = ["Store", "upgrade_store"]

_PARTS: tuple[Part, ...] = ("ledger", "budgets", "cache", "keys")


@dataclass
class Store:
    """The opened parts (``None``: not configured). Build with ``Store.open``."""

    ledger: Ledger | None = None
    budgets: Budgets | None = None
    cache: ResponseCache | None = None
    keys: Keys | None = None
    urls: dict[Part, StoreURL] = field(default_factory=dict)
    """The URL of each opened part (``str()`` masks passwords)."""

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        ledger: str | None = None,
        budgets: str | None = None,
        cache: str | None = None,
        keys: str | None = None,
        settings: Settings | None = None,
        parts: Iterable[Part] = _PARTS,
        migrate: bool = True,
        timezone: str | None = None,
        cache_max_entries: int = 10_000,
        cache_ttl: float | None = None,
        ledger_options: dict[str, Any] | None = None,
    ) -> Store:
        """Open ``parts`` at their URLs: the part's own argument, else ``url``, else the
        settings (a part with no URL at all stays ``None``). A Redis ``url`` serves only the
        budgets and the cache; the ledger and the keys need SQL."""
        given: dict[Part, str | None] = {
            "ledger": ledger,
            "budgets": budgets,
            "cache": cache,
            "keys": keys,
        }
        wanted = tuple(parts)
        config = settings or Settings.load()
        chosen: dict[Part, StoreURL] = {}
        for part in wanted:
            raw = given[part] or _shared(url, part) or configured_url(config, part)
            if raw:
                chosen[part] = parse_store_url(raw, part=part)
        if migrate:
            for sql in {parsed.raw: parsed for parsed in chosen.values() if parsed.is_sql}.values():
                upgrade_store(sql)
        store = cls(urls=dict(chosen))
        zone = timezone or config.budget_timezone
        try:
            if "ledger" in chosen:
                from qwenkit.storage._ledger import open_ledger

                store.ledger = open_ledger(
                    chosen["ledger"], migrate=False, **(ledger_options or {})
                )
            if "budgets" in chosen:
                from qwenkit.storage._budgets import open_budgets

                store.budgets = open_budgets(chosen["budgets"], timezone=zone, migrate=False)
            if "cache" in chosen:
                from qwenkit.storage._cache import open_cache

                store.cache = open_cache(
                    chosen["cache"], max_entries=cache_max_entries, ttl=cache_ttl, migrate=False
                )
            if "keys" in chosen:
                from qwenkit.storage._keys import open_keys

                store.keys = open_keys(chosen["keys"], migrate=False)
        except BaseException:
            store.close_ledger()
            raise
        return store

    def close_ledger(self, timeout: float | None = 10.0) -> None:
        """Flush and stop the ledger (sync; safe to call twice)."""
        if self.ledger is not None:
            self.ledger.close(timeout)

    async def aclose(self) -> None:
        """Flush the ledger, close the budgets, cache and keys connections."""
        import anyio.to_thread

        await anyio.to_thread.run_sync(self.close_ledger)
        for part in (self.budgets, self.cache, self.keys):
            closer = getattr(part, "aclose", None)
            if closer is not None:
                await closer()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        shown = ", ".join(f"{part}={url.masked}" for part, url in self.urls.items())
        return f"Store({shown})"


def upgrade_store(url: str | StoreURL, revision: str = "head") -> str | None:
    """Migrate the SQL store at ``url`` to ``revision`` (a ``StorageError`` naming the URL when it
    cannot be reached); returns the revision it was at. Idempotent; what ``qwenkit db upgrade``
    runs."""
    parsed = parse_store_url(url, part="ledger")
    parsed.require_driver()
    from qwenkit.storage import _migrate  # SQLAlchemy and Alembic load only when a store is used

    return _migrate.upgrade_store(parsed, revision)


def _shared(url: str | None, part: Part) -> str | None:
    """``url`` for ``part``, unless it is a Redis URL and the part needs SQL."""
    if url is None:
        return None
    if part in ("ledger", "keys") and url.split("://", 1)[0].lower() in ("redis", "rediss"):
        return None
    return url
