"""Client-side limits of a batch: an AIMD concurrency limit and token buckets (rpm, tpm).

``AIMDLimit`` starts at its maximum, halves on a throttle (``decrease``) and grows by one after
``limit`` successes in a row at the current limit (``increase``), never above ``maximum``.
``TokenBucket`` refills ``rate_per_minute`` units a minute, up to one minute's worth, and
``acquire(n)`` waits until ``n`` are available (a request larger than the bucket waits for a
full bucket and takes it all).
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["AIMDLimit", "TokenBucket"]


class AIMDLimit:
    """An adaptive bound on requests in flight (additive increase, multiplicative decrease)."""

    def __init__(self, maximum: int) -> None:
        if maximum < 1:
            raise ValueError(f"concurrency must be at least 1, not {maximum}")
        self.maximum = maximum
        self.limit = maximum
        self.in_flight = 0
        self.decreases = 0
        self._successes = 0
        self._changed = asyncio.Condition()

    async def acquire(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1

    async def release(self, *, throttled: bool = False, ok: bool = True) -> None:
        async with self._changed:
            self.in_flight -= 1
            if throttled:
                self.decrease()
            elif ok:
                self.increase()
            self._changed.notify_all()

    def decrease(self) -> None:
        self.limit = max(1, self.limit // 2)
        self._successes = 0
        self.decreases += 1

    def increase(self) -> None:
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.maximum:
            self.limit += 1
            self._successes = 0


class TokenBucket:
    """``rate_per_minute`` units a minute, bursting up to one minute's worth."""

    def __init__(self, rate_per_minute: float) -> None:
        if rate_per_minute <= 0:
            raise ValueError(f"a rate must be positive, not {rate_per_minute}")
        self.capacity = float(rate_per_minute)
        self.rate = rate_per_minute / 60.0
        self.tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, amount: float = 1.0) -> None:
        amount = min(amount, self.capacity)
        async with self._lock:
            self._refill()
            while self.tokens < amount:
                await asyncio.sleep((amount - self.tokens) / self.rate)
                self._refill()
            self.tokens -= amount
