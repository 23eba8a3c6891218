"""``run_batch`` against the emulator over real HTTP: faults, budget, bad lines, async tasks."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from batch_lines import write_input
from emulator_server import restored_config, serve

from qwenkit._core.retries import RetryPolicy
from qwenkit.batch import BatchOptions, ResultFile, run_batch
from qwenkit.client import AsyncQwen
from qwenkit.emulator import EmulatorConfig, create_app

KEY = "sk-test-batch"
FAST_RETRY = RetryPolicy(max_attempts=2, initial_delay=0.005, max_delay=0.02, deadline=10.0)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(create_app(EmulatorConfig())) as base:
        yield base


@pytest.fixture
def control(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url) as client:
        yield client


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def run(url: str, source: Path, out: Path, **options: Any) -> Any:
    async with AsyncQwen(api_key=KEY, base_url=url, retry=FAST_RETRY, usage_sinks=[]) as client:
        with ResultFile(out) as results:
            return await run_batch(client, source, results, BatchOptions(**options))


@pytest.mark.anyio
async def test_2000_lines_through_429s_and_5xx_each_answered_once(
    url: str, control: httpx.Client, tmp_path: Path
) -> None:
    ids = write_input(tmp_path / "in.jsonl", 2000, max_tokens=8)
    faults = {"faults": {"error_rate": 0.05, "error_status": 503}, "throttle": {"burst": 400}}
    with restored_config(control, faults):
        summary = await run(url, tmp_path / "in.jsonl", tmp_path / "out.jsonl", concurrency=32)
    out = rows(tmp_path / "out.jsonl")
    assert Counter(row["custom_id"] for row in out) == Counter(ids)
    assert all(row["error"] is None for row in out), [r["error"] for r in out if r["error"]][:3]
    assert summary.stopped is None
    assert summary.progress.done == 2000
    assert summary.progress.requeued > 0  # some 429s and 503s escaped the client's retries
    first = out[0]
    assert first["response"]["status_code"] == 200
    assert first["response"]["body"]["object"] == "chat.completion"
    assert first["response"]["body"]["choices"][0]["message"]["role"] == "assistant"
    assert first["usage"]["total_tokens"] > 0
    assert Decimal(first["cost"]) > 0


@pytest.mark.anyio
async def test_resume_sends_nothing_for_lines_already_done(
    url: str, control: httpx.Client, tmp_path: Path
) -> None:
    ids = write_input(tmp_path / "in.jsonl", 30, max_tokens=8)
    out = tmp_path / "out.jsonl"
    with restored_config(control, {}):
        await run(url, tmp_path / "in.jsonl", out)
        again = await run(url, tmp_path / "in.jsonl", out)
        log = control.get("/_emulator/requests").json()
    assert again.progress.skipped == 30
    assert again.progress.done == 0
    assert log["total"] == 30
    assert sorted(row["custom_id"] for row in rows(out)) == ids


@pytest.mark.anyio
async def test_the_budget_stops_new_requests(
    url: str, control: httpx.Client, tmp_path: Path
) -> None:
    write_input(tmp_path / "in.jsonl", 200, max_tokens=16)
    with restored_config(control, {}):
        summary = await run(
            url, tmp_path / "in.jsonl", tmp_path / "out.jsonl", concurrency=4,
            budget=Decimal("0.00005"),
        )  # fmt: skip
        log = control.get("/_emulator/requests").json()
    out = rows(tmp_path / "out.jsonl")
    assert summary.stopped == "budget"
    assert "budget 0.00005 reached" in (summary.message or "")
    assert 0 < len(out) < 200
    assert log["total"] == len(out)  # nothing sent past the stop, nothing lost in flight
    spent = sum(Decimal(row["cost"]) for row in out)
    assert spent <= Decimal("0.00005")


@pytest.mark.anyio
async def test_bad_lines_and_deterministic_4xx_are_error_rows(
    url: str, control: httpx.Client, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": "ok", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}\n'
        "{broken\n"
        '{"id": "bad-model", "model": "no-such-model", "messages": "hi"}\n'
    )
    with restored_config(control, {}):
        summary = await run(url, source, tmp_path / "out.jsonl")
        log = control.get("/_emulator/requests").json()
    by_id = {row["custom_id"]: row for row in rows(tmp_path / "out.jsonl")}
    assert by_id["ok"]["error"] is None
    assert by_id["line-2"]["error"]["code"] == "invalid_line"
    assert by_id["line-2"]["error"]["line"] == 2
    assert by_id["line-2"]["error"]["message"].startswith("line 2: not JSON")
    assert by_id["bad-model"]["response"] is None
    assert by_id["bad-model"]["error"]["message"]
    assert summary.progress.failed == 2
    assert summary.progress.requeued == 0
    assert log["total"] <= 2  # the unknown model was tried at most once, never retried


@pytest.mark.anyio
async def test_async_task_mode(url: str, control: httpx.Client, tmp_path: Path) -> None:
    ids = write_input(tmp_path / "in.jsonl", 20, max_tokens=8)
    tasks = {"text_generation_async": True, "pending_seconds": 0.0, "running_seconds": 0.0}
    with restored_config(control, {"tasks": tasks}):
        summary = await run(url, tmp_path / "in.jsonl", tmp_path / "out.jsonl", mode="async-task")
        health = control.get("/_emulator/health").json()
    out = rows(tmp_path / "out.jsonl")
    assert sorted(row["custom_id"] for row in out) == ids
    assert all(row["error"] is None for row in out), out[0]
    assert summary.progress.done == 20
    assert health["tasks"] == 20  # each line went through the service's task API
