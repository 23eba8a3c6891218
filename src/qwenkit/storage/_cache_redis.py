"""The response cache on Redis, shared by every process that opens the same Redis and prefix.

**Keys** (``<prefix>`` from the URL's ``?prefix=``, default ``qwenkit:``): each entry is a string
``<prefix>cache:<cache_key>`` holding an 8-byte header (the expiry time, a big-endian double of
epoch seconds; infinity: none) and the ``_events`` bytes; a lifetime also sets ``PEXPIRE`` so Redis
frees the memory by itself. The sorted set ``<prefix>cache:lru`` scores every key by its last use.

**Atomic scripts.** A store (``SET`` [``PX``], ``ZADD``, then ``ZPOPMIN`` and ``DEL`` of the least
recently used while ``ZCARD`` is over ``max_entries``) and a lookup (``GET`` and a ``ZADD`` of the
new score, or ``ZREM`` of a member whose value Redis already expired) are each one Lua script, so
concurrent processes never see a half-done store and the bound holds exactly. An entry Redis
expired stays a member of the sorted set until a lookup finds it gone or eviction pops it: the
bound counts it, so the live entries are at most ``max_entries``, sometimes fewer. The scripts
``DEL`` keys they compute from the prefix (the eviction victims): fine on one Redis server, not on
Redis Cluster.

The expiry in the header is checked against ``clock`` on every lookup, so an entry is a miss from
the moment it expires by that clock (a fake clock in tests, or a Redis whose expiry runs late);
such an entry, and one this version cannot decode, is deleted (only if it was not replaced since).

**Failures.** The URL is pinged at open with a 2 s connect timeout: an unreachable Redis is a
``StorageError`` naming the masked URL, raised there. At run time every command has a 2 s
connect and 5 s socket timeout and one quick retry (a pooled connection the server closed); a
failure is a ``StorageError`` too, which ``CachePolicy`` logs and treats as a miss. Each event
loop gets its own client (its connections belong to the loop that opened them).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import struct
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import ExponentialBackoff, NoBackoff

from qwenkit._core.cache import CachedResponse
from qwenkit._exceptions import StorageError
from qwenkit._settings import ConfigError
from qwenkit.storage._events import UndecodableEntry, decode_response, encode_response
from qwenkit.storage._urls import StoreURL, parse_store_url

__all__ = ["CONNECT_TIMEOUT", "SOCKET_TIMEOUT", "RedisCache"]

CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 5.0
_HEADER = struct.Struct(">d")

_SET = """
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if excess > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[2], excess)
  for i = 1, #popped, 2 do
    redis.call('DEL', ARGV[6] .. popped[i])
  end
end
return excess
"""
"""KEYS: value, lru. ARGV: value, lifetime ms (0: none), now, member, max_entries, key prefix."""

_GET = """
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
else
  redis.call('ZREM', KEYS[2], ARGV[2])
