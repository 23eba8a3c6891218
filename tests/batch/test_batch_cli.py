"""``qwenkit batch run`` as a subprocess: SIGKILL mid-run then resume, and the budget's exit 3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from batch_lines import write_input
from emulator_server import restored_config, serve

from qwenkit.emulator import EmulatorConfig, create_app


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(create_app(EmulatorConfig())) as base:
        yield base


@pytest.fixture
def control(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url) as client:
        yield client


def command(source: Path, out: Path, *extra: str) -> list[str]:
    base = [sys.executable, "-m", "qwenkit", "batch", "run", str(source), "--out", str(out)]
    return [*base, "--quiet", *extra]


def environment(url: str) -> dict[str, str]:
    return {**os.environ, "QWENKIT_BASE_URL": url, "DASHSCOPE_API_KEY": "sk-test-batch-cli"}


def custom_ids(out: Path) -> list[str]:
    return [json.loads(line)["custom_id"] for line in out.read_text().splitlines()]


def sent_ids(control: httpx.Client) -> list[str]:
    entries = control.get("/_emulator/requests").json()["requests"]
    return [json.dumps(entry["body"]).split("<<")[1].split(">>")[0] for entry in entries]


def test_sigkill_then_resume_answers_every_line_once(
    url: str, control: httpx.Client, tmp_path: Path
) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = write_input(source, 300, max_tokens=8)
    with restored_config(control, {"pacing": {"slow_upstream_ms": 20}}):
        process = subprocess.Popen(
            command(source, out, "--concurrency", "4"), env=environment(url),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not (out.exists() and len(out.read_bytes().splitlines()) >= 40):
            assert process.poll() is None, "the batch ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        done_before = set(custom_ids(out))
        assert 40 <= len(done_before) < 300
        control.post("/_emulator/reset").raise_for_status()  # the log now holds the rerun only
        rerun = subprocess.run(
            command(source, out), env=environment(url), capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        resent = sent_ids(control)
    assert rerun.returncode == 0, rerun.stderr
    assert f"results in {out}" in rerun.stdout
    assert Counter(custom_ids(out)) == Counter(ids)  # every line, none twice
    assert not done_before & set(resent)  # nothing done before was asked again
    assert len(resent) == 300 - len(done_before)


def test_the_budget_exits_3_with_a_message(url: str, control: httpx.Client, tmp_path: Path) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source, 100, max_tokens=8)
    with restored_config(control, {}):
        result = subprocess.run(
            command(source, out, "--budget", "0.00005", "--concurrency", "2"),
            env=environment(url), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        sent = control.get("/_emulator/requests").json()["total"]
    assert result.returncode == 3, result.stderr
    assert "budget 0.00005 reached" in result.stderr
    assert 0 < len(custom_ids(out)) < 100
    assert sent == len(custom_ids(out))
