"""When to send a failed request again, and how long to wait first (pure: no I/O, no sleeping).

The drivers (sync, async, the gateway's relay) own the sockets and the sleeping; they ask one
``Retrying`` per logical request what to do after each failure::

    retrying = Retrying(policy)
    while True:
        try:
            return send(timeout=retrying.remaining())
        except APIError as error:
            decision = retrying.on_error(error, body_started=stream_started)
            if isinstance(decision, GiveUp):
                raise  # ``error.attempts`` now lists every attempt
            sleep(decision.delay)

What is retried: throttling (429 ``Throttling*``), 500/502/503/504, 408, and failures with no
response at all (``APIConnectionError``, ``APITimeoutError``), each only while no byte of the body
has reached the caller. Never: deterministic 4xx (``InvalidParameter``, ``DataInspectionFailed``,
``InvalidApiKey``, ``ModelNotFound``, ``AccessDenied*``...), account and billing codes
(``Arrearage``, ``AllocationQuota.FreeTierOnly``...) whatever their status, and a stream that
already delivered bytes (``StreamInterruptedError``). An ``x-should-retry: true|false`` header (sent
by the qwenkit gateway, as by OpenAI's) overrides the status, but never the stream rule.

How long: a server's ``Retry-After`` when there is one (DashScope sends none today, proxies and
the qwenkit gateway may), capped by ``retry_after_cap``; otherwise exponential backoff with full
jitter, ``uniform(0, min(max_delay, initial_delay * multiplier ** (attempt - 1)))``. Above a
``Retry-After`` a little jitter (up to 10 %, at most 1 s, never past the cap) is added with
``jitter="full"`` so that clients told the same time do not return in one burst. No wait may cross
the policy's ``deadline`` (seconds since the first attempt started).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Literal, TypeAlias

from qwenkit._exceptions import (
    APIError,
    Attempt,
    StreamInterruptedError,
    UsageError,
    error_from_info,
)
from qwenkit.types.errors import ErrorInfo

__all__ = [
    "NO_RETRIES",
    "Decision",
    "GiveUp",
    "GiveUpReason",
    "Retry",
    "RetryPolicy",
    "Retrying",
    "backoff_ceiling",
    "is_retryable",
    "next_delay",
    "parse_retry_after",
]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. ``max_attempts`` counts the first attempt (1 means never retry);
    ``deadline`` bounds the total time from the first attempt (``None``: no bound)."""

    max_attempts: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    multiplier: float = 2.0
    deadline: float | None = 60.0
    retry_after_cap: float = 60.0
    jitter: Literal["full", "none"] = "full"

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise UsageError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if not (0 <= self.initial_delay <= self.max_delay):
            raise UsageError("need 0 <= initial_delay <= max_delay")
        if self.multiplier < 1:
            raise UsageError(f"multiplier must be at least 1, not {self.multiplier}")
        if self.deadline is not None and not self.deadline > 0:
            raise UsageError(f"deadline must be positive or None, not {self.deadline}")
        if not self.retry_after_cap >= 0:
            raise UsageError(f"retry_after_cap must be >= 0, not {self.retry_after_cap}")
        if self.jitter not in ("full", "none"):
            raise UsageError(f"jitter must be 'full' or 'none', not {self.jitter!r}")


NO_RETRIES = RetryPolicy(max_attempts=1)


# -- what is retryable --------------------------------------------------------------------------


def is_retryable(error: BaseException | ErrorInfo | int, *, body_started: bool = False) -> bool:
    """Whether a failure may pass if the request is sent again.

    ``error`` is an exception, an ``ErrorInfo`` the service reported, or a bare HTTP status.
    ``body_started``: some of the response body already reached the caller; then nothing is
    retried. Exceptions that are not ``APIError`` (the drivers translate transport errors to
    ``APIConnectionError``/``APITimeoutError``) are not retried.
    """
    if body_started or isinstance(error, StreamInterruptedError):
        return False
    if isinstance(error, int):
        error = ErrorInfo(status=error, code="", message="")
    if isinstance(error, ErrorInfo):
        return error_from_info(error).retryable
    return isinstance(error, APIError) and error.retryable


