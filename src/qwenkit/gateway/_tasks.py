"""Asynchronous tasks through the gateway: ``X-DashScope-Async: enable`` on the native routes,
and ``GET /api/v1/tasks/{id}``.

A submission runs the request policies (route, ``max_tokens``, thinking off since a task
cannot stream, history, parameters, context window) and goes upstream through the SDK's task
API (``AsyncQwen.submit_call``); the caller gets the upstream's answer (``{"output": {"task_id",
"task_status"}, "request_id"}``). The gateway remembers which key submitted which task (in
process, for ``TASK_RETENTION`` seconds, as long as the service keeps a task), so a task is
visible only to the key that made it (another key gets the 404 of an unknown task), and writes
its usage record when the task is first seen finished.

A key with a budget or rate limit cannot submit tasks: the budget is reserved for the length of
one call, and a task outlives that (400, saying so). With several gateway processes behind one
address, a poll must reach the process that took the submission (sticky routing): the map of
tasks is not shared through the store yet.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from qwenkit.client._tasks import TERMINAL
from qwenkit.client._tasks_server import ServerTask
from qwenkit.gateway._errors import GatewayError

__all__ = ["TASK_RETENTION", "TaskBook"]

TASK_RETENTION = 86_400.0


@dataclass
class _Entry:
    task: ServerTask
    owner: str | None
    expires: float
    recorded: bool = False


class TaskBook:
    """The tasks this process submitted, by id (see the module docstring)."""

    def __init__(self, *, retention: float = TASK_RETENTION) -> None:
        self.retention = retention
        self._tasks: dict[str, _Entry] = {}

    def add(self, task: ServerTask, owner: str | None) -> None:
        now = time.monotonic()
        self._forget(now)
        self._tasks[task.id] = _Entry(task, owner, now + self.retention)

    def get(self, task_id: str, owner: str | None, *, master: bool) -> _Entry:
        entry = self._tasks.get(task_id)
        if entry is None or (not master and entry.owner != owner):
            raise GatewayError.of(
                "InvalidParameter", f"No task {task_id!r} for this key.", status=404
            )
        return entry

    async def poll(self, entry: _Entry) -> dict[str, object]:
        """The task's state now, in the native task API's shape; its usage record is written
        the first time it is seen finished."""
        status = await entry.task.status()
        if status in TERMINAL and not entry.recorded:
            entry.recorded = True
            # the outcome through the usage policy, once; a failed task is recorded as such
            with contextlib.suppress(Exception):
                await entry.task.result()
        return entry.task.snapshot()

    def _forget(self, now: float) -> None:
        for task_id in [t for t, e in self._tasks.items() if e.expires <= now]:
            del self._tasks[task_id]
