"""Asynchronous tasks: the store (reference §4, "Manage asynchronous tasks" page of the QwenCloud
API reference); the routes are ``qwenkit.emulator.routes_tasks``.

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
from typing import Any

from qwenkit.emulator.config import TasksConfig
from qwenkit.types import ErrorInfo

__all__ = ["STATUSES", "Task", "TaskStore", "millis", "task_output"]

STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")


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


def millis(moment: float) -> int:
    return int(moment * 1000)


class TaskStore:
    """The tasks of one emulator, oldest first; expired ones are forgotten on access."""

    def __init__(self) -> None:
        self._tasks: OrderedDict[str, Task] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tasks)

    def clear(self) -> None:
        self._tasks.clear()

    def now(self) -> float:
        """The store's clock (wall time: task times are shown as dates)."""
        return time.time()

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