# -- how long to wait ---------------------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, then ``retry-after`` as seconds or
    as an HTTP date (``now`` is the wall-clock time, default ``time.time()``). Header names are
    case-insensitive; a missing, garbage, negative or past value gives ``None``."""
    lowered = {name.lower(): value for name, value in headers.items()}
    millis = _seconds(lowered.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=timezone.utc)
    wait = when.timestamp() - (time.time() if now is None else now)
    return wait if wait >= 0 else None


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def backoff_ceiling(policy: RetryPolicy, attempt: int) -> float:
    """The longest backoff after failed attempt number ``attempt`` (1-based), before jitter."""
    try:
        ceiling = policy.initial_delay * policy.multiplier ** (attempt - 1)
    except OverflowError:
        return policy.max_delay
    return min(policy.max_delay, ceiling)


def next_delay(
    policy: RetryPolicy,
    attempt: int,
    *,
    retry_after: float | None = None,
    elapsed: float = 0.0,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one, or ``None``
    when no retry is allowed: attempts exhausted, or the wait would cross the deadline
    (``elapsed`` is the time since the first attempt started)."""
    if attempt >= policy.max_attempts:
        return None
    uniform = (rng or random).uniform
    if retry_after is not None:
        delay = min(retry_after, policy.retry_after_cap)
        if policy.jitter == "full":
            delay = min(policy.retry_after_cap, delay + uniform(0, min(0.1 * delay, 1.0)))
    else:
        ceiling = backoff_ceiling(policy, attempt)
        delay = uniform(0, ceiling) if policy.jitter == "full" else ceiling
    if policy.deadline is not None and elapsed + delay > policy.deadline:
        return None
    return float(delay)


# -- the per-request state ----------------------------------------------------------------------


GiveUpReason: TypeAlias = Literal["not_retryable", "body_started", "attempts_exhausted", "deadline"]


@dataclass(frozen=True, slots=True)
class Retry:
    """Wait ``delay`` seconds, then make attempt number ``attempt``."""

    delay: float
    attempt: int


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Raise the error; ``attempts`` lists every attempt made."""

    reason: GiveUpReason
    attempts: tuple[Attempt, ...]


Decision: TypeAlias = Retry | GiveUp


@dataclass(slots=True)
class Retrying:
    """The retry state of one logical request. The clock starts when it is created; ``clock``
    (monotonic), ``wall_clock`` (for HTTP-date ``Retry-After``) and ``rng`` can be injected."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    rng: random.Random | None = None
    attempts: tuple[Attempt, ...] = field(default=(), init=False)
    _start: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._start = self.clock()

    @property
    def attempt(self) -> int:
        """The number of the attempt in progress (1 for the first)."""
        return len(self.attempts) + 1

    @property
    def elapsed(self) -> float:
        return self.clock() - self._start

    def remaining(self) -> float | None:
        """Seconds left before the deadline (``None``: no deadline), to bound an attempt's timeout."""
        if self.policy.deadline is None:
            return None
        return max(0.0, self.policy.deadline - self.elapsed)

    def on_error(
        self,
        error: BaseException,
        *,
        headers: Mapping[str, str] | None = None,
        body_started: bool = False,
    ) -> Decision:
        """Record the failed attempt and decide. ``headers`` are the response's (default: the
        error's own). On ``GiveUp`` an ``APIError`` also gets the ``attempts``."""
        if headers is None:
            headers = error.headers if isinstance(error, APIError) else {}
        elapsed = self.elapsed
        outcome = self._decide(error, headers, body_started, elapsed)
        delay = None if isinstance(outcome, str) else outcome
        self.attempts = (*self.attempts, _attempt(self.attempt, error, elapsed, delay))
        if not isinstance(outcome, str):
            return Retry(outcome, self.attempt)
        if isinstance(error, APIError):
            error.attempts = self.attempts
        return GiveUp(outcome, self.attempts)

    def _decide(
        self, error: BaseException, headers: Mapping[str, str], body_started: bool, elapsed: float
    ) -> GiveUpReason | float:
        if body_started or isinstance(error, StreamInterruptedError):
            return "body_started"
        if not _should_retry(error, headers):
            return "not_retryable"
        if self.attempt >= self.policy.max_attempts:
            return "attempts_exhausted"
        retry_after = parse_retry_after(headers, now=self.wall_clock()) if headers else None
        delay = next_delay(
            self.policy, self.attempt, retry_after=retry_after, elapsed=elapsed, rng=self.rng
        )
        return "deadline" if delay is None else delay


def _should_retry(error: BaseException, headers: Mapping[str, str]) -> bool:
    for name, value in headers.items():
        if name.lower() == "x-should-retry":
            flag = value.strip().lower()
            if flag in ("true", "false"):
                return flag == "true"
    return is_retryable(error)


def _attempt(number: int, error: BaseException, elapsed: float, delay: float | None) -> Attempt:
    if isinstance(error, APIError):
        status, code = error.status, error.code
    else:
        status, code = None, None
    return Attempt(
        number=number,
        error=f"{type(error).__name__}: {error}",
        status=status,
        code=code,
        elapsed=elapsed,
        delay=delay,
    )
