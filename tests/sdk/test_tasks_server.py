"""``submit(server=True)``: ``X-DashScope-Async`` tasks against the emulator's task API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from qwenkit._core.usage import ListSink
from qwenkit._exceptions import APIError, PermissionDeniedError, ValidationError
from qwenkit._settings import Mode
from qwenkit.client._async import AsyncQwen
from qwenkit.client._call import make_call
from qwenkit.client._sync import Qwen
from qwenkit.client._tasks import PollSchedule, TaskError, TaskTimeoutError
from qwenkit.client._tasks_server import ServerTask
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator import tasks as emulator_tasks
from qwenkit.emulator.app import app_state

KEY = "sk-test-server-tasks"


@pytest.fixture(params=["compat", "native"])
def mode(request: pytest.FixtureRequest) -> Mode:
    value: Mode = request.param
    return value


def emulator(pending: float = 0.0, running: float = 0.0, **config: Any) -> Starlette:
    tasks = {"text_generation_async": True, "pending_seconds": pending, "running_seconds": running}
    return create_app(EmulatorConfig.model_validate({"tasks": tasks, **config}))


@asynccontextmanager
async def connect(
    app: Starlette, mode: Mode = "compat", sink: ListSink | None = None
) -> AsyncIterator[AsyncQwen]:
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http,
        AsyncQwen(
            api_key=KEY,
            base_url="http://emulator",
            mode=mode,
            http_client=http,
            usage_sinks=[sink] if sink else [],
        ) as client,
    ):
        yield client


class Clock:
    """A fake wall clock for the emulator's task timestamps, advanced by the fake sleep."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(emulator_tasks, "time", fake)
    return fake


@pytest.mark.anyio
async def test_submit_then_wait_at_the_documented_cadence(mode: Mode, clock: Clock) -> None:
    sink = ListSink()
    app = emulator(pending=2.5, running=4.0)
    async with connect(app, mode, sink) as client:
        task = await client.submit("hello", server=True)
        assert task.server is True
        assert await task.status() == "PENDING"
        result = await task.wait(sleep=clock.sleep)
        again = await task.result()
    assert clock.slept == [1, 1, 1, 2, 2]  # PENDING until 2.5 s, RUNNING until 6.5 s
    assert result.content
    assert again is result
    (entry,) = app_state(app).log.last()
    assert entry["path"] == "/api/v1/services/aigc/text-generation/generation"  # native, always
    assert entry["body"]["parameters"]["max_tokens"] == 2048  # the request policies ran
    assert result.request_id == entry["request_id"]
    assert result.usage is not None
    assert result.usage.completion_tokens == entry["usage"]["completion_tokens"]
    assert result.cost is not None
    (record,) = sink.records  # one record, written when the outcome was read
    assert (record.status, record.completion_tokens) == ("ok", result.usage.completion_tokens)


@pytest.mark.anyio
async def test_wait_times_out_by_the_time_slept(clock: Clock) -> None:
    async with connect(emulator(pending=100)) as client:
        task = await client.submit("hello", server=True)
        with pytest.raises(TaskTimeoutError) as caught:
            await task.wait(timeout=3.5, sleep=clock.sleep, poll=PollSchedule(start=1, cap=1))
    assert clock.slept == [1, 1, 1, 0.5]
    assert caught.value.status == "PENDING"


@pytest.mark.anyio
async def test_text_generation_refuses_async_calls_by_default() -> None:
    sink = ListSink()
    app = create_app(EmulatorConfig())
    async with connect(app, sink=sink) as client:
        with pytest.raises(PermissionDeniedError) as caught:
            await client.submit("hello", server=True)
    assert caught.value.code == "AccessDenied"
    assert "does not support asynchronous calls" in caught.value.message
    assert [(r.status, r.http_status) for r in sink.records] == [("error", 403)]


