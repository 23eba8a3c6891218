"""``StreamingASGITransport`` and ``emulated()``: in-process responses that really stream."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import httpx
import pytest

from qwenkit import ContentDelta, ReasoningDelta, StreamInterruptedError
from qwenkit.emulator import EmulatorConfig
from qwenkit.testing import StreamingASGITransport, emulated

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Gate:
    """An ASGI app that sends one chunk, then waits for the test before sending the rest."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.finished = False
        self.cancelled = False
        self.body = b""

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        self.body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        try:
            await self.open.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        await send({"type": "http.response.body", "body": b"second", "more_body": False})
        self.finished = True


@pytest.mark.anyio
async def test_the_first_chunk_arrives_before_the_app_finishes() -> None:
    app = Gate()
    async with (
        httpx.AsyncClient(transport=StreamingASGITransport(app)) as http,
        http.stream("POST", "http://app/x", content=b"payload") as response,
    ):
        assert response.status_code == 200
        assert response.headers["x-a"] == "1"
        chunks = response.aiter_bytes()
        assert await chunks.__anext__() == b"first"
        assert not app.finished  # a buffering transport could not get here
        app.open.set()
        assert await chunks.__anext__() == b"second"
    assert app.body == b"payload"
    assert app.finished


@pytest.mark.anyio
async def test_closing_early_cancels_the_app() -> None:
    app = Gate()
    async with (
        httpx.AsyncClient(transport=StreamingASGITransport(app)) as http,
        http.stream("GET", "http://app/x") as response,
    ):
        async for chunk in response.aiter_bytes():
            assert chunk == b"first"
            break
    assert app.cancelled
    assert not app.finished


async def fails_before(scope: Message, receive: Receive, send: Send) -> None:
    raise RuntimeError("boom")


async def fails_after(scope: Message, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise RuntimeError("dropped")


@pytest.mark.anyio
async def test_failures_before_and_after_the_response_starts() -> None:
    async with httpx.AsyncClient(transport=StreamingASGITransport(fails_before)) as http:
        with pytest.raises(RuntimeError, match="boom"):
            await http.get("http://app/x")
    async with (
        httpx.AsyncClient(transport=StreamingASGITransport(fails_after)) as http,
        http.stream("GET", "http://app/x") as response,
    ):
        chunks = response.aiter_bytes()
        assert await chunks.__anext__() == b"partial"
        with pytest.raises(httpx.RemoteProtocolError):
            await chunks.__anext__()


@pytest.mark.anyio
async def test_an_emulated_client_sees_events_while_the_answer_is_still_being_made() -> None:
    # The emulator stalls for a minute after two chunks: only a streaming transport delivers the
    # first events before that (a buffering one would wait for the whole response).
    stalling = EmulatorConfig.model_validate(
        {"faults": {"stall_after_chunks": 2, "stall_seconds": 60}}
    )
    async with emulated(stalling) as client:
        with anyio.fail_after(10):
            async with client.stream("Why is the sky blue?", thinking=True) as stream:
                async for event in stream:
                    if isinstance(event, (ReasoningDelta, ContentDelta)):
                        break
    assert isinstance(event, ReasoningDelta)  # reasoning comes first


@pytest.mark.anyio
async def test_a_dropped_emulator_stream_reaches_the_sdk_as_an_interruption() -> None:
    dropping = EmulatorConfig.model_validate({"faults": {"drop_after_chunks": 3}})
    async with emulated(dropping) as client:

        async def read_all() -> None:
            async with client.stream("Tell me a long story") as stream:
                async for _ in stream:
                    pass

        with pytest.raises(StreamInterruptedError):
            await read_all()
