"""Sending an answer: SSE framing through the wire encoders, pacing, faults, and the responses.

Streams go out through ``EventStream``, a pure ASGI response (no ``BaseHTTPMiddleware``): it
sends the head, then each chunk as soon as it is due, and stops as soon as the client has gone
(an ``http.disconnect`` from ``receive``, or ``OSError`` from ``send`` on ASGI 2.4 servers).
``on_end(disconnected)`` is called once it has stopped, either way (the request log's ``ended``
and ``disconnected``, by which tests measure how fast a client's disconnect reaches here).

Pacing (``config.pacing``): the first piece is due ``ttft_ms`` after the head, each later piece
``tokens / tokens_per_second`` after the previous output. With pacing off nothing sleeps, and
chunks are coalesced into sends of up to ``FLUSH_BYTES`` (the bytes on the wire are the same).

Faults (``Fault``; a chunk is one SSE event, counted on the encoded bytes):

- ``drop``: after ``after_chunks`` events the body iterator raises ``ConnectionDropped``. The
  server then closes the connection without the end of the body (uvicorn logs the exception);
  in-process, ``httpx.ASGITransport(raise_app_exceptions=False)`` hands the client the truncated
  body. When the answer is shorter, the drop happens before the terminator (no ``[DONE]``).
- ``stall``: after ``after_chunks`` events, nothing for ``seconds``, then the rest.
- ``error_mid_stream``: after ``after_chunks`` events, the error as an in-stream event of the
  wire format (native ``event:error`` with its ``:HTTP_STATUS``), then the end.

Non-streaming answers (``json_answer``) wait ``ttft_ms + completion_tokens / tokens_per_second``.
The configured ``*_after_chunks`` faults are for streams; a scenario's fault on a non-streaming
answer: ``drop`` sends the head and half the JSON body, then drops; ``stall`` delays the answer;
``error_mid_stream`` answers with the error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from typing import Any, Literal, Protocol

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from qwenkit.emulator.config import ErrorEnvelope, PacingConfig
from qwenkit.emulator.generation import Fault
from qwenkit.emulator.messages import Wire, internal_error
from qwenkit.emulator.render import Plan
from qwenkit.types import ErrorInfo, Event, StreamError
from qwenkit.wire import compat, native
from qwenkit.wire.error_body import error_body, json_bytes
from qwenkit.wire.errors import encode_llama_cpp_error

__all__ = [
    "FLUSH_BYTES",
    "ConnectionDropped",
    "EventStream",
    "StreamEncoderLike",
    "error_response",
    "json_answer",
    "json_bytes",
    "json_response",
    "paced_body",
    "partial_json_response",
    "stream_encoder",
]

FLUSH_BYTES = 32 * 1024
SSE_MEDIA_TYPE = "text/event-stream"
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class ConnectionDropped(Exception):
    """Raised inside a response body to make the server drop the connection (emulated fault)."""


class StreamEncoderLike(Protocol):
    def encode(self, event: Event) -> bytes: ...

    def close(self) -> bytes: ...


def error_response(
    error: ErrorInfo,
    *,
    wire: Wire,
    stream: bool,
    request_id: str,
    headers: Mapping[str, str] | None = None,
    envelope: ErrorEnvelope = "dashscope",
    request_id_header: bool = True,
) -> Response:
    """An error up front in the caller's format (``qwenkit.wire.error_body``); with ``envelope``
    ``llama.cpp``, a compatible-mode error in llama.cpp's envelope (integer ``code``, no id)."""
    if error.request_id is None:
        error = dataclasses.replace(error, request_id=request_id)
    all_headers = {"x-request-id": request_id} if request_id_header else {}
    all_headers.update(headers or {})
    if envelope == "llama.cpp" and wire == "compat":
        body = json_bytes(encode_llama_cpp_error(error))
        return Response(body, error.status, all_headers, "application/json")
    answer = error_body(error, wire=wire, stream=stream)
    if answer.media_type == SSE_MEDIA_TYPE:
        all_headers = {**_SSE_HEADERS, **all_headers}
    return Response(answer.body, answer.status, all_headers, answer.media_type)


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json_bytes(body), status, dict(headers or {}), "application/json")