@pytest.mark.anyio
async def test_a_task_cannot_stream_so_thinking_is_refused() -> None:
    app = emulator()
    async with connect(app) as client:
        with pytest.raises(ValidationError, match="cannot stream"):
            await client.submit("hello", server=True, thinking=True)
        with pytest.raises(ValidationError, match="cannot stream"):  # only answers streaming
            await client.submit("hello", server=True, model="qwen3-32b", thinking=False)
        assert app_state(app).log.last() == []  # nothing was sent
        with pytest.raises(PermissionDeniedError):  # the emulator runs text tasks only
            await client.submit("hello", server=True, model="qwen3.5-plus")
    (entry,) = app_state(app).log.last()
    assert entry["path"] == "/api/v1/services/aigc/multimodal-generation/generation"
    assert entry["body"]["parameters"]["enable_thinking"] is False  # thinks by default: told not to


@pytest.mark.anyio
async def test_cancel_only_while_pending(clock: Clock) -> None:
    async with connect(emulator(pending=5, running=5)) as client:
        task = await client.submit("hello", server=True)
        assert await task.cancel() is True
        assert await task.status() == "CANCELED"
        with pytest.raises(TaskError) as caught:
            await task.wait(sleep=clock.sleep)
        late = await client.submit("hello", server=True)
        clock.now += 6  # RUNNING now
        assert await late.status() == "RUNNING"
        assert await late.cancel() is False
    assert caught.value.status == "CANCELED"


@pytest.mark.anyio
async def test_a_failed_task_raises_its_error() -> None:
    rule = {"error": {"status": 400, "code": "InvalidParameter", "message": "bad input"}}
    async with connect(emulator(scenarios=[rule])) as client:
        task = await client.submit("hello", server=True)
        with pytest.raises(APIError) as caught:
            await task.wait()
        assert await task.status() == "FAILED"
    assert (caught.value.code, caught.value.message) == ("InvalidParameter", "bad input")


@pytest.mark.anyio
async def test_an_unknown_task_has_no_result() -> None:
    async with connect(emulator()) as client:
        call = make_call("hello", model=None, task=None, thinking=None, params={})
        task = ServerTask(client._tasks, call, "no-such-task")
        with pytest.raises(TaskError) as caught:
            await task.wait()
    assert caught.value.status == "UNKNOWN"


def test_the_sync_client_drives_a_server_task() -> None:
    app = emulator()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app))
    with Qwen(api_key=KEY, base_url="http://emulator", http_client=http, usage_sinks=[]) as q:
        try:
            task = q.submit("hello", server=True)
            assert task.server is True
            assert task.wait().content
            assert task.status() == "SUCCEEDED"
        finally:
            q._runner.run(http.aclose())


@pytest.mark.anyio
async def test_a_task_submitted_by_one_client_is_resumed_by_another_by_its_id() -> None:
    """What a restarted worker (or another gateway process) does: only the id and the model
    survive; the outcome is recorded once, by the client that reads it, under that model."""
    app = emulator()
    async with connect(app) as first:
        submitted = await first.submit("hello", server=True, model="qwen-flash")
    sink = ListSink()
    async with connect(app, sink=sink) as second:
        task = second.resume_task(submitted.id, model="qwen-flash", tags={"endpoint": "digest"})
        result = await task.wait()
    assert result.content
    assert result.usage is not None
    (record,) = sink.records
    assert (record.model, record.endpoint, record.status) == ("qwen-flash", "digest", "ok")
    assert record.completion_tokens == result.usage.completion_tokens
    assert record.cost is not None


def test_the_sync_client_resumes_a_task_too() -> None:
    app = emulator()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app))
    with Qwen(api_key=KEY, base_url="http://emulator", http_client=http, usage_sinks=[]) as q:
        try:
            submitted = q.submit("hello", server=True)
            resumed = q.resume_task(submitted.id, model="qwen-plus")
            assert resumed.wait().content
            assert resumed.status() == "SUCCEEDED"
        finally:
            q._runner.run(http.aclose())
