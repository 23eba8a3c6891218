"""Retries, deadlines and failed streams of ``AsyncQwen`` under the emulator's faults (in process)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from qwenkit._core.retries import RetryPolicy
from qwenkit._core.send import Send
from qwenkit._core.transport import Upstream
from qwenkit._exceptions import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    ContentFilterError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from qwenkit._settings import Mode, Settings
from qwenkit._timeouts import Timeout
from qwenkit.client._async import AsyncQwen
from qwenkit.client._call import make_call
from qwenkit.client._result import AsyncChatStream
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator.app import app_state
from qwenkit.types import ContentDelta

KEY = "sk-test-retries"
QUICK = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.02)


@pytest.fixture(params=["compat", "native"])
def mode(request: pytest.FixtureRequest) -> Mode:
    value: Mode = request.param
    return value


def emulator(**config: Any) -> Starlette:
    app = create_app(EmulatorConfig.model_validate(config))
    app_state(app).warm()  # load the tokenizers now, so no request pays for it
    return app


@asynccontextmanager
async def connect(
    app: Starlette, mode: Mode = "compat", **options: Any
) -> AsyncIterator[AsyncQwen]:
    # raise_app_exceptions=False: a dropped connection reaches the client as a truncated body
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with (
        httpx.AsyncClient(transport=transport) as http,
        AsyncQwen(
            api_key=KEY, base_url="http://emulator", mode=mode, http_client=http, **options
        ) as client,
    ):
        yield client


def statuses(app: Starlette) -> list[int]:
    return [entry["status"] for entry in app_state(app).log.last()]


@pytest.mark.anyio
async def test_503_twice_then_success(mode: Mode) -> None:
    app = emulator(faults={"fail_first": 2, "error_status": 503})
    async with connect(app, mode, retry=QUICK) as client:
        result = await client.chat("hello")
    assert result.content
    assert [(a.number, a.status, a.code) for a in result.attempts] == [
        (1, 503, "ModelUnavailable"),
        (2, 503, "ModelUnavailable"),
    ]
    assert all(a.delay is not None and 0 <= a.delay <= 0.02 for a in result.attempts)
    assert statuses(app) == [503, 503, 200]


@pytest.mark.anyio
async def test_429_then_success_waits_what_retry_after_says() -> None:
    # burst 1/s: a second request within the second is throttled; Retry-After says 1 s
    app = emulator(throttle={"burst": 1}, quirks={"retry_after_seconds": 1})
    async with connect(app, retry=RetryPolicy(max_attempts=2, initial_delay=0.01)) as client:
        await client.chat("first")
        started = time.monotonic()
        result = await client.chat("second")
    assert time.monotonic() - started >= 1.0
    (attempt,) = result.attempts
    assert (attempt.status, attempt.code) == (429, "Throttling.BurstRate")
    assert attempt.delay is not None
    assert 1.0 <= attempt.delay <= 1.1
    assert statuses(app) == [200, 429, 200]


@pytest.mark.anyio
async def test_retry_after_is_the_wait_between_attempts(mode: Mode) -> None:
    app = emulator(throttle={"after_requests": 0}, quirks={"retry_after_seconds": 7})
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    settings = Settings(api_key=KEY, base_url="http://emulator", mode=mode)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http:
        policy = RetryPolicy(max_attempts=3, jitter="none")
        send = Send(Upstream(http, settings).events, retry=policy, sleep=sleep)
        call = make_call("hi", model="qwen-plus", task=None, thinking=None, params={})
        with pytest.raises(RateLimitError) as caught:
            [event async for event in send(call)]
    assert waits == [7.0, 7.0]
    assert len(caught.value.attempts) == len(call.attempts) == 3
    assert statuses(app) == [429, 429, 429]


@pytest.mark.anyio
async def test_400_is_never_retried(mode: Mode) -> None:
    rule = {
        "match": {"last_user": "bad"},
        "error": {"status": 400, "code": "InvalidParameter", "message": "No."},
    }
    app = emulator(scenarios=[rule])
    async with connect(app, mode, retry=QUICK) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.chat("a bad request")
    error = caught.value
    assert (error.status, error.code, error.message) == (400, "InvalidParameter", "No.")
    (entry,) = app_state(app).log.last()
    assert error.request_id == entry["request_id"]
    assert [a.status for a in error.attempts] == [400]


@pytest.mark.anyio
async def test_attempts_and_deadline_bound_the_retries() -> None:
    app = emulator(faults={"fail_first": 100})
    async with connect(app, retry=QUICK) as client:
        with pytest.raises(ServerError) as caught:
            await client.chat("hello")
    assert len(caught.value.attempts) == 3
    assert statuses(app) == [500, 500, 500]
    wait, deadline = 0.1, 0.35
    slow = RetryPolicy(
        max_attempts=100, initial_delay=wait, max_delay=wait, jitter="none", deadline=deadline
    )
    app = emulator(faults={"fail_first": 100})
    async with connect(app, retry=slow) as client:
        with pytest.raises(ServerError) as caught:
            await client.chat("hello")
    *retried, last = caught.value.attempts
    assert len(retried) >= 1
    assert all(a.delay == wait and a.elapsed + wait <= deadline for a in retried)
    assert last.delay is None
    assert last.elapsed + wait > deadline  # one more wait would have crossed the deadline
    assert len(statuses(app)) == len(caught.value.attempts)


@pytest.mark.anyio
async def test_the_total_timeout_covers_the_whole_call() -> None:
    app = emulator(pacing={"slow_upstream_ms": 2000})
    async with connect(app, timeout=Timeout(total=0.2)) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match="total timeout") as caught:
            await client.chat("hello")
    assert time.monotonic() - started < 1.0
    assert len(caught.value.attempts) == 1


@pytest.mark.anyio
async def test_a_stream_cut_after_bytes_raises_with_the_partial_answer(mode: Mode) -> None:
    app = emulator(faults={"drop_after_chunks": 4})
    received: list[str] = []

    async def consume(stream: AsyncChatStream) -> None:
        async for event in stream:
            if isinstance(event, ContentDelta):
                received.append(event.text)

    async with connect(app, mode, retry=QUICK) as client, client.stream("tell me more") as stream:
        with pytest.raises(StreamInterruptedError) as caught:
            await consume(stream)
    error = caught.value
    assert received
    assert error.partial is not None
    assert error.partial.content == "".join(received)
    assert isinstance(error.__cause__, APIConnectionError)
    assert len(error.attempts) == 1
    assert len(app_state(app).log.last()) == 1  # not retried
    with pytest.raises(StreamInterruptedError):
        stream.result()


@pytest.mark.anyio
async def test_a_stream_cut_before_any_byte_is_retried() -> None:
    app = emulator(faults={"drop_after_chunks": 0})
    async with connect(app, retry=QUICK) as client:
        with pytest.raises(APIConnectionError) as caught:
            [event async for event in client.stream("hello")]
    assert len(caught.value.attempts) == 3
    assert len(app_state(app).log.last()) == 3


@pytest.mark.anyio
async def test_an_error_event_mid_stream_keeps_its_code(mode: Mode) -> None:
    error = {"status": 400, "code": "DataInspectionFailed", "message": "Output inappropriate."}
    fault = {"kind": "error_mid_stream", "after_chunks": 3, "error": error}
    app = emulator(scenarios=[{"text": "One two three four five six seven.", "fault": fault}])
    async with connect(app, mode, retry=QUICK) as client:
        with pytest.raises(StreamInterruptedError) as caught:
            await client.chat("hello", thinking=True)
    interrupted = caught.value
    assert (interrupted.status, interrupted.code) == (400, "DataInspectionFailed")
    assert isinstance(interrupted.__cause__, ContentFilterError)
    assert interrupted.partial is not None
    assert len(app_state(app).log.last()) == 1
