"""The clients over real HTTP: the emulator served by uvicorn in a thread, the client's own pool.

The server comes from ``tests/emulator/emulator_server.py`` (shared with the emulator's SDK tests);
its folder is put on ``sys.path`` by the fixture, because pytest only adds the folder of the test
module being imported.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from qwenkit._core.retries import RetryPolicy
from qwenkit._exceptions import APITimeoutError, StreamInterruptedError
from qwenkit._settings import Mode
from qwenkit._timeouts import Timeout
from qwenkit.client._async import AsyncQwen
from qwenkit.client._sync import Qwen
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.types import ContentDelta, ReasoningDelta

KEY = "sk-test-http"
SLOW = {"pacing": {"tokens_per_second": 40, "chunk_tokens": 1}}
"""About 3 s for a default answer: long enough to leave in the middle."""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emulator"))
    from emulator_server import serve

    with serve(create_app(EmulatorConfig())) as url:
        yield url


@pytest.fixture
def control(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server) as client:
        yield client


def configured(control: httpx.Client, patch: dict[str, Any]) -> Any:
    from emulator_server import restored_config

    return restored_config(control, patch)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["compat", "native"])
async def test_chat_stream_and_thinking_over_http(server: str, mode: Mode) -> None:
    async with AsyncQwen(api_key=KEY, base_url=server, mode=mode) as client:
        result = await client.chat("Why is the sky blue?")
        async with client.stream("Why is the sky blue?", thinking=True) as stream:
            kinds = {type(event) async for event in stream}
        thought = stream.result()
        pool = client.http_client
    assert pool.is_closed
    assert result.content
    assert result.request_id
    assert result.cost is not None
    assert {ReasoningDelta, ContentDelta} <= kinds
    assert thought.reasoning
    assert thought.reasoning not in thought.content


def test_the_sync_client_over_http(server: str) -> None:
    with Qwen(api_key=KEY, base_url=server, mode="native") as client:
        assert client.chat("hello").content


@pytest.mark.anyio
async def test_leaving_a_stream_closes_the_connection(server: str, control: httpx.Client) -> None:
    responses: list[httpx.Response] = []

    async def seen(response: httpx.Response) -> None:
        responses.append(response)

    with configured(control, SLOW):
        async with (
            httpx.AsyncClient(event_hooks={"response": [seen]}) as http,
            AsyncQwen(api_key=KEY, base_url=server, http_client=http) as client,
        ):
            started = time.monotonic()
            async with client.stream("Tell me a long story") as stream:
                async for event in stream:
                    if isinstance(event, ContentDelta):
                        break
            (response,) = responses
            assert response.is_closed  # every policy closes what it iterates
            assert time.monotonic() - started < 1.5  # did not wait for the rest


@pytest.mark.anyio
async def test_cancelling_a_call_closes_the_connection(server: str, control: httpx.Client) -> None:
    responses: list[httpx.Response] = []

    async def seen(response: httpx.Response) -> None:
        responses.append(response)

    with configured(control, SLOW):
        async with (
            httpx.AsyncClient(event_hooks={"response": [seen]}) as http,
            AsyncQwen(api_key=KEY, base_url=server, http_client=http) as client,
        ):
            with anyio.move_on_after(0.5) as scope:
                await client.chat("Tell me a long story", thinking=True)
            assert scope.cancelled_caught
            (response,) = responses
            assert response.is_closed


@pytest.mark.anyio
async def test_a_read_timeout_before_the_first_byte_is_retried(
    server: str, control: httpx.Client
) -> None:
    policy = RetryPolicy(max_attempts=2, initial_delay=0.01)
    with configured(control, {"pacing": {"slow_upstream_ms": 400}}):
        async with AsyncQwen(
            api_key=KEY, base_url=server, timeout=Timeout(read=0.1), retry=policy
        ) as client:
            with pytest.raises(APITimeoutError) as caught:
                await client.chat("hello")
    assert [attempt.error.split(":")[0] for attempt in caught.value.attempts] == [
        "APITimeoutError",
        "APITimeoutError",
    ]


@pytest.mark.anyio
async def test_a_dropped_connection_mid_stream_is_not_retried(
    server: str, control: httpx.Client
) -> None:
    with configured(control, {"faults": {"drop_after_chunks": 3}}):
        async with AsyncQwen(api_key=KEY, base_url=server, mode="native") as client:
            with pytest.raises(StreamInterruptedError) as caught:
                await client.chat("hello", thinking=True)
        log = control.get("/_emulator/requests").json()["requests"]
    assert len(log) == 1
    partial = caught.value.partial
    assert partial is not None
    assert partial.reasoning