class EventStream(Response):
    """A pure ASGI streaming response over an async iterator of byte chunks."""

    def __init__(
        self,
        chunks: AsyncGenerator[bytes, None],
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str = SSE_MEDIA_TYPE,
        on_end: Callable[[bool], None] | None = None,
    ) -> None:
        self.chunks = chunks
        self.on_end = on_end
        self.disconnected = False
        self._complete = False
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.init_headers(
            {**(_SSE_HEADERS if media_type == SSE_MEDIA_TYPE else {}), **(headers or {})}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        dropped: ConnectionDropped | None = None
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch_disconnect, receive, group.cancel_scope)
                try:
                    await self._send_all(send)
                except ConnectionDropped as exc:  # re-raised outside the group, not in a group
                    dropped = exc
                group.cancel_scope.cancel()
        finally:
            if self.on_end is not None:
                self.on_end(self.disconnected)
        if dropped is not None:
            raise dropped

    async def _send_all(self, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": self.raw_headers})
        try:
            async with aclosing(self.chunks) as chunks:
                async for chunk in chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self._complete = True  # servers report a disconnect once the response is complete
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away (ASGI 2.4 servers raise from send)
            self.disconnected = True

    async def _watch_disconnect(self, receive: Receive, scope: anyio.CancelScope) -> None:
        """Stop the response when the client disconnects (ASGI 2.3 servers only tell
        ``receive``)."""
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnected = not self._complete
        scope.cancel()


def _cut(data: bytes, events: int) -> int:
    """Offset just after the ``events``-th SSE event of ``data``."""
    offset = 0
    for _ in range(events):
        offset = data.index(b"\n\n", offset) + 2
    return offset


class _Clock:
    """When each piece is due: ``ttft`` after the start, then at ``tokens_per_second``."""

    __slots__ = ("_rate", "_start", "_ttft", "on")

    def __init__(self, pacing: PacingConfig) -> None:
        self.on = pacing.ttft_ms > 0 or pacing.tokens_per_second is not None
        self._rate = pacing.tokens_per_second
        self._ttft = pacing.ttft_ms / 1000
        self._start = anyio.current_time() if self.on else 0.0

    def delay(self, tokens_before: int) -> float:
        """Seconds to wait before the piece that follows ``tokens_before`` output tokens."""
        if not self.on:
            return 0.0
        due = self._start + self._ttft + (tokens_before / self._rate if self._rate else 0.0)
        return due - anyio.current_time()


async def paced_body(
    plan: Plan, encoder: StreamEncoderLike, pacing: PacingConfig, fault: Fault | None
) -> AsyncGenerator[bytes, None]:
    """The chunks of one streamed answer: encoded, paced, and with the fault applied."""
    clock = _Clock(pacing)
    tokens = 0
    sent = 0
    buf = bytearray()
    for event, n in plan:
        if n and (delay := clock.delay(tokens)) > 0:
            if buf:
                yield bytes(buf)
                buf.clear()
            await anyio.sleep(delay)
        tokens += n
        data = encoder.encode(event)
        if not data:
            continue
        if fault is not None and sent + data.count(b"\n\n") >= fault.after_chunks:
            head = _cut(data, fault.after_chunks - sent)
            buf += data[:head]
            data = data[head:]
            sent = fault.after_chunks
            if fault.kind != "stall":
                break
            if buf:
                yield bytes(buf)
                buf.clear()
            await anyio.sleep(fault.seconds)
            fault = None
        sent += data.count(b"\n\n")
        buf += data
        if len(buf) >= FLUSH_BYTES:
            yield bytes(buf)
            buf.clear()
    if fault is None:
        buf += encoder.close()
        if buf:
            yield bytes(buf)
        return
    if buf:
        yield bytes(buf)
    async for chunk in _fault_end(fault, encoder, sent):
        yield chunk


async def _fault_end(
    fault: Fault, encoder: StreamEncoderLike, sent: int
) -> AsyncGenerator[bytes, None]:
    """The end of a stream whose fault is due (or that ended before reaching it)."""
    if fault.kind == "drop":
        raise ConnectionDropped(f"emulated fault: connection dropped after {sent} chunks")
    if fault.kind == "error_mid_stream":
        yield encoder.encode(StreamError(fault.error or internal_error()))
        return
    await anyio.sleep(fault.seconds)  # a stall the answer was too short to reach
    yield encoder.close()


async def _halves(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body[: len(body) // 2]
    raise ConnectionDropped("emulated fault: connection dropped in the middle of the body")


def partial_json_response(status: int, body: Any, headers: Mapping[str, str]) -> Response:
    """Half of a JSON body, then a dropped connection (a ``drop`` fault on a non-stream answer)."""
    data = json_bytes(body)
    full = {**headers, "content-length": str(len(data))}
    return EventStream(
        _halves(data), status_code=status, headers=full, media_type="application/json"
    )


def stream_encoder(
    wire: Wire,
    *,
    include_usage: bool,
    thinking: bool,
    result_format: Literal["text", "message"],
    incremental: bool,
) -> StreamEncoderLike:
    """The wire's stream encoder (compatible: usage chunk on request; native: result format and
    incremental or cumulative text)."""
    if wire == "compat":
        return compat.StreamEncoder(include_usage=include_usage, thinking=thinking)
    return native.StreamEncoder(result_format=result_format, incremental=incremental)


async def json_answer(
    body: Any,
    *,
    wire: Wire,
    request_id: str,
    pacing: PacingConfig,
    completion_tokens: int,
    fault: Fault | None,
    envelope: ErrorEnvelope = "dashscope",
    request_id_header: bool = True,
) -> Response:
    """A non-streaming answer after its generation time, with the fault applied (``envelope``
    and ``request_id_header`` as for ``error_response``)."""
    delay = pacing.ttft_ms / 1000
    if pacing.tokens_per_second:
        delay += completion_tokens / pacing.tokens_per_second
    if fault is not None and fault.kind == "stall":
        delay += fault.seconds
    if delay > 0:
        await anyio.sleep(delay)
    headers = {"x-request-id": request_id} if request_id_header else {}
    if fault is not None and fault.kind == "drop":
        return partial_json_response(200, body, headers)
    if fault is not None and fault.kind == "error_mid_stream":
        error = fault.error or internal_error()
        return error_response(
            error,
            wire=wire,
            stream=False,
            request_id=request_id,
            envelope=envelope,
            request_id_header=request_id_header,
        )
    return json_response(200, body, headers)
