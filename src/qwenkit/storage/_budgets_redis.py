"""Budget counters in Redis: the atomic primitives of ``_budgets``, one Lua script each.

Every key of one store is ``<prefix>{<prefix>budgets}:<rest>`` (``prefix`` from ``?prefix=``,
default ``qwenkit:``): it starts with the prefix, so ``SCAN <prefix>*`` finds them all, and its
hash tag ``{<prefix>budgets}`` puts them in one cluster slot, which the scripts need (their
sweep reaches keys not passed in ``KEYS``; see ``_budgets_lua``). The key layout and the scripts
are in ``_budgets_lua``; scripts run with ``EVALSHA`` (redis-py loads them once per server).

The client is ``redis.asyncio`` with connect and read timeouts (2 s) and a blocking pool (a
burst of calls waits for a connection rather than opening hundreds), created lazily in the event
loop that first uses it (one per loop). ``ping()`` checks the server from sync code when the
store opens. Redis errors become ``StorageError`` naming the masked URL.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio
from redis.commands.core import AsyncScript

from qwenkit._exceptions import StorageError
from qwenkit.storage._budgets_lua import READ, RESERVE, SETTLE
from qwenkit.storage._protocols import Charge, Reservation
from qwenkit.storage._urls import StoreURL

__all__ = ["RedisCounters"]

TIMEOUT = 2.0
"""Seconds to connect to, or wait for an answer from, the Redis server."""
MAX_CONNECTIONS = 64


class _Client:
    """The client of one event loop and its registered scripts."""

    def __init__(self, url: StoreURL) -> None:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url.redis(),
            max_connections=MAX_CONNECTIONS,
            timeout=TIMEOUT * 5,
            socket_connect_timeout=TIMEOUT,
            socket_timeout=TIMEOUT,
            decode_responses=True,
        )
        self.redis = redis.asyncio.Redis(connection_pool=pool)
        self.reserve: AsyncScript = self.redis.register_script(RESERVE)
        self.settle: AsyncScript = self.redis.register_script(SETTLE)
        self.read: AsyncScript = self.redis.register_script(READ)


class RedisCounters:
    """``BudgetCounters`` on Redis (see the module docstring)."""

    def __init__(self, url: StoreURL, *, grace: float, keep: float, batch: int) -> None:
        self.url = url
        self.grace = grace
        self.keep = keep
        self.batch = batch
        self.base = f"{url.prefix}{{{url.prefix}budgets}}:"
        self._zset = self.base + "z"
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Client] = (
            weakref.WeakKeyDictionary()
        )

    def ping(self) -> None:
        """Reach the server once (sync, bounded by the connect timeout) or raise."""
        client = redis.Redis.from_url(
            self.url.redis(), socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT
        )
        try:
            client.ping()
        except redis.RedisError as exc:
            raise self._error(exc, "cannot reach") from exc
        finally:
            client.close()

    def counter_key(self, charge: Charge) -> str:
        return f"{self.base}c:{charge.window}:{charge.scope}"

    def _client(self) -> _Client:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = _Client(self.url)
        return client

    def _sweep_args(self, now: float) -> list[Any]:
        return [self.base, repr(now), self.batch, _ms(self.keep)]

    async def _run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise self._error(exc, "failed at") from exc

    async def reserve(
        self, charges: Sequence[Charge], reservation_id: str, expires_at: float, now: float
    ) -> tuple[int, int, int] | None:
        client = self._client()
        keys = [self._zset, self.base + "r:" + reservation_id]
        args = [*self._sweep_args(now), reservation_id, repr(expires_at)]
        args.append(_ms(expires_at - now + self.keep))
        for charge in charges:
            keys.append(self.counter_key(charge))
            args += [charge.amount, charge.limit, _ms(charge.resets_at + self.grace - now)]
        answer = await self._run(client.reserve, keys, args)
        if answer == 0:
            return None
        index, spent, held = answer
        return int(index) - 1, int(spent), int(held)

    async def settle(self, reservation: Reservation, actual: Sequence[int], now: float) -> None:
        client = self._client()
        keys = [
            self._zset,
            self.base + "r:" + reservation.id,
            self.base + "t:" + reservation.id,
            *(self.counter_key(charge) for charge in reservation.charges),
        ]
        args = [*self._sweep_args(now), reservation.id, *actual]
        await self._run(client.settle, keys, args)

    async def read(self, charges: Sequence[Charge], now: float) -> Sequence[tuple[int, int]]:
        client = self._client()
        keys = [self._zset, *(self.counter_key(charge) for charge in charges)]
        values = await self._run(client.read, keys, self._sweep_args(now))
        return [(int(values[i]), int(values[i + 1])) for i in range(0, len(values), 2)]

    async def aclose(self) -> None:
        """Close the client of the running loop (those of other loops are dropped)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        self._clients.clear()
        if client is not None:
            await client.redis.aclose(close_connection_pool=True)

    def _error(self, exc: BaseException, what: str) -> StorageError:
        message = str(exc).strip().splitlines()
        detail = message[0] if message else type(exc).__name__
        return StorageError(
            f"{what} the budget store at {self.url.masked}: {detail}", url=self.url.masked
        )

    def __repr__(self) -> str:
        return f"RedisCounters({self.url.masked!r})"


def _ms(seconds: float) -> int:
    """Milliseconds for ``PEXPIRE``/``PX`` (at least 1: 0 or less is refused or deletes)."""
    return max(1, math.ceil(seconds * 1000))
