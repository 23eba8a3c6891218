"""The response cache on SQL (``qk_cache``, SQLite or PostgreSQL), shared by every process that
opens the same database; and ``open_cache``, which picks the SQL or the Redis backend by URL.

**Entries.** One row per ``cache_key``: the response as ``_events`` bytes, ``expires_at`` (epoch
seconds, ``NULL``: until evicted) and ``used_at``, the last hit or store (the LRU order). A
lookup of an expired row is a miss and deletes it; so is a row this version cannot decode.
``used_at`` is rewritten by a hit only when it is older than ``TOUCH_RESOLUTION`` seconds: the
LRU order is exact to that resolution, and a burst of hits on one hot entry costs one write, not
one each. ``set`` is an upsert (``INSERT ... ON CONFLICT DO UPDATE``, both dialects), so
concurrent stores of one key leave one of the values, never an error.

**The size bound.** Counting the rows is a scan, too slow to run on every store; so each
process checks every ``check_every`` of its stores (``max_entries // 100``, between 1 and 64),
inside the transaction of that store: it deletes the expired rows, then the least recently used
ones down to ``max_entries - check_every + 1``. With one process writing, the table therefore never
holds more than ``max_entries`` rows; with ``N`` processes writing at once, at most
``max_entries + (N - 1) * (check_every - 1)`` (each may have stored ``check_every - 1`` rows since
its last check). The first store of a process always checks, so a lowered ``max_entries`` takes
effect at once.

**Failures.** A database error (unreachable, locked past the busy timeout, schema missing) is a
``StorageError`` naming the masked URL; ``CachePolicy`` logs it and treats the call as a miss.

**Where it runs.** Each operation is one transaction on a sync engine in a worker thread
(``ThreadedEngines``: one thread hop instead of SQLAlchemy's asyncio adapters, which cost a
greenlet and thread round per statement; on SQLite a lookup went from about 2.9 ms to a fraction
of that). The statements of ``get`` and ``set`` are built once. Any event loop can use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from qwenkit._core.cache import CachedResponse
from qwenkit._settings import ConfigError
from qwenkit.storage._events import UndecodableEntry, decode_response, encode_response
from qwenkit.storage._schema import cache_entries
from qwenkit.storage._sql import ThreadedEngines, storage_errors
from qwenkit.storage._urls import StoreURL, parse_store_url

__all__ = ["TOUCH_RESOLUTION", "SQLCache"]

TOUCH_RESOLUTION = 1.0
"""Seconds: a hit rewrites ``used_at`` only when it is older than this."""
_MAX_CHECK_EVERY = 64


class SQLCache:
    """``ResponseCache`` on the ``qk_cache`` table; see the module docstring.

    ``ttl`` is the default lifetime of an entry in seconds (``None``: until evicted; a ``ttl``
    passed to ``set`` wins); ``clock`` gives epoch seconds (a fake one in tests). ``migrate``
    brings the schema up to date at open (an unreachable database is a ``StorageError`` here)."""

    def __init__(
        self,
        url: str | StoreURL,
        *,
        max_entries: int = 10_000,
        ttl: float | None = None,
        clock: Callable[[], float] = time.time,
        migrate: bool = True,
    ) -> None:
        parsed = parse_store_url(url, part="cache")
        if not parsed.is_sql:
            raise ConfigError(f"SQLCache needs a SQLite or PostgreSQL URL, not {parsed.masked}")
        _check_bounds(max_entries, ttl)
        parsed.require_driver()
        if migrate:
            from qwenkit.storage._migrate import upgrade_store

            upgrade_store(parsed)
        self.url = parsed
        self.max_entries = max_entries
        self.ttl = ttl
        self.check_every = max(1, min(_MAX_CHECK_EVERY, max_entries // 100))
        self._keep = max_entries - self.check_every + 1
        self._clock = clock
        self._engines = ThreadedEngines(parsed)
        self._stores = 0
        t = cache_entries
        self._lookup = select(t.c.value, t.c.expires_at, t.c.used_at, t.c.created_at).where(
            t.c.key == bindparam("k")
        )
        insert = postgresql.insert if parsed.backend == "postgresql" else sqlite.insert
        upsert = insert(t)
        self._upsert = upsert.on_conflict_do_update(
            index_elements=[t.c.key],
            set_={
                name: upsert.excluded[name]
                for name in ("value", "size", "created_at", "expires_at", "used_at")
            },
        )

    async def get(self, key: str) -> CachedResponse | None:
        async with storage_errors(self.url, "response cache"):
            return await self._engines.run(self._get, key, self._clock())

    def _get(self, key: str, now: float) -> CachedResponse | None:
        t = cache_entries
        with self._engines.read.connect() as conn:
            row = conn.execute(self._lookup, {"k": key}).first()
        if row is None:
            return None
        value, expires_at, used_at, created_at = row
        if expires_at is not None and expires_at <= now:
            self._drop(key, t.c.expires_at <= now)
            return None
        try:
            response = decode_response(value)
        except UndecodableEntry:
            self._drop(key, t.c.created_at == created_at)
            return None
        if now - used_at >= TOUCH_RESOLUTION:
            with self._engines.write.begin() as conn:
                conn.execute(update(t).where(t.c.key == key).values(used_at=now))
        return response

    async def set(self, key: str, value: CachedResponse, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``None``: the cache's default); a
        lifetime of 0 or less stores nothing."""
        lifetime = self.ttl if ttl is None else ttl
        if lifetime is not None and lifetime <= 0:
            return
        now = self._clock()
        blob = encode_response(value)
        row = {
            "key": key,
            "value": blob,
            "size": len(blob),
            "created_at": now,
            "expires_at": None if lifetime is None else now + lifetime,
            "used_at": now,
        }
        check = self._stores % self.check_every == 0
        self._stores += 1
        async with storage_errors(self.url, "response cache"):
            await self._engines.run(self._set, row, check, now)

    def _set(self, row: dict[str, Any], check: bool, now: float) -> None:
        with self._engines.write.begin() as conn:
            conn.execute(self._upsert, row)
            if check:
                self._evict(conn, now)

    async def size(self) -> int:
        """The rows stored now (expired ones not yet removed included)."""
        async with storage_errors(self.url, "response cache"):
            return await self._engines.run(self._size)

    def _size(self) -> int:
        with self._engines.read.connect() as conn:
            counted = conn.execute(select(func.count()).select_from(cache_entries))
            return int(counted.scalar_one())

    async def clear(self) -> None:
        """Remove every entry."""
        async with storage_errors(self.url, "response cache"):
            await self._engines.run(self._clear)

    def _clear(self) -> None:
        with self._engines.write.begin() as conn:
            conn.execute(delete(cache_entries))

    async def aclose(self) -> None:
        await self._engines.aclose()

    def _evict(self, conn: Connection, now: float) -> None:
        t = cache_entries
        conn.execute(delete(t).where(t.c.expires_at <= now))
        count = conn.execute(select(func.count()).select_from(t)).scalar_one()
        excess = int(count) - self._keep
        if excess > 0:
            oldest = select(t.c.key).order_by(t.c.used_at, t.c.key).limit(excess)
            conn.execute(delete(t).where(t.c.key.in_(oldest)))

    def _drop(self, key: str, condition: Any) -> None:
        """Delete the row of ``key`` if ``condition`` still holds (not a fresh value stored
        meanwhile by another caller)."""
        t = cache_entries
        with self._engines.write.begin() as conn:
            conn.execute(delete(t).where(t.c.key == key, condition))

    def __repr__(self) -> str:
        return f"SQLCache({self.url.masked!r}, max_entries={self.max_entries}, ttl={self.ttl})"


def _check_bounds(max_entries: int, ttl: float | None) -> None:
    if max_entries < 1:
        raise ValueError("max_entries must be at least 1")
    if ttl is not None and ttl <= 0:
        raise ValueError("ttl must be positive (or None)")
