"""Asynchronous tasks: rejected by default, then the PENDING → RUNNING → SUCCEEDED lifecycle."""

from __future__ import annotations

import re
from typing import Any

import anyio
import httpx
import pytest

from qwenkit.emulator import EmulatorConfig, create_app

TEXT = "/api/v1/services/aigc/text-generation/generation"
KEY = {"Authorization": "Bearer sk-test-tasks"}
ASYNC = {**KEY, "X-DashScope-Async": "enable"}
REQUEST = {
    "model": "qwen-plus",
    "input": {"messages": [{"role": "user", "content": "Write a haiku about rain."}]},
    "parameters": {"result_format": "message"},
}
STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def client_for(tasks: dict[str, Any] | None = None, **extra: Any) -> httpx.AsyncClient:
    data: dict[str, Any] = {**extra}
    if tasks is not None:
        data["tasks"] = {"text_generation_async": True, **tasks}
    transport = httpx.ASGITransport(create_app(EmulatorConfig.model_validate(data)))
    return httpx.AsyncClient(transport=transport, base_url="http://e")


@pytest.mark.anyio
async def test_async_is_rejected_by_default() -> None:
    async with client_for() as c:
        r = await c.post(TEXT, json=REQUEST, headers=ASYNC)
    assert r.status_code == 403
    assert r.json()["code"] == "AccessDenied"
    assert r.json()["message"] == "current user api does not support asynchronous calls"


@pytest.mark.anyio
async def test_task_lifecycle() -> None:
    async with client_for({"pending_seconds": 0.5, "running_seconds": 0.5}) as c:
        submitted = await c.post(TEXT, json=REQUEST, headers=ASYNC)
        assert submitted.status_code == 200
        output = submitted.json()["output"]
        assert output["task_status"] == "PENDING"
        task_id = output["task_id"]
        pending = (await c.get(f"/api/v1/tasks/{task_id}", headers=KEY)).json()
        assert pending["output"]["task_status"] == "PENDING"
        assert STAMP.fullmatch(pending["output"]["submit_time"])
        await anyio.sleep(0.6)
        running = (await c.get(f"/api/v1/tasks/{task_id}", headers=KEY)).json()
        assert running["output"]["task_status"] == "RUNNING"
        assert "scheduled_time" in running["output"]
        await anyio.sleep(0.6)
        done = (await c.get(f"/api/v1/tasks/{task_id}", headers=KEY)).json()
        sync = (await c.post(TEXT, json=REQUEST, headers=KEY)).json()
    assert done["output"]["task_status"] == "SUCCEEDED"
    assert STAMP.fullmatch(done["output"]["end_time"])
    assert done["output"]["choices"] == sync["output"]["choices"]  # the same deterministic answer
    assert done["usage"]["output_tokens"] == sync["usage"]["output_tokens"]
    assert done["request_id"] != submitted.json()["request_id"]


@pytest.mark.anyio
async def test_failed_task_carries_the_error() -> None:
    rule = {
        "match": {"last_user": "haiku"},
        "error": {
            "status": 400,
            "code": "DataInspectionFailed",
            "message": "Input data may contain inappropriate content.",
        },
    }
    async with client_for({"pending_seconds": 0, "running_seconds": 0}, scenarios=[rule]) as c:
        task_id = (await c.post(TEXT, json=REQUEST, headers=ASYNC)).json()["output"]["task_id"]
        output = (await c.get(f"/api/v1/tasks/{task_id}", headers=KEY)).json()["output"]
    assert output["task_status"] == "FAILED"
    assert output["code"] == "DataInspectionFailed"
    assert output["message"] == "Input data may contain inappropriate content."


@pytest.mark.anyio
async def test_cancel_only_while_pending() -> None:
    async with client_for({"pending_seconds": 30, "running_seconds": 0}) as c:
        task_id = (await c.post(TEXT, json=REQUEST, headers=ASYNC)).json()["output"]["task_id"]
        cancel = await c.post(f"/api/v1/tasks/{task_id}/cancel", headers=KEY)
        assert cancel.status_code == 200
        assert set(cancel.json()) == {"request_id"}
        status = (await c.get(f"/api/v1/tasks/{task_id}", headers=KEY)).json()["output"]
        again = await c.post(f"/api/v1/tasks/{task_id}/cancel", headers=KEY)
    assert status["task_status"] == "CANCELED"
    assert again.status_code == 400
    assert again.json()["code"] == "UnsupportedOperation"
    assert again.json()["message"] == (
        "Failed to cancel the task, please confirm if the task is in PENDING status."
    )


@pytest.mark.anyio
async def test_unknown_task_is_unknown_not_an_error() -> None:
    async with client_for({}) as c:
        r = await c.get("/api/v1/tasks/0385dc79-0000-0000-0000-000000000000", headers=KEY)
        cancel = await c.post("/api/v1/tasks/nope/cancel", headers=KEY)
    assert r.status_code == 200
    assert r.json()["output"] == {
        "task_id": "0385dc79-0000-0000-0000-000000000000",
        "task_status": "UNKNOWN",
    }
    assert cancel.status_code == 400


@pytest.mark.anyio
async def test_list_tasks_with_paging_and_filters() -> None:
    async with client_for({"pending_seconds": 30}) as c:
        ids = [
            (await c.post(TEXT, json=REQUEST, headers=ASYNC)).json()["output"]["task_id"]
            for _ in range(3)
        ]
        page = (await c.get("/api/v1/tasks", params={"page_size": 2}, headers=KEY)).json()
        second = (
            await c.get("/api/v1/tasks", params={"page_size": 2, "page_no": 2}, headers=KEY)
        ).json()
        running = (await c.get("/api/v1/tasks", params={"status": "RUNNING"}, headers=KEY)).json()
        one = (await c.get("/api/v1/tasks", params={"task_id": ids[0]}, headers=KEY)).json()
    assert page["total"] == 3
    assert page["total_page"] == 2
    assert page["page_no"] == 1
    assert page["page_size"] == 2
    assert [item["task_id"] for item in page["data"]] == ids[::-1][:2]  # newest first
    assert [item["task_id"] for item in second["data"]] == [ids[0]]
    item = page["data"][0]
    assert item["status"] == "PENDING"
    assert item["model_name"] == "qwen-plus"
    assert isinstance(item["gmt_create"], int)
    assert item["region"] == "ap-southeast-1"
    assert running["total"] == 0
    assert running["data"] == []
    assert [item["task_id"] for item in one["data"]] == [ids[0]]


@pytest.mark.anyio
async def test_reset_forgets_tasks() -> None:
    async with client_for({}) as c:
        task_id = (await c.post(TEXT, json=REQUEST, headers=ASYNC)).json()["output"]["task_id"]
        await c.post("/_emulator/reset")
        output = (await c.get(f"/api/v1/tasks/{task_id}", headers=KEY)).json()["output"]
    assert output["task_status"] == "UNKNOWN"
