"""``--mode batch-api`` against the emulator over real HTTP: 50 lines, resume, a failed batch."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from batch_lines import write_input
from emulator_server import serve

from qwenkit.batch import BatchOptions, ResultFile, run_batch
from qwenkit.client import AsyncQwen
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator.app import app_state

KEY = "sk-test-batch-api"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Any]]:
    config = EmulatorConfig.model_validate(
        {"batches": {"validating_seconds": 0.02, "in_progress_seconds": 0.02}}
    )
    app = create_app(config)
    with serve(app) as base:
        yield base, app


async def run(url: str, source: Path, out: Path) -> Any:
    options = BatchOptions(mode="batch-api", model="qwen-plus", poll_initial=0.02, poll_max=0.1)
    async with AsyncQwen(api_key=KEY, base_url=url, usage_sinks=[]) as client:
        with ResultFile(out) as results:
            return await run_batch(client, source, results, options)


@pytest.mark.anyio
async def test_50_lines_answered_once_like_chat_completions(
    server: tuple[str, Any], tmp_path: Path
) -> None:
    url, app = server
    ids = write_input(tmp_path / "in.jsonl", 50, max_tokens=8)
    summary = await run(url, tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    assert summary.stopped is None
    assert summary.progress.done == 50
    assert summary.progress.tokens > 0
    assert summary.progress.cost > 0
    rows = [json.loads(raw) for raw in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert Counter(row["custom_id"] for row in rows) == Counter(ids)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=url + "/compatible-mode/v1", headers=headers) as http:
        for row in rows[:10]:
            assert row["error"] is None
            assert row["usage"]["total_tokens"] > 0
            assert row["cost"]
            direct = await http.post("/chat/completions", json={
                "model": "qwen-plus", "max_tokens": 8,
                "messages": [{"role": "user", "content": f"<<{row['custom_id']}>>"}],
            })  # fmt: skip
            expected = direct.json()["choices"][0]["message"]["content"]
            assert row["response"]["body"]["choices"][0]["message"]["content"] == expected
    batches = len(app_state(app).batches.batches)
    rerun = await run(url, tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    assert rerun.progress.skipped == 50
    assert rerun.progress.done == 0
    assert len(app_state(app).batches.batches) == batches  # no new batch


@pytest.mark.anyio
async def test_only_pending_lines_are_sent(server: tuple[str, Any], tmp_path: Path) -> None:
    url, app = server
    ids = write_input(tmp_path / "in.jsonl", 6, max_tokens=8)
    (tmp_path / "few.jsonl").write_text(
        "".join(raw + "\n" for raw in (tmp_path / "in.jsonl").read_text().splitlines()[:2])
    )
    await run(url, tmp_path / "few.jsonl", tmp_path / "out.jsonl")
    await run(url, tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    rows = [json.loads(raw) for raw in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert Counter(row["custom_id"] for row in rows) == Counter(ids)
    last = list(app_state(app).batches.batches.values())[-1]
    assert last.data["request_counts"]["total"] == 4


def test_cli_batch_api(server: tuple[str, Any], tmp_path: Path, monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from qwenkit.cli import app as cli

    url, _ = server
    ids = write_input(tmp_path / "in.jsonl", 5, max_tokens=8)
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    result = CliRunner().invoke(cli, [
        "batch", "run", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "out.jsonl"),
        "--model", "qwen-plus", "--mode", "batch-api", "--base-url", url, "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(raw) for raw in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(row["custom_id"] for row in rows) == ids


def test_malformed_input_file_fails_the_batch(server: tuple[str, Any]) -> None:
    url, _ = server
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=url + "/compatible-mode/v1", headers=headers) as http:
        file_id = http.post("/files", files={"file": ("x.jsonl", b"{not json\n")},
                            data={"purpose": "batch"}).json()["id"]  # fmt: skip
        batch = http.post("/batches", json={"input_file_id": file_id,
                          "endpoint": "/v1/chat/completions", "completion_window": "24h"}).json()  # fmt: skip
        import time

        for _ in range(500):
            batch = http.get(f"/batches/{batch['id']}").json()
            if batch["status"] not in ("validating", "in_progress"):
                break
            time.sleep(0.01)
    assert batch["status"] == "failed"
    assert batch["errors"]["data"][0]["code"] == "invalid_json_line"
