"""``qwenkit.relay.relay``: a bounded buffer between a fast upstream and a slow ``send``;
cancellation in either direction closes the other side; errors come out unwrapped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from qwenkit._core.usage import ListSink
from qwenkit._exceptions import UsageError
from qwenkit.client._async import AsyncQwen
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.relay import relay


class Upstream:
    """A fast upstream that counts what it produced and records that it was closed."""

    def __init__(self, items: int = 200, fail_at: int | None = None) -> None:
        self.items = items
        self.fail_at = fail_at
        self.produced = 0
        self.closed = False

    async def stream(self) -> AsyncIterator[int]:
        try:
            for number in range(self.items):
                if number == self.fail_at:
                    raise ConnectionResetError("upstream reset")
                self.produced += 1
                yield number
        finally:
            self.closed = True


class SlowClient:
    """A ``send`` that takes its time and measures how far the producer ran ahead of it."""

    def __init__(self, upstream: Upstream, delay: float = 0.001, fail_at: int | None = None):
        self.upstream = upstream
        self.delay = delay
        self.fail_at = fail_at
        self.received: list[int] = []
        self.max_ahead = 0

    async def send(self, item: int) -> None:
        self.max_ahead = max(self.max_ahead, self.upstream.produced - len(self.received))
        self.received.append(item)
        if len(self.received) == self.fail_at:
            raise BrokenPipeError("client gone")
        await anyio.sleep(self.delay)


@pytest.mark.anyio
@pytest.mark.parametrize("max_buffer", [0, 1, 4, 32])
async def test_a_slow_client_slows_the_upstream(max_buffer: int) -> None:
    upstream = Upstream(items=120)
    client = SlowClient(upstream)
    await relay(upstream.stream(), client.send, max_buffer=max_buffer)
    assert client.received == list(range(120))  # everything, in order
    assert client.max_ahead <= max_buffer + 1  # the buffer, plus the item the producer holds
    assert client.max_ahead >= max_buffer  # and the buffer was really used
    assert upstream.closed


@pytest.mark.anyio
async def test_a_failing_send_stops_and_closes_the_upstream() -> None:
    upstream = Upstream(items=10_000)
    client = SlowClient(upstream, fail_at=5)
    with pytest.raises(BrokenPipeError, match="client gone"):  # not an ExceptionGroup
        await relay(upstream.stream(), client.send, max_buffer=8)
    assert upstream.closed
    assert upstream.produced <= 5 + 8 + 1


@pytest.mark.anyio
async def test_cancelling_the_relay_closes_the_upstream() -> None:
    upstream = Upstream(items=10_000)
    client = SlowClient(upstream, delay=0.05)
    with anyio.move_on_after(0.2) as scope:  # the ASGI server cancels a disconnected request
        await relay(upstream.stream(), client.send, max_buffer=4)
    assert scope.cancelled_caught
    assert upstream.closed
    assert 1 <= len(client.received) < 10
    assert upstream.produced <= len(client.received) + 4 + 1


@pytest.mark.anyio
async def test_an_upstream_failure_stops_the_client_and_propagates() -> None:
    upstream = Upstream(items=100, fail_at=20)
    client = SlowClient(upstream, delay=0.01)
    with pytest.raises(ConnectionResetError, match="upstream reset"):
        await relay(upstream.stream(), client.send, max_buffer=32)
    assert upstream.closed
    assert len(client.received) < 20  # what was still queued was not sent


@pytest.mark.anyio
async def test_a_negative_buffer_is_refused() -> None:
    with pytest.raises(UsageError):
        await relay(Upstream().stream(), SlowClient(Upstream()).send, max_buffer=-1)


@pytest.mark.anyio
async def test_a_client_gone_mid_answer_closes_the_model_call() -> None:
    sink = ListSink()
    app = create_app(EmulatorConfig.model_validate({"pacing": {"chunk_tokens": 1}}))
    sent: list[Any] = []

    async def send(event: Any) -> None:
        sent.append(event)
        if len(sent) == 3:
            raise BrokenPipeError("client gone")

    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http,
        AsyncQwen(
            api_key="sk-relay", base_url="http://emulator", http_client=http, usage_sinks=[sink]
        ) as client,
    ):
        with pytest.raises(BrokenPipeError):
            await relay(client.stream("Why is the sky blue?"), send, max_buffer=2)
        assert [record.status for record in sink.records] == ["cancelled"]
        await relay(client.stream("hello"), _ignore)
        assert [record.status for record in sink.records] == ["cancelled", "ok"]


async def _ignore(event: Any) -> None:
    return None
