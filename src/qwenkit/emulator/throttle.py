"""Rate limits per API key and seeded fault draws.

``RateLimiter.admit`` applies ``ThrottleConfig`` in this order, each a 429 in the caller's wire
(texts and codes in ``qwenkit.emulator.messages``):

1. ``after_requests``: every request after the first N of a key (counted whether admitted or not,
   until ``reset``) → ``Throttling.RateQuota``;
2. ``burst``: more than N admitted requests in the last second → ``Throttling.BurstRate``;
3. ``requests_per_minute``: N admitted requests in the last 60 s → ``Throttling.RateQuota``;
4. ``tokens_per_minute``: the tokens of the last 60 s plus this request's would pass N →
   ``Throttling.AllocationQuota`` (``insufficient_quota`` on the compatible wire).

Windows slide; refused requests do not count against them. Memory is bounded: request times are
kept only for the limits that are set (at most the limit each), token charges are merged into
one entry per second of arrival (at most 60 per key, expiring with their first second), and at
most ``MAX_KEYS`` keys are tracked (least recently seen forgotten).

``FaultPlan.draw`` decides per (key, request number) from a ``random.Random`` seeded with a
SHA-256 of (``FaultsConfig.seed``, key, number): the same seed gives the same faults in every
process, whatever ``PYTHONHASHSEED`` is. Request numbers count from 1 per key.

The real service sends no ``Retry-After`` (reference §8.2); ``retry_after_header`` adds one only
when ``quirks.retry_after_seconds`` is set.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from qwenkit.emulator import messages as m
from qwenkit.emulator.config import FaultsConfig, QuirksConfig, ThrottleConfig
from qwenkit.emulator.generation import Fault
from qwenkit.emulator.messages import Wire
from qwenkit.types import ErrorInfo

__all__ = ["MAX_KEYS", "FaultPlan", "RateLimiter", "retry_after_header"]

MAX_KEYS = 10_000
MINUTE = 60.0
SECOND = 1.0


@dataclass
class _KeyState:
    seen: int = 0
    minute: deque[float] = field(default_factory=deque)
    second: deque[float] = field(default_factory=deque)
    tokens: deque[list[float]] = field(default_factory=deque)
    """``[first arrival, tokens]`` per second of arrival."""
    token_total: float = 0

    def expire(self, now: float) -> None:
        while self.minute and now - self.minute[0] >= MINUTE:
            self.minute.popleft()
        while self.second and now - self.second[0] >= SECOND:
            self.second.popleft()
        while self.tokens and now - self.tokens[0][0] >= MINUTE:
            self.token_total -= self.tokens.popleft()[1]

    def charge(self, now: float, tokens: int) -> None:
        if self.tokens and now - self.tokens[-1][0] < SECOND:
            self.tokens[-1][1] += tokens
        else:
            self.tokens.append([now, float(tokens)])
        self.token_total += tokens


class RateLimiter:
    """Per-key RPM, TPM, burst and "after N requests" limits (see the module docstring)."""

    def __init__(self, config: ThrottleConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._keys: OrderedDict[str, _KeyState] = OrderedDict()

    def reset(self) -> None:
        self._keys.clear()

    def _state(self, key_id: str) -> _KeyState:
        state = self._keys.get(key_id)
        if state is None:
            state = self._keys[key_id] = _KeyState()
            while len(self._keys) > MAX_KEYS:
                self._keys.popitem(last=False)
        self._keys.move_to_end(key_id)
        return state

    def admit(self, key_id: str, tokens: int, *, wire: Wire = "native") -> ErrorInfo | None:
        """``None`` if the request may go on (and is counted), else the 429 to answer.

        ``tokens`` is what the request is charged now (its prompt tokens); ``charge`` adds the
        completion later. ``wire`` picks the compatible or native texts.
        """
        config = self.config
        now = self._clock()
        state = self._state(key_id)
        state.seen += 1
        state.expire(now)
        if config.after_requests is not None and state.seen > config.after_requests:
            return m.rate_quota(wire=wire)
        if config.burst is not None and len(state.second) >= config.burst:
            return m.burst_rate()
        if config.requests_per_minute is not None and (
            len(state.minute) >= config.requests_per_minute
        ):
            return m.rate_quota(wire=wire)
        limit = config.tokens_per_minute
        if limit is not None and state.token_total + tokens > limit:
            return m.allocation_quota(wire=wire)
        if config.burst is not None:
            state.second.append(now)
        if config.requests_per_minute is not None:
            state.minute.append(now)
        if limit is not None:
            state.charge(now, tokens)
        return None

    def charge(self, key_id: str, tokens: int) -> None:
        """Count more tokens against the key's minute (the completion, once it is known)."""
        if self.config.tokens_per_minute is None or tokens <= 0:
            return
        now = self._clock()
        state = self._state(key_id)
        state.expire(now)
        state.charge(now, tokens)


class FaultPlan:
    """Seeded, reproducible faults per (key, request number)."""

    def __init__(self, config: FaultsConfig) -> None:
        self.config = config

    def _random(self, key_id: str, request_number: int) -> random.Random:
        material = f"{self.config.seed}\x00{key_id}\x00{request_number}".encode()
        seed = int.from_bytes(hashlib.sha256(material).digest()[:8], "big")
        return random.Random(seed)

    def _error(self) -> ErrorInfo:
        return m.internal_error() if self.config.error_status == 500 else m.model_unavailable()

    def draw(self, key_id: str, request_number: int) -> ErrorInfo | Fault | None:
        """The fault for the ``request_number``-th request (from 1) of ``key_id``.

        - an ``ErrorInfo`` (500 or 503 per ``error_status``) for the first ``fail_first``
          requests, then with probability ``error_rate``;
        - else a ``Fault`` when ``drop_after_chunks`` or ``stall_after_chunks`` is set (for
          streaming answers; when both are, the earlier one, a drop on a tie);
        - else ``None``.
        """
        if request_number < 1:
            raise ValueError(f"request numbers count from 1, got {request_number}")
        config = self.config
        if request_number <= config.fail_first:
            return self._error()
        if config.error_rate > 0 and self._random(key_id, request_number).random() < (
            config.error_rate
        ):
            return self._error()
        drop, stall = config.drop_after_chunks, config.stall_after_chunks
        if drop is not None and (stall is None or drop <= stall):
            return Fault("drop", after_chunks=drop)
        if stall is not None:
            return Fault("stall", after_chunks=stall, seconds=config.stall_seconds)
        return None


def retry_after_header(config: QuirksConfig) -> dict[str, str]:
    """``{"Retry-After": "<whole seconds, rounded up>"}`` when configured, else ``{}``."""
    seconds = config.retry_after_seconds
    if seconds is None:
        return {}
    return {"Retry-After": str(math.ceil(seconds))}
