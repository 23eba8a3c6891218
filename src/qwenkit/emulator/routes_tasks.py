"""The task routes of the native API: ``GET /tasks/{id}``, ``POST /tasks/{id}/cancel``,
``GET /tasks``, and the submission answer of a request sent with ``X-DashScope-Async`` (the store
and the statuses are ``qwenkit.emulator.tasks``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from qwenkit.emulator.state import EmulatorState
from qwenkit.emulator.streaming import error_response, json_response
from qwenkit.emulator.tasks import STATUSES, Task, millis, task_output
from qwenkit.emulator.validation import auth_error, task_not_cancellable_error
from qwenkit.types import ErrorInfo

__all__ = ["cancel_task", "get_task", "list_tasks", "submit_task"]


def submit_task(
    state: EmulatorState,
    *,
    request_id: str,
    key_id: str,
    model: str,
    body: dict[str, Any] | None,
    error: ErrorInfo | None,
) -> Response:
    """Store an answered request as a task; the submission response (``PENDING``)."""
    task = state.tasks.submit(
        state.config.tasks,
        request_id=request_id,
        key_id=key_id,
        model=model,
        body=body,
        error=error,
    )
    output = {"task_id": task.task_id, "task_status": "PENDING"}
    return json_response(
        200, {"output": output, "request_id": request_id}, {"x-request-id": request_id}
    )


def _state(request: Request) -> tuple[EmulatorState, Response | None]:
    """The app state, and the 401 to answer when the key is not accepted."""
    state = cast("EmulatorState", request.app.state.emulator)
    key, failure = state.check_key(request.headers.get("authorization"))
    if key is None or failure is not None:
        error = auth_error(wire="native", reason=failure or "missing")
        denied = error_response(error, wire="native", stream=False, request_id=str(uuid.uuid4()))
        return state, denied
    state.tasks.expire(state.config.tasks.retention_seconds)
    return state, None


async def get_task(request: Request) -> Response:
    state, denied = _state(request)
    if denied is not None:
        return denied
    task_id = request.path_params["task_id"]
    task = state.tasks.get(task_id)
    body: dict[str, Any] = {"request_id": str(uuid.uuid4())}
    body["output"] = task_output(task, task_id, state.tasks.now())
    if task is not None and task.body is not None and body["output"]["task_status"] == "SUCCEEDED":
        body["usage"] = task.body.get("usage", {})
    return json_response(200, body)


async def cancel_task(request: Request) -> Response:
    state, denied = _state(request)
    if denied is not None:
        return denied
    request_id = str(uuid.uuid4())
    task = state.tasks.get(request.path_params["task_id"])
    now = state.tasks.now()
    if task is None or task.status(now) != "PENDING":
        error = task_not_cancellable_error()
        return error_response(error, wire="native", stream=False, request_id=request_id)
    task.canceled = now
    return json_response(200, {"request_id": request_id})


def _when(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%S").timestamp()
    except ValueError:
        return None


def _int(value: str | None, default: int) -> int:
    try:
        return max(1, int(value)) if value else default
    except ValueError:
        return default


def _list_item(task: Task, status: str, region: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "api_key_id": task.key_id,
        "gmt_create": millis(task.submitted),
        "model_name": task.model,
        "region": region,
        "request_id": task.request_id,
        "status": status,
        "task_id": task.task_id,
    }
    if status != "PENDING":
        item["start_time"] = millis(task.started)
    if status in ("SUCCEEDED", "FAILED", "CANCELED"):
        item["end_time"] = millis(task.end_time())
    return item


async def list_tasks(request: Request) -> Response:
    state, denied = _state(request)
    if denied is not None:
        return denied
    query = request.query_params
    now = state.tasks.now()
    start, end = _when(query.get("start_time")), _when(query.get("end_time"))
    wanted = {k: query.get(k) for k in ("task_id", "model_name", "api_key_id")}
    status_filter = (query.get("status") or "").upper()
    region = str(state.config.auth.region.value)
    items = []
    for task in reversed(state.tasks.all()):
        status = task.status(now)
        if status_filter in STATUSES and status != status_filter:
            continue
        if start is not None and task.submitted < start:
            continue
        if end is not None and task.submitted > end:
            continue
        fields = {"task_id": task.task_id, "model_name": task.model, "api_key_id": task.key_id}
        if any(v and fields[k] != v for k, v in wanted.items()):
            continue
        items.append(_list_item(task, status, region))
    page_no, page_size = _int(query.get("page_no"), 1), _int(query.get("page_size"), 10)
    first = (page_no - 1) * page_size
    body = {
        "total": len(items),
        "data": items[first : first + page_size],
        "total_page": (len(items) + page_size - 1) // page_size,
        "page_no": page_no,
        "request_id": str(uuid.uuid4()),
        "page_size": page_size,
    }
    return json_response(200, body)
