"""``qwenkit serve``'s start: the in-process emulator when no upstream is configured, the
embedded store, a master key generated once (mode 0600) and read back on the next start, and a
banner with the base URLs and examples for both SDKs and curl."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from qwenkit.cli import app
from qwenkit.cli._serve import banner, build_app


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QWENKIT_HOME", str(tmp_path))
    for name in ("DASHSCOPE_API_KEY", "QWENKIT_API_KEY", "QWENKIT_BASE_URL", "QWENKIT_MASTER_KEY",
                 "QWENKIT_STORE_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.anyio
async def test_with_nothing_configured_it_serves_the_emulator_from_the_embedded_store(
    home: Path,
) -> None:
    asgi, facts = build_app(None, None)
    assert "emulator, in process" in facts["upstream"]
    assert facts["store"] == f"sqlite:///{home / 'qwenkit.db'}"
    master = facts["master_key"]
    key_file = home / "master.key"
    assert key_file.read_text().strip() == master
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    async with (
        asgi.router.lifespan_context(asgi),
        httpx.AsyncClient(transport=httpx.ASGITransport(asgi), base_url="http://gw") as client,
    ):
        answer = await client.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {master}"},
            json={"model": "qwen-plus", "messages": [{"role": "user", "content": "Hi"}]},
        )
        refused = await client.post("/v1/chat/completions", json={"model": "qwen-plus"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"]
    assert refused.status_code == 401

    again_app, again = build_app(None, None)  # the next start reads the key, prints none
    assert "master_key" not in again
    assert again["master"] == f"file {key_file}"
    async with again_app.router.lifespan_context(again_app):
        pass


def test_a_master_key_from_the_environment_is_used_and_never_printed(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QWENKIT_MASTER_KEY", "qk-master-from-env-0123456789")
    _, facts = build_app(None, None)
    text = banner("127.0.0.1", 8000, facts)
    assert "qk-master-from-env" not in text
    assert "QWENKIT_MASTER_KEY" in text
    assert not (home / "master.key").exists()


def test_the_banner_shows_both_base_urls_and_examples_for_each_client(home: Path) -> None:
    _, facts = build_app(None, None)
    text = banner("127.0.0.1", 8123, facts)
    assert "http://127.0.0.1:8123/compatible-mode/v1" in text
    assert "http://127.0.0.1:8123/api/v1" in text
    for example in ("from openai import OpenAI", "dashscope.Generation.call", "curl "):
        assert example in text
    assert facts["master_key"] in text  # the first start shows it, once


def test_serve_is_a_command_of_the_cli() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--host", "--port", "--workers", "--config", "--store"):
        assert flag in result.output
