"""``ObservePolicy``: the timings of a call and the reasoning side channel (pipeline step "observe").

It watches the events without changing them:

- **timings**: ``call.timings.first_reasoning`` at the first reasoning delta,
  ``call.timings.first_content`` at the first answer token (a content delta or a tool-call
  fragment) and ``call.timings.finished`` when the stream ends normally; time to first token,
  time to first reasoning and time to first answer all derive from them;
- **reasoning**: every reasoning delta goes to ``on_reasoning(text)`` (an optional callback,
  called in the event loop's thread: keep it quick), and the whole reasoning of the call is logged
  once, at DEBUG, on the ``qwenkit.reasoning`` logger, when the call ends (also when it fails or
  is abandoned). Nothing here ever puts reasoning into ``content``.

The logger ``qwenkit.reasoning`` has no handler of its own, so reasoning is never printed unless
the application configures logging for it at DEBUG: reasoning can contain what the user wrote, and
it is not meant for end users.

Place it after the usage policy (which reads the timings when the call ends) and before the cache
(so a replayed answer is timed and its reasoning reaches the side channel like a live one).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from qwenkit._core.pipeline import Call, EventStream, Handler
from qwenkit.types import ContentDelta, ReasoningDelta, ResponseStarted, ToolCallDelta

__all__ = ["REASONING_LOGGER", "ObservePolicy", "ReasoningCallback"]

REASONING_LOGGER = "qwenkit.reasoning"
ReasoningCallback = Callable[[str], object]
"""Receives each reasoning delta's text, in order."""


class ObservePolicy:
    """Time the first reasoning and answer tokens and the end; send reasoning to the side channel."""

    def __init__(
        self,
        on_reasoning: ReasoningCallback | None = None,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        self.on_reasoning = on_reasoning
        self.logger = logger or logging.getLogger(REASONING_LOGGER)

    async def __call__(self, call: Call, call_next: Handler) -> EventStream:
        timings = call.timings
        log = self.logger.isEnabledFor(logging.DEBUG)
        reasoning: list[str] = []
        stream = call_next(call)
        try:
            async for event in stream:
                if isinstance(event, ReasoningDelta):
                    if timings.first_reasoning is None:
                        timings.first_reasoning = time.perf_counter()
                    if log:
                        reasoning.append(event.text)
                    if self.on_reasoning is not None:
                        self.on_reasoning(event.text)
                elif isinstance(event, (ContentDelta, ToolCallDelta)):
                    if timings.first_content is None:
                        timings.first_content = time.perf_counter()
                elif isinstance(event, ResponseStarted) and call.request_id is None:
                    call.request_id = event.request_id
                yield event
            timings.finished = time.perf_counter()
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:  # an early stop closes the upstream response now, not at GC
                await aclose()
            if reasoning:
                self.logger.debug(
                    "reasoning of %s (request %s): %s",
                    call.request.model,
                    call.request_id,
                    "".join(reasoning),
                )

    def __repr__(self) -> str:
        return f"ObservePolicy(on_reasoning={self.on_reasoning!r})"
