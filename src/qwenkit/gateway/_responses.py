"""Answers in the caller's wire format: errors, whole answers, and streams relayed with
backpressure (``error_response``, ``answer_body``, ``RelayedStream``).

**Streams.** The pipeline's events reach the client through a bounded buffer
(``relay_buffer`` events, 32 by default)::

    pipeline ──► producer ──► [ at most relay_buffer events ] ──► encoder ──► client socket

A slow client fills the buffer, the producer waits, and the upstream is read no faster than the
client takes it, so memory stays bounded however slow the client is. A client that disconnects
(``http.disconnect``, or the server's ``send`` failing) cancels both sides; the producer closes
the pipeline's stream (shielded), which closes the upstream connection and lets the settle and
usage steps record what was consumed. An upstream failure mid-stream becomes a last error event
of the caller's format (compatible: a ``data:`` error object; native: ``event:error`` with its
``:HTTP_STATUS``), then the end of the body. When nothing was sent for ``keepalive_seconds`` (a
model thinking while its reasoning is stripped), an SSE comment line goes out. The hot path
takes no trip through the event loop it does not need: the producer puts an event in the buffer
without waiting while there is room, and the consumer writes every event already waiting in one
``send`` (a fast upstream and a busy gateway give fewer, larger writes; a timer for the keepalive
is armed only when the buffer is empty).

Why not ``qwenkit.relay.relay``: it sends every item with one awaited ``send`` and has no notion
of silence; the keepalive needs to wait on the buffer with a timeout, which only the consumer
side can do safely (cancelling a buffer read loses nothing; cancelling an upstream read would).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from qwenkit.gateway._errors import error_info
from qwenkit.gateway._inbound import Wire
from qwenkit.types import ChatResponse, ErrorInfo, Event, StreamError
from qwenkit.wire import compat, native
from qwenkit.wire.error_body import error_body, json_bytes

__all__ = ["RelayedStream", "answer_body", "error_response", "json_response"]

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
KEEPALIVE = b": keepalive\n\n"
_log = logging.getLogger("qwenkit.gateway")


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json_bytes(body), status, dict(headers or {}), "application/json")


def error_response(
    error: ErrorInfo,
    *,
    wire: Wire,
    stream: bool,
    request_id: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error up front in the caller's format (``qwenkit.wire.error_body``); a 429 says when
    to retry."""
    if error.request_id is None:
        error = dataclasses.replace(error, request_id=request_id)
    extra = {"x-request-id": request_id, **(headers or {})}
    if error.status == 429:
        extra.setdefault("retry-after", "1")
    answer = error_body(error, wire=wire, stream=stream)
    if answer.media_type == "text/event-stream":
        extra = {**SSE_HEADERS, **extra}
    return Response(answer.body, answer.status, extra, answer.media_type)


def answer_body(
    response: ChatResponse, *, wire: Wire, result_format: str, reasoning: bool
) -> dict[str, Any]:
    """A whole answer's body; the reasoning removed unless ``reasoning``."""
    if not reasoning:
        choices = [
            choice.model_copy(
                update={"message": choice.message.model_copy(update={"reasoning_content": None})}
            )
            for choice in response.choices
        ]
        response = response.model_copy(update={"choices": choices})
    if wire == "compat":
        return compat.encode_response(response)
    return native.encode_response(
        response, result_format="text" if result_format == "text" else "message"
    )


class EncoderLike:
    """What both wires' stream encoders offer."""

    def encode(self, event: Event) -> bytes:  # pragma: no cover - a protocol
        raise NotImplementedError

    def close(self) -> bytes:  # pragma: no cover - a protocol
        raise NotImplementedError


class RelayedStream(Response):
    """A pure ASGI SSE response relaying ``events`` through a bounded buffer (module docstring).

    ``encoder`` is made on the first event (``make_encoder()``), so it can depend on what the
    pipeline decided (thinking); ``keep`` filters events (the reasoning policy)."""

    def __init__(
        self,
        events: AsyncIterator[Event],
        *,
        make_encoder: Callable[[], Any],
        keep: Callable[[Event], bool],
        buffer: int,
        keepalive: float,
        request_id: Callable[[], str],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.events = events
        self.make_encoder = make_encoder
        self.keep = keep
        self.buffer = buffer
        self.keepalive = keepalive
        self.request_id = request_id
        self.status_code = 200
        self.media_type = "text/event-stream"
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outbox, inbox = anyio.create_memory_object_stream[Event](self.buffer)
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch_disconnect, receive, group.cancel_scope)
            group.start_soon(self._produce, outbox)
            with contextlib.suppress(OSError):  # the client went away (ASGI 2.4: send raises)
                await self._consume(inbox, send)
            group.cancel_scope.cancel()

    async def _produce(self, outbox: MemoryObjectSendStream[Event]) -> None:
        try:
            async with outbox:
                try:
                    async for event in self.events:
                        if self.keep(event):
                            try:  # no trip through the event loop while there is room
                                outbox.send_nowait(event)
                            except anyio.WouldBlock:  # full: the client is slower, wait for it
                                await outbox.send(event)
                except Exception as exc:  # the upstream failed mid-stream: an error event
                    info = error_info(exc, request_id=self.request_id())
                    await outbox.send(StreamError(info))
        finally:
            with anyio.CancelScope(shield=True):  # close the upstream even when cancelled
                aclose = getattr(self.events, "aclose", None)
                if aclose is not None:
                    await aclose()

    async def _consume(self, inbox: MemoryObjectReceiveStream[Event], send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        encoder: Any = None
        async with inbox:
            ended = False
            while not ended:
                try:
                    event: Event | None = inbox.receive_nowait()
                except anyio.EndOfStream:
                    break
                except anyio.WouldBlock:  # nothing ready: wait, with a keepalive when silent
                    event = None
                    with anyio.move_on_after(self.keepalive):
                        try:
                            event = await inbox.receive()
                        except anyio.EndOfStream:
                            break
                    if event is None:  # silent for keepalive seconds
                        await send({"type": "http.response.body", "body": KEEPALIVE,
                                    "more_body": True})  # fmt: skip
                        continue
                if encoder is None:
                    encoder = self.make_encoder()
                chunks = []
                while True:  # what is ready goes out in one write
                    chunks.append(encoder.encode(event))
                    if isinstance(event, StreamError):
                        chunks.append(encoder.close())
                        body = b"".join(chunks)
                        await send({"type": "http.response.body", "body": body, "more_body": False})
                        return
                    if len(chunks) >= self.buffer:
                        break
                    try:
                        event = inbox.receive_nowait()
                    except anyio.WouldBlock:
                        break
                    except anyio.EndOfStream:
                        ended = True
                        break
                body = b"".join(chunks)
                if body:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
        tail = encoder.close() if encoder is not None else b""
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    @staticmethod
    async def _watch_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()