end
return value
"""
"""KEYS: value, lru. ARGV: now, member."""

_DROP = """
local value = redis.call('GET', KEYS[1])
if value and redis.sha1hex(value) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
"""
"""KEYS: value, lru. ARGV: sha1 of the value seen, member. Deletes only that value."""


class RedisCache:
    """``ResponseCache`` on Redis; see the module docstring.

    ``ttl`` is the default lifetime of an entry in seconds (``None``: until evicted; a ``ttl``
    passed to ``set`` wins); ``clock`` gives epoch seconds (a fake one in tests)."""

    def __init__(
        self,
        url: str | StoreURL,
        *,
        max_entries: int = 10_000,
        ttl: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parsed = parse_store_url(url, part="cache")
        if parsed.backend != "redis":
            raise ConfigError(f"RedisCache needs a redis:// URL, not {parsed.masked}")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be positive (or None)")
        parsed.require_driver()
        self.url = parsed
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._space = f"{parsed.prefix}cache:"
        self._lru = f"{self._space}lru"
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[redis.asyncio.Redis, dict[str, Any]]
        ] = weakref.WeakKeyDictionary()
        self._ping()

    def _ping(self) -> None:
        client = redis.Redis.from_url(
            self.url.redis(),
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=CONNECT_TIMEOUT,
            retry=redis.retry.Retry(NoBackoff(), 0),
        )
        try:
            client.ping()
        except (redis.RedisError, OSError) as exc:
            raise StorageError(
                f"cannot reach the response cache at {self.url.masked}: {exc}", url=self.url.masked
            ) from exc
        finally:
            client.close()

    def _client(self) -> tuple[redis.asyncio.Redis, dict[str, Any]]:
        """The client of the running event loop and its registered scripts."""
        loop = asyncio.get_running_loop()
        opened = self._clients.get(loop)
        if opened is None:
            client = redis.asyncio.Redis.from_url(
                self.url.redis(),
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=SOCKET_TIMEOUT,
                retry=redis.asyncio.retry.Retry(ExponentialBackoff(cap=0.1, base=0.02), 1),
            )
            scripts = {
                "set": client.register_script(_SET),
                "get": client.register_script(_GET),
                "drop": client.register_script(_DROP),
            }
            opened = (client, scripts)
            self._clients[loop] = opened
        return opened

    @asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            yield
        except (redis.RedisError, OSError) as exc:
            raise StorageError(
                f"the response cache at {self.url.masked} failed: {exc}", url=self.url.masked
            ) from exc

    async def get(self, key: str) -> CachedResponse | None:
        now = self._clock()
        _, scripts = self._client()
        keys = [self._space + key, self._lru]
        async with self._errors():
            raw: bytes | None = await scripts["get"](keys=keys, args=[now, key])
            if raw is None:
                return None
            expired = len(raw) < _HEADER.size or _HEADER.unpack_from(raw)[0] <= now
            response = None if expired else _decoded(raw[_HEADER.size :])
            if response is None:
                seen = hashlib.sha1(raw, usedforsecurity=False).hexdigest()
                await scripts["drop"](keys=keys, args=[seen, key])
            return response

    async def set(self, key: str, value: CachedResponse, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``None``: the cache's default); a
        lifetime of 0 or less stores nothing."""
        lifetime = self.ttl if ttl is None else ttl
        if lifetime is not None and lifetime <= 0:
            return
        now = self._clock()
        expires_at = math.inf if lifetime is None else now + lifetime
        data = _HEADER.pack(expires_at) + encode_response(value)
        millis = 0 if lifetime is None else max(1, math.ceil(lifetime * 1000))
        _, scripts = self._client()
        async with self._errors():
            await scripts["set"](
                keys=[self._space + key, self._lru],
                args=[data, millis, now, key, self.max_entries, self._space],
            )

    async def size(self) -> int:
        """The entries stored now (ones Redis expired but not yet dropped included)."""
        client, _ = self._client()
        async with self._errors():
            return int(await client.zcard(self._lru))

    async def clear(self) -> None:
        """Remove every entry (in batches: Redis is never blocked for long)."""
        client, _ = self._client()
        async with self._errors():
            while True:
                popped: list[Any] = await client.zpopmin(self._lru, 500)
                if not popped:
                    return
                await client.delete(*(self._space + member.decode() for member, _ in popped))

    async def aclose(self) -> None:
        """Close the connections of every loop that is still running."""
        current = asyncio.get_running_loop()
        opened, self._clients = list(self._clients.items()), weakref.WeakKeyDictionary()
        for loop, (client, _) in opened:
            if loop is current:
                await client.aclose()
            elif loop.is_running():
                done = asyncio.run_coroutine_threadsafe(client.aclose(), loop)
                await asyncio.wrap_future(done)

    def __repr__(self) -> str:
        return f"RedisCache({self.url.masked!r}, max_entries={self.max_entries}, ttl={self.ttl})"


def _decoded(data: bytes) -> CachedResponse | None:
    try:
        return decode_response(data)
    except UndecodableEntry:
        return None
