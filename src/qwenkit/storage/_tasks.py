"""``SQLTasks``: the gateway's asynchronous tasks, shared by every gateway process.

A task submitted through one ``qwenkit serve`` process may be polled through any other behind
the same address, so which key submitted it, and what its usage record needs, lives in the
store (``qk_tasks``, next to the keys), not in one process's memory:

- ``add`` remembers a submission (its owner's key id, model, tags, the submission's request id)
  until ``expires_at``; expired rows are deleted by later ``add``\\ s;
- ``get`` finds it again (``None`` when unknown or expired);
- ``claim_record`` is how exactly one process writes the usage record of a finished task: one
  conditional ``UPDATE ... WHERE recorded_at IS NULL``; the process whose update changed the
  row writes it, every other poll of the task sees it claimed.

SQLite or PostgreSQL, by the keys store's URL (the migrations create the table).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from qwenkit.storage._schema import tasks
from qwenkit.storage._sql import LoopEngines, storage_errors
from qwenkit.storage._urls import StoreURL, parse_store_url

__all__ = ["SQLTasks", "TaskRow"]


@dataclass(frozen=True, slots=True)
class TaskRow:
    """A remembered task: who submitted it and what its usage record needs."""

    id: str
    key_id: str | None
    model: str
    task: str | None
    endpoint: str | None
    environment: str | None
    request_id: str | None
    created_at: float
    expires_at: float
    recorded: bool


class SQLTasks:
    """The tasks table of the store at ``url`` (see the module docstring)."""

    def __init__(self, url: str | StoreURL, *, clock: Callable[[], float] = time.time) -> None:
        self.url = url if isinstance(url, StoreURL) else parse_store_url(url, part="keys")
        self._engines = LoopEngines(self.url, pool_size=2)
        self._clock = clock

    async def add(self, row: TaskRow) -> None:
        now = self._clock()
        async with (
            storage_errors(self.url, "tasks store"),
            self._engines.get().write.begin() as conn,
        ):
            await conn.execute(delete(tasks).where(tasks.c.expires_at <= now))
            await conn.execute(
                tasks.insert().values(
                    id=row.id,
                    key_id=row.key_id,
                    model=row.model,
                    task=row.task,
                    endpoint=row.endpoint,
                    environment=row.environment,
                    request_id=row.request_id,
                    created_at=row.created_at,
                    expires_at=row.expires_at,
                    recorded_at=None,
                )
            )

    async def get(self, task_id: str) -> TaskRow | None:
        async with (
            storage_errors(self.url, "tasks store"),
            self._engines.get().read.connect() as conn,
        ):
            found = (await conn.execute(select(tasks).where(tasks.c.id == task_id))).first()
        if found is None or found.expires_at <= self._clock():
            return None
        return TaskRow(
            id=found.id,
            key_id=found.key_id,
            model=found.model,
            task=found.task,
            endpoint=found.endpoint,
            environment=found.environment,
            request_id=found.request_id,
            created_at=found.created_at,
            expires_at=found.expires_at,
            recorded=found.recorded_at is not None,
        )

    async def claim_record(self, task_id: str) -> bool:
        """Whether this caller is the one to write the task's usage record (only once, over
        every process)."""
        async with (
            storage_errors(self.url, "tasks store"),
            self._engines.get().write.begin() as conn,
        ):
            done = await conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.recorded_at.is_(None))
                .values(recorded_at=self._clock())
            )
        return bool(done.rowcount)

    async def aclose(self) -> None:
        await self._engines.aclose()

    def __repr__(self) -> str:
        return f"SQLTasks({self.url.masked!r})"
