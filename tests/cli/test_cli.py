"""The ``qwenkit`` command, run as a user runs it (a real subprocess, real data files)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qwenkit import __version__
from qwenkit.tokens import count_text


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qwenkit", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "120", "HOME": "/tmp"},
    )


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"qwenkit {__version__}"


def test_tokens_count_file_json(tmp_path: Path) -> None:
    text = "Should I bring an umbrella to Shanghai? 明天上海会下雨吗？\n"
    f = tmp_path / "q.txt"
    f.write_text(text, encoding="utf-8")
    out = run("tokens", "count", str(f), "--model", "qwen-plus", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["tokens"] == count_text(text, model="qwen-plus")
    assert data["characters"] == len(text)
    assert data["exact"] is True
    assert data["context_window"] == 1_000_000
    assert data["context_share"] == pytest.approx(data["tokens"] / 1_000_000)


def test_tokens_count_stdin_table() -> None:
    out = run("tokens", "count", "-", stdin="hello world")
    assert out.returncode == 0, out.stderr
    assert "tokens per character" in out.stdout
    assert "share of window" in out.stdout


def test_tokens_count_messages_uses_chatml_accounting() -> None:
    msgs = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Who are you?"},
    ]
    out = run("tokens", "count", "-", "--messages", "--json", stdin=json.dumps(msgs))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tokens"] == 23  # the reference's local measurement


def test_models_table_and_json() -> None:
    out = run("models", "--json", "--region", "cn")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["region"] == "cn-beijing"
    names = {m["model"] for m in data["models"]}
    assert {"qwen-plus", "qwen3-max", "qwen-flash", "qwq-plus", "qwen3-vl-plus"} <= names
    max_row = next(m for m in data["models"] if m["model"] == "qwen3-max")
    assert max_row["currency"] == "CNY"
    assert max_row["input_per_million"] == "2.5"
    table = run("models")
    assert table.returncode == 0
    assert "qwen3-coder-plus" in table.stdout


def test_route_shows_model_temperature_thinking() -> None:
    out = run("route", "extract the invoice number", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["kind"] == "extract"
    assert data["temperature"] == 0.0
    assert data["thinking"] is False
    assert data["max_tokens"] > 0
    assert data["reason"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("tokens", "count", "/no/such/file"), "No such file"),
        (("tokens", "count", "-", "--model", "gpt-4o"), "gpt-4o"),
        (("models", "--region", "mars"), "region"),
        (("route", "x", "--json", "--bogus"), "bogus"),
    ],
)
def test_errors_are_one_line_and_non_zero(args: tuple[str, ...], needle: str) -> None:
    out = run(*args, stdin="text")
    assert out.returncode != 0
    assert needle in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 3


def test_lint_prompt_strict_exit_code_reaches_the_shell(tmp_path: Path) -> None:
    prompt = tmp_path / "system.txt"
    prompt.write_text("You are a helpful assistant. Today is 2026-11-22.\n", encoding="utf-8")
    out = run("lint", "prompt", str(prompt), "--strict")
    assert out.returncode == 1, out.stderr
    assert "date" in out.stdout
    clean = tmp_path / "clean.txt"
    clean.write_text("You are a helpful assistant.\n", encoding="utf-8")
    assert run("lint", "prompt", str(clean), "--strict").returncode == 0


def test_error_text_is_not_taken_for_markup() -> None:
    # "[emulator]" in an error must reach the user as written, not vanish as a rich style tag.
    from qwenkit.cli import _describe

    message = _describe(ModuleNotFoundError("No module named 'starlette'", name="starlette"))
    assert "qwenkit[emulator]" in message
    out = subprocess.run(
        [sys.executable, "-c", f"from qwenkit.cli._output import fail; fail({message!r})"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1
    assert "pip install 'qwenkit[emulator]'" in out.stderr
