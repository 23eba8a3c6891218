"""``submit()`` for text generation: a background job of the client with the ``Task`` interface."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from qwenkit._core.usage import ListSink
from qwenkit._exceptions import BadRequestError, UsageError
from qwenkit.client._async import AsyncQwen
from qwenkit.client._sync import Qwen
from qwenkit.client._tasks import PollSchedule, TaskError, TaskTimeoutError
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator.app import app_state

KEY = "sk-test-tasks"


def emulator(**config: Any) -> Starlette:
    return create_app(EmulatorConfig.model_validate(config))


@asynccontextmanager
async def connect(app: Starlette, sink: ListSink | None = None) -> AsyncIterator[AsyncQwen]:
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http,
        AsyncQwen(
            api_key=KEY,
            base_url="http://emulator",
            http_client=http,
            usage_sinks=[sink] if sink else [],
        ) as client,
    ):
        yield client


SLOW = {"pacing": {"ttft_ms": 30_000}}


@pytest.mark.anyio
async def test_a_job_goes_pending_then_succeeds() -> None:
    app = emulator()
    async with connect(app) as client:
        task = await client.submit("hello")
        assert task.id.startswith("local-")
        assert task.server is False
        assert await task.status() == "PENDING"  # created, not started yet
        with pytest.raises(TaskError) as early:
            await task.result()
        result = await task.wait()
        assert await task.status() == "SUCCEEDED"
        assert await task.result() is result
    assert early.value.status in ("PENDING", "RUNNING")
    assert result.content
    assert result.request_id == app_state(app).log.last()[0]["request_id"]


@pytest.mark.anyio
async def test_a_job_runs_while_the_caller_does_something_else() -> None:
    async with connect(emulator(**SLOW)) as client:
        task = await client.submit("hello")
        await asyncio.sleep(0.05)
        assert await task.status() == "RUNNING"
        assert await task.cancel() is True


@pytest.mark.anyio
async def test_a_failing_call_is_a_failed_task_with_its_error() -> None:
    rule = {"error": {"status": 400, "code": "InvalidParameter", "message": "nope"}}
    async with connect(emulator(scenarios=[rule])) as client:
        task = await client.submit("hello")
        with pytest.raises(BadRequestError):
            await task.wait()
        assert await task.status() == "FAILED"
        with pytest.raises(BadRequestError):
            await task.result()
        bad = await client.submit("hello", stream=True)  # a usage error fails the task too
        with pytest.raises(UsageError):
            await bad.wait()


@pytest.mark.anyio
async def test_cancel_stops_the_call_and_is_recorded() -> None:
    sink = ListSink()
    async with connect(emulator(**SLOW), sink) as client:
        task = await client.submit("hello")
        await asyncio.sleep(0.05)
        assert await task.cancel() is True
        assert await task.status() == "CANCELED"
        assert await task.cancel() is False  # already over
        with pytest.raises(TaskError) as caught:
            await task.wait()
    assert caught.value.status == "CANCELED"
    assert [record.status for record in sink.records] == ["cancelled"]


@pytest.mark.anyio
async def test_wait_with_a_timeout_leaves_the_job_running() -> None:
    async with connect(emulator(**SLOW)) as client:
        task = await client.submit("hello")
        with pytest.raises(TaskTimeoutError) as caught:
            await task.wait(timeout=0.05)
        assert caught.value.task_id == task.id
        assert await task.status() == "RUNNING"
        await task.cancel()


@pytest.mark.anyio
async def test_closing_the_client_cancels_its_jobs() -> None:
    sink = ListSink()
    async with connect(emulator(**SLOW), sink) as client:
        task = await client.submit("hello")
        await asyncio.sleep(0.05)
    assert await task.status() == "CANCELED"
    assert [record.status for record in sink.records] == ["cancelled"]


def test_poll_schedule_follows_the_sdk_cadence() -> None:
    delays = PollSchedule().delays()
    assert [next(delays) for _ in range(12)] == [1, 1, 1, 2, 2, 2, 4, 4, 4, 5, 5, 5]
    quick = PollSchedule(start=0.5, factor=3, every=1, cap=2).delays()
    assert [next(quick) for _ in range(4)] == [0.5, 1.5, 2, 2]


def test_the_sync_client_submits_and_waits() -> None:
    app = emulator()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app))
    with Qwen(api_key=KEY, base_url="http://emulator", http_client=http, usage_sinks=[]) as q:
        try:
            task = q.submit("hello")
            result = task.wait(timeout=10)
            assert task.status() == "SUCCEEDED"
            assert task.result() is result
            assert task.cancel() is False
            assert repr(task) == f"<Task {task.id}>"
        finally:
            q._runner.run(http.aclose())
