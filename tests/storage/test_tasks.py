"""``SQLTasks``, the gateway's shared task table, on SQLite and PostgreSQL: a task is found
again until it expires, expired rows are cleared, and of many concurrent claims to write a
task's usage record exactly one wins (each claim on its own store object and connection, as
separate gateway processes would be)."""

from __future__ import annotations

import anyio
import pytest

from qwenkit.storage import upgrade_store
from qwenkit.storage._tasks import SQLTasks, TaskRow


def row(task_id: str, now: float, ttl: float = 60.0) -> TaskRow:
    return TaskRow(
        id=task_id, key_id="k1", model="qwen-plus", task="summarize", endpoint="digest",
        environment="prod", request_id="req-1", created_at=now, expires_at=now + ttl,
        recorded=False,
    )  # fmt: skip


@pytest.mark.anyio
async def test_a_task_is_found_again_until_it_expires(sql_url: str) -> None:
    upgrade_store(sql_url)
    clock = [1_000.0]
    tasks = SQLTasks(sql_url, clock=lambda: clock[0])
    try:
        await tasks.add(row("t-1", clock[0], ttl=10))
        found = await tasks.get("t-1")
        assert found is not None
        assert (found.key_id, found.model, found.endpoint, found.recorded) == (
            "k1", "qwen-plus", "digest", False,
        )  # fmt: skip
        assert await tasks.get("t-unknown") is None
        clock[0] += 11
        assert await tasks.get("t-1") is None  # expired
        await tasks.add(row("t-2", clock[0]))  # clears what expired
        clock[0] -= 11
        assert await tasks.get("t-1") is None
    finally:
        await tasks.aclose()


@pytest.mark.anyio
async def test_of_many_concurrent_claims_exactly_one_records_the_task(sql_url: str) -> None:
    upgrade_store(sql_url)
    stores = [SQLTasks(sql_url) for _ in range(8)]
    try:
        await stores[0].add(row("t-claimed", 2_000_000_000.0))
        wins: list[bool] = []

        async def claim(tasks: SQLTasks) -> None:
            for _ in range(5):
                wins.append(await tasks.claim_record("t-claimed"))

        async with anyio.create_task_group() as group:
            for tasks in stores:
                group.start_soon(claim, tasks)
        assert wins.count(True) == 1
        assert len(wins) == 40
        found = await stores[3].get("t-claimed")
        assert found is not None
        assert found.recorded
    finally:
        for tasks in stores:
            await tasks.aclose()
