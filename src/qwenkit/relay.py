"""Forward a model stream to your own clients with backpressure: ``relay`` and ``sse_frames``.

An application server that passes a model's stream on (SSE to a browser, a WebSocket) has two
speeds to reconcile: the upstream's and its client's. ``relay(stream, send, max_buffer=32)``
puts a bounded queue between them::

    upstream ──► producer ──► [ at most max_buffer items ] ──► consumer ──► await send(item)

- **backpressure**: when ``send`` is slow (a slow client, a full socket buffer), the queue fills,
  the producer waits, and the upstream is read no faster than the client takes it; memory stays
  bounded (``max_buffer`` items queued plus the one the producer holds). TCP flow control then
  slows the model's connection itself;
- **the client goes away** (``send`` raises, or the task running ``relay`` is cancelled, as ASGI
  servers do on a disconnect): the producer is cancelled and the upstream stream is closed
  (``aclose()``, so the model connection is released at once); ``send``'s error propagates;
- **the upstream fails**: the consumer stops and the upstream's error propagates (what was already
  queued is not sent).

Errors come out as they were raised (never wrapped in an ``ExceptionGroup``). ``relay`` returns
when the upstream ended and everything was sent.

``sse_frames(events)`` turns ``AsyncQwen.stream`` events (or ``text_stream`` strings) into SSE
bytes for browsers: one ``data:`` line of JSON per event, ``{"type": "content", "text": ...}``
for answer text, ``tool_call``, ``usage``, ``finish``, ``start`` and ``error``, and ``{"type":
"done"}`` at the end. The model's reasoning is **never** sent unless ``include_reasoning=True``
(``{"type": "reasoning", "text": ...}``). A ``QwenError`` of the upstream becomes a last ``error``
frame (code and message only; logged on ``qwenkit``) since the HTTP status is already sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio

from qwenkit._exceptions import APIError, QwenError, UsageError
from qwenkit.types import (
    ContentDelta,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    StreamError,
    ToolCallDelta,
    UsageReported,
)

__all__ = ["relay", "sse_frames"]

T = TypeVar("T")
_log = logging.getLogger("qwenkit")


async def relay(
    stream: AsyncIterable[T], send: Callable[[T], Awaitable[None]], *, max_buffer: int = 32
) -> None:
    """Send every item of ``stream`` with ``send`` through a queue of ``max_buffer`` items."""
    if max_buffer < 0:
        raise UsageError(f"max_buffer must be 0 or more, got {max_buffer}")
    outbox, inbox = anyio.create_memory_object_stream[T](max_buffer)
    failures: list[Exception] = []

    async def produce() -> None:
        try:
            async with outbox:
                async for item in stream:
                    await outbox.send(item)
        finally:
            with anyio.CancelScope(shield=True):  # close even when cancelled
                await _aclose(stream)

    async def consume() -> None:
        async with inbox:
            async for item in inbox:
                await send(item)

    async with anyio.create_task_group() as group:

        async def guarded(side: Callable[[], Awaitable[None]]) -> None:
            try:
                await side()
            except Exception as exc:  # the first failure stops both sides, then is re-raised
                failures.append(exc)
                group.cancel_scope.cancel()

        group.start_soon(guarded, produce)
        group.start_soon(guarded, consume)
    if failures:
        raise failures[0]


async def _aclose(stream: object) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def _frame(data: dict[str, Any]) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def _payload(event: Event | str, include_reasoning: bool) -> dict[str, Any] | None:
    if isinstance(event, str):
        return {"type": "content", "text": event} if event else None
    if isinstance(event, ContentDelta):
        return {"type": "content", "text": event.text, "choice": event.choice}
    if isinstance(event, ReasoningDelta):
        if not include_reasoning:
            return None
        return {"type": "reasoning", "text": event.text, "choice": event.choice}
    if isinstance(event, ToolCallDelta):
        return {
            "type": "tool_call",
            "index": event.index,
            "id": event.id,
            "name": event.name,
            "arguments": event.arguments,
            "choice": event.choice,
        }
    if isinstance(event, UsageReported):
        return {"type": "usage", "usage": event.usage.model_dump(exclude_none=True)}
    if isinstance(event, Finished):
        return {"type": "finish", "reason": event.reason, "choice": event.choice}
    if isinstance(event, ResponseStarted):
        return {"type": "start", "id": event.id, "model": event.model}
    if isinstance(event, StreamError):
        return {"type": "error", "code": event.error.code, "message": event.error.message}
    return None


async def sse_frames(
    events: AsyncIterable[Event | str], *, include_reasoning: bool = False
) -> AsyncIterator[bytes]:
    """SSE bytes for browsers, one frame per event (see the module docstring)."""
    try:
        async for event in events:
            payload = _payload(event, include_reasoning)
            if payload is not None:
                yield _frame(payload)
    except QwenError as exc:
        _log.warning("relayed stream failed: %s", exc)
        code = exc.code if isinstance(exc, APIError) else None
        message = exc.message if isinstance(exc, APIError) else str(exc)
        yield _frame({"type": "error", "code": code, "message": message})
        return
    finally:
        await _aclose(events)
    yield _frame({"type": "done"})
