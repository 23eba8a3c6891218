"""``Send``: the last handler of the pipeline, the upstream call with retries and the total timeout.

Each attempt is one event stream from the upstream (``Upstream.events``). What happens when it
fails depends on whether an event has already gone downstream:

- **before the first event** the failure is the upstream's answer to the request (an error
  status, a connection or read error, a stream cut before its first chunk), and ``Retrying``
  decides: retryable failures (429 throttling, 500/502/503/504, 408, connection errors and read
  timeouts) wait (``Retry-After`` when the server sent one, otherwise exponential backoff with full
  jitter) and go again, within ``max_attempts`` and the deadline; anything else is raised at once.
  Every failed attempt is appended to ``call.attempts`` (an ``Attempt``: status, code, elapsed,
  the wait that followed), and the error that is finally raised carries them all in ``attempts``.
- **after the first event** nothing is retried: the caller has seen part of an answer, and a
  second answer would not continue it. The failure is raised as ``StreamInterruptedError`` whose
  ``partial`` is the response assembled from the events that went through, with the status, code
  and ``ErrorInfo`` of the cause (also its ``__cause__``).

The total timeout (``Timeout.total``) is the budget of the whole call: it bounds each wait for
the next event of each attempt (with ``anyio.fail_after``, never across a ``yield``, so the
caller's own code is never cancelled by it) and it caps the retry deadline, so no retry starts
that could not finish in time. Running out raises ``APITimeoutError`` (not retried).

Waiting uses ``anyio.sleep`` (injectable, with the clock and the jitter's random generator, for
tests). Closing the returned stream early (``aclose()``) closes the attempt's HTTP response.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio

from qwenkit._core.pipeline import Call, EventStream, Handler
from qwenkit._core.retries import GiveUp, Retrying, RetryPolicy
from qwenkit._exceptions import APIError, APITimeoutError, StreamInterruptedError, WireError
from qwenkit._timeouts import DEFAULT_TIMEOUT, Timeout
from qwenkit.streaming import StreamAssembler
from qwenkit.types import Event

__all__ = ["Send"]

_log = logging.getLogger("qwenkit.retries")


class Send:
    """The send handler: ``attempt`` (one upstream attempt, e.g. ``Upstream.events``) with
    retries and the total timeout; see the module docstring."""

    def __init__(
        self,
        attempt: Handler,
        *,
        retry: RetryPolicy | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.attempt = attempt
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._rng = rng

    def __call__(self, call: Call) -> EventStream:
        return self._run(call)

    def _retrying(self) -> Retrying:
        policy, total = self.retry, self.timeout.total
        if total is not None and (policy.deadline is None or total < policy.deadline):
            policy = dataclasses.replace(policy, deadline=total)
        return Retrying(policy, clock=self._clock, rng=self._rng)

    async def _run(self, call: Call) -> EventStream:
        retrying = self._retrying()
        total = self.timeout.total
        deadline = None if total is None else self._clock() + total
        events, event = await self._start(call, retrying, deadline)
        seen = StreamAssembler()  # what went downstream, folded (not every event kept)
        try:
            while event is not None:
                seen.add(event)
                yield event
                try:
                    event = await self._next(events, deadline)
                except (APIError, WireError) as error:
                    raise _interrupted(error, call, retrying, seen) from error
        finally:
            await _close(events)

    async def _start(
        self, call: Call, retrying: Retrying, deadline: float | None
    ) -> tuple[EventStream, Event | None]:
        """The first attempt that gives an event, with that event (failures before it retried)."""
        while True:
            events = self.attempt(call)
            try:
                return events, await self._next(events, deadline)
            except APIError as error:
                await _close(events)
                decision = retrying.on_error(error)
                call.attempts.append(retrying.attempts[-1])
                if isinstance(decision, GiveUp):
                    raise
                _log.info(
                    "attempt %d of %s failed (%s); retrying in %.2f s",
                    decision.attempt - 1,
                    call.request.model,
                    error,
                    decision.delay,
                )
                await self._sleep(decision.delay)

    async def _next(self, events: EventStream, deadline: float | None) -> Event | None:
        """The next event (``None`` at the end), waiting no later than ``deadline``."""
        if deadline is None:
            return await anext(events, None)
        try:
            with anyio.fail_after(max(0.0, deadline - self._clock())):
                return await anext(events, None)
        except TimeoutError:
            raise APITimeoutError(
                f"the call took longer than its total timeout ({self.timeout.total} s)"
            ) from None


def _interrupted(
    error: APIError | WireError, call: Call, retrying: Retrying, assembler: StreamAssembler
) -> StreamInterruptedError:
    """The error of a stream that failed after what ``assembler`` holds went downstream (never
    retried)."""
    retrying.on_error(error, body_started=True)
    call.attempts.append(retrying.attempts[-1])
    api = error if isinstance(error, APIError) else None
    cause = api.message if api is not None else str(error)
    interrupted = StreamInterruptedError(
        f"the stream failed after part of the answer was received: {cause}",
        partial=assembler.snapshot(),
        status=api.status if api else None,
        code=api.code if api else None,
        request_id=call.request_id or (api.request_id if api else None),
        error=api.error if api else None,
        body=api.body if api else None,
    )
    interrupted.attempts = retrying.attempts
    return interrupted


async def _close(events: AsyncIterator[Event]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
