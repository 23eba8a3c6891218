"""Asynchronous tasks: the store and the three task routes (reference §4, "Manage asynchronous
tasks" page of the QwenCloud API reference).

The real text-generation service rejects ``X-DashScope-Async: enable``; with
``config.tasks.text_generation_async`` the emulator accepts it so clients of the task API can be
tested. The answer is generated at submission (like every answer: deterministic) and revealed by
time, computed lazily from timestamps (no background threads):

- ``PENDING`` for ``pending_seconds``, then ``RUNNING`` for ``running_seconds``, then
  ``SUCCEEDED`` (``output`` holds the native non-streaming output: ``choices`` or ``text``) or
  ``FAILED`` (``output.code`` / ``output.message``) when the generation was an error;
- ``CANCELED`` once cancelled; only a ``PENDING`` task can be: otherwise 400
  ``UnsupportedOperation`` "Failed to cancel the task, please confirm if the task is in PENDING
  status." (the documented error);
- an unknown or expired id (older than ``retention_seconds``) is ``task_status: "UNKNOWN"`` with
  HTTP 200, as documented.

Tasks belong to the account, not to the key (any accepted key sees them all, as documented); the
list has the documented shape (``data[]`` with ``status``, ``gmt_create``... in epoch
milliseconds, ``total``, ``total_page``, ``page_no``, ``page_size``) and honours ``task_id``,
``status``, ``model_name``, ``api_key_id``, ``start_time``/``end_time`` (``YYYYMMDDhhmmss``).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from starlette.requests import Request
from starlette.responses import Response

from qwenkit.emulator.config import TasksConfig
from qwenkit.emulator.streaming import error_response, json_response
from qwenkit.emulator.validation import auth_error, task_not_cancellable_error
from qwenkit.types import ErrorInfo

if TYPE_CHECKING:  # the state holds a TaskStore: imported for types only, no import cycle
    from qwenkit.emulator.state import EmulatorState

__all__ = ["Task", "TaskStore", "cancel_task", "get_task", "list_tasks", "submit_task"]

_STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")


@dataclass(slots=True)
class Task:
    task_id: str
    request_id: str
    key_id: str
    model: str
    submitted: float
    started: float
    ended: float
    body: dict[str, Any] | None
    """The native non-streaming success body (``output``, ``usage``), or ``None`` on failure."""
    error: ErrorInfo | None
    canceled: float | None = None

    def status(self, now: float) -> str:
        if self.canceled is not None:
            return "CANCELED"
        if now < self.started:
            return "PENDING"
        if now < self.ended:
            return "RUNNING"
        return "FAILED" if self.error is not None else "SUCCEEDED"

    def end_time(self) -> float:
        return self.canceled if self.canceled is not None else self.ended


def _stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _millis(moment: float) -> int:
    return int(moment * 1000)


class TaskStore:
    """The tasks of one emulator, oldest first; expired ones are forgotten on access."""

    def __init__(self) -> None:
        self._tasks: OrderedDict[str, Task] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tasks)

    def clear(self) -> None:
        self._tasks.clear()

    def submit(
        self,
        config: TasksConfig,
        *,
        request_id: str,
        key_id: str,
        model: str,
        body: dict[str, Any] | None,
        error: ErrorInfo | None,
    ) -> Task:
        now = time.time()
        started = now + config.pending_seconds
        task = Task(
            task_id=str(uuid.uuid4()),
            request_id=request_id,
            key_id=key_id,
            model=model,
            submitted=now,
            started=started,
            ended=started + config.running_seconds,
            body=body,
            error=error,
        )
        self._tasks[task.task_id] = task
        return task

    def expire(self, retention_seconds: float) -> None:
        limit = time.time() - retention_seconds
        while self._tasks:
            first = next(iter(self._tasks.values()))
            if first.submitted >= limit:
                break
            self._tasks.popitem(last=False)

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def all(self) -> list[Task]:
        return list(self._tasks.values())


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


def task_output(task: Task | None, task_id: str, now: float) -> dict[str, Any]:
    """The ``output`` of ``GET /tasks/{id}`` at time ``now``."""
    if task is None:
        return {"task_id": task_id, "task_status": "UNKNOWN"}
    status = task.status(now)
    out: dict[str, Any] = {
        "task_id": task.task_id,
        "task_status": status,
        "submit_time": _stamp(task.submitted),
    }
    if status != "PENDING" and not (
        status == "CANCELED" and task.canceled and task.canceled < task.started
    ):
        out["scheduled_time"] = _stamp(task.started)
    if status in ("SUCCEEDED", "FAILED", "CANCELED"):
        out["end_time"] = _stamp(task.end_time())
    if status == "SUCCEEDED" and task.body is not None:
        out.update(task.body.get("output", {}))
    if status == "FAILED" and task.error is not None:
        out["code"] = task.error.code
        out["message"] = task.error.message
    return out


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
    body["output"] = task_output(task, task_id, time.time())
    if task is not None and task.body is not None and body["output"]["task_status"] == "SUCCEEDED":
        body["usage"] = task.body.get("usage", {})
    return json_response(200, body)


async def cancel_task(request: Request) -> Response:
    state, denied = _state(request)
    if denied is not None:
        return denied
    request_id = str(uuid.uuid4())
    task = state.tasks.get(request.path_params["task_id"])
    now = time.time()
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
        "gmt_create": _millis(task.submitted),
        "model_name": task.model,
        "region": region,
        "request_id": task.request_id,
        "status": status,
        "task_id": task.task_id,
    }
    if status != "PENDING":
        item["start_time"] = _millis(task.started)
    if status in ("SUCCEEDED", "FAILED", "CANCELED"):
        item["end_time"] = _millis(task.end_time())
    return item


async def list_tasks(request: Request) -> Response:
    state, denied = _state(request)
    if denied is not None:
        return denied
    query = request.query_params
    now = time.time()
    start, end = _when(query.get("start_time")), _when(query.get("end_time"))
    wanted = {k: query.get(k) for k in ("task_id", "model_name", "api_key_id")}
    status_filter = (query.get("status") or "").upper()
    region = str(state.config.auth.region.value)
    items = []
    for task in reversed(state.tasks.all()):
        status = task.status(now)
        if status_filter in _STATUSES and status != status_filter:
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
