"""Asynchronous tasks through the gateway: ``X-DashScope-Async: enable`` on the native routes,
and ``GET /api/v1/tasks/{id}``.

A submission runs the request policies (route, ``max_tokens``, thinking off since a task
cannot stream, history, parameters, context window) and goes upstream through the SDK's task
API (``AsyncQwen.submit_call``); the caller gets the upstream's answer (``{"output": {"task_id",
"task_status"}, "request_id"}``). The gateway remembers which key submitted which task for
``TASK_RETENTION`` seconds (as long as the service keeps a task), so a task is visible only to
the key that made it (another key gets the 404 of an unknown task), and writes its usage record
once, when the task is first seen finished.

With a SQL keys store the tasks are remembered there too (``qwenkit.storage._tasks``), so
several gateway processes behind one address behave as one: a task submitted through one is
polled through any other (``AsyncQwen.resume_task``), and exactly one of them writes its usage
record (a conditional update claims it). Without one they live in this process only.

A key with a budget or rate limit cannot submit tasks: the budget is reserved for the length of
one call, and a task outlives that (400, saying so).
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from qwenkit.client import AsyncQwen
from qwenkit.client._tasks import TERMINAL
from qwenkit.client._tasks_server import ServerTask
from qwenkit.gateway._errors import GatewayError
from qwenkit.storage._tasks import SQLTasks, TaskRow

__all__ = ["TASK_RETENTION", "TaskBook"]

TASK_RETENTION = 86_400.0
_LOCAL_LIMIT = 10_000
"""Tasks kept in this process's memory (the store keeps them all)."""


@dataclass
class _Entry:
    task: ServerTask
    owner: str | None
    expires: float
    recorded: bool = False


class TaskBook:
    """The tasks of this gateway, by id (see the module docstring)."""

    def __init__(
        self,
        client: AsyncQwen,
        shared: SQLTasks | None = None,
        *,
        retention: float = TASK_RETENTION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.shared = shared
        self.retention = retention
        self._clock = clock
        self._tasks: OrderedDict[str, _Entry] = OrderedDict()

    async def add(self, task: ServerTask, owner: str | None) -> None:
        now = self._clock()
        self._forget(now)
        self._remember(_Entry(task, owner, now + self.retention))
        if self.shared is not None:
            call = task.call
            await self.shared.add(
                TaskRow(
                    id=task.id,
                    key_id=owner,
                    model=call.request.model,
                    task=call.task,
                    endpoint=call.tags.get("endpoint"),
                    environment=call.tags.get("environment"),
                    request_id=call.request_id,
                    created_at=now,
                    expires_at=now + self.retention,
                    recorded=False,
                )
            )

    async def get(self, task_id: str, owner: str | None, *, master: bool) -> _Entry:
        entry = self._tasks.get(task_id)
        if entry is None and self.shared is not None:
            row = await self.shared.get(task_id)
            if row is not None:  # submitted through another process
                tags = {
                    name: value
                    for name, value in (
                        ("endpoint", row.endpoint),
                        ("environment", row.environment),
                        ("key_id", row.key_id),
                    )
                    if value
                }
                task = self.client.resume_task(
                    row.id, model=row.model, tags=tags, request_id=row.request_id, task=row.task
                )
                entry = _Entry(task, row.key_id, row.expires_at, recorded=row.recorded)
                self._remember(entry)
        if entry is None or entry.expires <= self._clock() or (not master and entry.owner != owner):
            raise GatewayError.of(
                "InvalidParameter", f"No task {task_id!r} for this key.", status=404
            )
        return entry

    async def poll(self, entry: _Entry) -> dict[str, object]:
        """The task's state now, in the native task API's shape; its usage record is written
        the first time it is seen finished, by one process only."""
        status = await entry.task.status()
        if status in TERMINAL and not entry.recorded:
            entry.recorded = True
            if self.shared is None or await self.shared.claim_record(entry.task.id):
                # the outcome through the usage policy, once; a failed task is recorded as such
                with contextlib.suppress(Exception):
                    await entry.task.result()
        return entry.task.snapshot()

    def _remember(self, entry: _Entry) -> None:
        self._tasks[entry.task.id] = entry
        self._tasks.move_to_end(entry.task.id)
        while len(self._tasks) > _LOCAL_LIMIT:
            self._tasks.popitem(last=False)

    def _forget(self, now: float) -> None:
        for task_id in [t for t, e in self._tasks.items() if e.expires <= now]:
            del self._tasks[task_id]

    async def aclose(self) -> None:
        if self.shared is not None:
            await self.shared.aclose()
