"""``Qwen``, the synchronous client: from threads, inside a running event loop, streams, closing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from starlette.applications import Starlette

from qwenkit._core.runner import Runner
from qwenkit._exceptions import UsageError
from qwenkit.client._sync import Qwen
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator.app import app_state
from qwenkit.types import ContentDelta, ResponseStarted

KEY = "sk-test-sync"


@pytest.fixture
def app() -> Starlette:
    return create_app(EmulatorConfig())


@pytest.fixture
def responses() -> list[httpx.Response]:
    return []


@pytest.fixture
def http(app: Starlette, responses: list[httpx.Response]) -> Iterator[httpx.AsyncClient]:
    async def seen(response: httpx.Response) -> None:
        responses.append(response)

    transport = httpx.ASGITransport(app)
    client = httpx.AsyncClient(transport=transport, event_hooks={"response": [seen]})
    yield client
    asyncio.run(client.aclose())


@pytest.fixture
def qwen(http: httpx.AsyncClient) -> Iterator[Qwen]:
    with Qwen(api_key=KEY, base_url="http://emulator", http_client=http) as client:
        yield client


def runner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "qwenkit-sync"]


def test_chat_from_plain_threads(qwen: Qwen, app: Starlette) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: qwen.chat(f"question {n}"), range(4)))
    assert all(result.content for result in results)
    assert len({result.request_id for result in results}) == 4
    assert len(app_state(app).log.last()) == 4


@pytest.mark.anyio
async def test_chat_inside_a_running_event_loop(qwen: Qwen) -> None:
    asyncio.get_running_loop()  # this test body runs inside the loop
    result = qwen.chat("hello", thinking=True)
    assert result.content
    assert result.reasoning
    assert result.reasoning not in str(result)


def test_stream_events_text_and_result(qwen: Qwen) -> None:
    with qwen.stream("hello") as stream:
        events = list(stream)
    assert isinstance(events[0], ResponseStarted)
    text = "".join(e.text for e in events if isinstance(e, ContentDelta))
    assert text == stream.result().content
    with qwen.stream("hello") as stream:
        assert "".join(stream.text_stream) == text
    with qwen.stream("hello") as stream:
        assert stream.get_result().content == text


def test_leaving_a_stream_early_closes_the_response(
    qwen: Qwen, responses: list[httpx.Response]
) -> None:
    with qwen.stream("hello") as stream:
        for event in stream:
            if isinstance(event, ContentDelta):
                break
        (response,) = responses
        assert not response.is_closed
    assert response.is_closed


def test_close_releases_the_pool_and_the_thread(app: Starlette) -> None:
    with Qwen(api_key=KEY, base_url="http://emulator") as client:
        assert client.aio.http_client.is_closed is False
        assert "http://emulator" in repr(client)
        assert KEY not in repr(client)
    assert client.aio.http_client.is_closed
    client.close()  # idempotent
    with pytest.raises(UsageError, match="closed"):
        client.chat("hello")


def test_the_runner_thread_starts_on_first_use_and_stops_on_close(qwen: Qwen) -> None:
    before = len(runner_threads())
    qwen.chat("hello")
    assert len(runner_threads()) == before + 1
    qwen.close()
    assert len(runner_threads()) == before


def test_a_callback_calling_the_sync_client_fails_instead_of_deadlocking(
    http: httpx.AsyncClient,
) -> None:
    def again(text: str) -> None:
        client.chat("nested")

    with Qwen(
        api_key=KEY, base_url="http://emulator", http_client=http, on_reasoning=again
    ) as client:
        with pytest.raises(UsageError, match="wait for itself"):
            client.chat("hello", thinking=True)
        assert client.chat("hello").content  # the client still works


def test_runner_iterate_and_exceptions() -> None:
    async def numbers() -> AsyncIterator[int]:
        for n in range(3):
            yield n

    async def fail() -> None:
        raise KeyError("boom")

    runner = Runner(name="qwenkit-test")
    try:
        assert list(runner.iterate(numbers())) == [0, 1, 2]
        with pytest.raises(KeyError, match="boom"):
            runner.run(fail())
    finally:
        runner.close()
    assert runner.closed
    assert "closed" in repr(runner)
