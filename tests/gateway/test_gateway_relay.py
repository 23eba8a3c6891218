"""``RelayedStream``, the gateway's SSE relay, at the ASGI level: a slow client slows the reads of
the upstream (never more than the bounded buffer, plus the one batch being written, is read
ahead of what the client took), events already waiting go out in one write with the same bytes
as one write each, a silent stream gets keepalive comments, and a client that disconnects
closes the upstream stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from starlette.types import Message

from qwenkit.gateway._responses import KEEPALIVE, RelayedStream
from qwenkit.types import ContentDelta, Event, Finished, ResponseStarted
from qwenkit.wire import compat

BUFFER = 4


class Source:
    """The pipeline's events: ``count`` content deltas, counting what was read and whether the
    stream was closed; ``pause`` seconds of silence before each event."""

    def __init__(self, count: int, pause: float = 0.0) -> None:
        self.count, self.pause = count, pause
        self.read = 0
        self.closed = False

    async def events(self) -> AsyncIterator[Event]:
        try:
            yield ResponseStarted("chatcmpl-1", "qwen-plus", 0, "req-1")
            for index in range(self.count):
                if self.pause:
                    await anyio.sleep(self.pause)
                self.read += 1
                yield ContentDelta(f"piece {index} ")
            yield Finished("stop")
        finally:
            self.closed = True


def relay(events: AsyncIterator[Event], keepalive: float = 30.0) -> RelayedStream:
    return RelayedStream(
        events,
        make_encoder=compat.StreamEncoder,
        keep=lambda event: True,
        buffer=BUFFER,
        keepalive=keepalive,
        request_id=lambda: "req-1",
    )


def scope() -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}


async def never_disconnect() -> dict[str, Any]:
    await anyio.sleep_forever()
    raise AssertionError  # pragma: no cover


@pytest.mark.anyio
async def test_a_slow_client_slows_the_upstream_reads() -> None:
    source = Source(200)
    bodies: list[bytes] = []
    ahead: list[int] = []

    async def slow_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])
            taken = b"".join(bodies).count(b"piece ")
            ahead.append(source.read - taken)
            await anyio.sleep(0.002)  # the client reads slowly

    await relay(source.events())(scope(), never_disconnect, slow_send)
    assert b"".join(bodies).count(b"piece ") == 200
    assert max(ahead) <= 2 * BUFFER + 1  # the buffer and the batch in the write, nothing more
    assert source.closed


@pytest.mark.anyio
async def test_waiting_events_go_out_in_one_write_with_the_same_bytes() -> None:
    sent: list[bytes] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            sent.append(message["body"])

    source = Source(40)
    await relay(source.events())(scope(), never_disconnect, send)
    encoder = compat.StreamEncoder()
    one_by_one = b"".join([encoder.encode(event) async for event in Source(40).events()])
    assert b"".join(sent) == one_by_one + encoder.close()
    assert len(sent) < 40  # coalesced: fewer writes than events


@pytest.mark.anyio
async def test_a_silent_stream_gets_keepalive_comments() -> None:
    sent: list[bytes] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            sent.append(message["body"])

    await relay(Source(2, pause=0.2).events(), keepalive=0.05)(scope(), never_disconnect, send)
    assert sent.count(KEEPALIVE) >= 2
    assert b"".join(sent).count(b"piece ") == 2


@pytest.mark.anyio
async def test_a_client_that_disconnects_closes_the_upstream_stream() -> None:
    source = Source(10_000, pause=0.001)
    received = anyio.Event()

    async def receive() -> dict[str, Any]:
        await received.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and b"piece 3 " in message["body"]:
            received.set()

    with anyio.fail_after(5):
        await relay(source.events())(scope(), receive, send)
    assert source.closed
    assert source.read < 10_000
