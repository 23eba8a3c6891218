"""``open_cache``: the response cache at a URL (SQL or Redis), importing only that backend's
driver (a Redis-only install never loads SQLAlchemy)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from qwenkit.storage._urls import StoreURL, parse_store_url

if TYPE_CHECKING:
    from qwenkit.storage._cache_redis import RedisCache
    from qwenkit.storage._cache_sql import SQLCache

__all__ = ["open_cache"]


def open_cache(
    url: str | StoreURL,
    *,
    max_entries: int = 10_000,
    ttl: float | None = None,
    clock: Callable[[], float] = time.time,
    migrate: bool = True,
) -> SQLCache | RedisCache:
    """The response cache at ``url``: ``SQLCache`` for SQLite and PostgreSQL, ``RedisCache`` for
    Redis (``migrate`` does not apply to Redis; it is pinged at open instead)."""
    parsed = parse_store_url(url, part="cache")
    if parsed.backend == "redis":
        from qwenkit.storage._cache_redis import RedisCache

        return RedisCache(parsed, max_entries=max_entries, ttl=ttl, clock=clock)
    from qwenkit.storage._cache_sql import SQLCache

    return SQLCache(parsed, max_entries=max_entries, ttl=ttl, clock=clock, migrate=migrate)
