"""The emulator over real sockets (uvicorn in a thread, and the ``qwenkit emulate`` command)."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from qwenkit.cli._emulate import banner, build_config, emulate
from qwenkit.emulator import EmulatorConfig, create_app

KEY = {"Authorization": "Bearer sk-test-server"}
MESSAGES = [{"role": "user", "content": "Hello there"}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server_url() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(EmulatorConfig()),
            host="127.0.0.1",
            port=port,
            log_level="critical",
            ws="none",
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive()
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_real_http_request_and_stream(server_url: str) -> None:
    with httpx.Client(base_url=server_url, timeout=10) as client:
        r = client.post(
            "/compatible-mode/v1/chat/completions",
            json={"model": "qwen-plus", "messages": MESSAGES},
            headers=KEY,
        )
        assert r.status_code == 200
        content = r.json()["choices"][0]["message"]["content"]
        body = {"model": "qwen-plus", "input": {"messages": MESSAGES}}
        headers = {**KEY, "X-DashScope-SSE": "enable"}
        with client.stream(
            "POST", "/api/v1/services/aigc/text-generation/generation", json=body, headers=headers
        ) as stream:
            assert stream.status_code == 200
            lines = [line for line in stream.iter_lines() if line.startswith("data:")]
    texts = [json.loads(line[5:])["output"]["text"] for line in lines]
    assert texts[-1] == content  # without incremental_output the native stream is cumulative
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))


def test_real_drop_closes_the_connection(server_url: str) -> None:
    with httpx.Client(base_url=server_url, timeout=10) as client:
        patch = client.patch("/_emulator/config", json={"faults": {"drop_after_chunks": 2}})
        assert patch.status_code == 200
        body = {"model": "qwen-plus", "messages": MESSAGES, "stream": True}
        received: list[str] = []
        with (
            pytest.raises(httpx.RemoteProtocolError),
            client.stream(
                "POST", "/compatible-mode/v1/chat/completions", json=body, headers=KEY
            ) as stream,
        ):
            received.extend(line for line in stream.iter_lines() if line)
    assert len(received) == 2
    assert all(line.startswith("data: {") for line in received)


def test_the_request_log_tells_when_a_stream_ended_and_whether_the_client_left(
    server_url: str,
) -> None:
    with httpx.Client(base_url=server_url, timeout=10) as client:
        client.patch("/_emulator/config", json={"pacing": {"tokens_per_second": 200}})
        body = {"model": "qwen-plus", "messages": MESSAGES, "stream": True}
        with client.stream(
            "POST", "/compatible-mode/v1/chat/completions", json=body, headers=KEY
        ) as stream:
            whole = [line for line in stream.iter_lines() if line]
        long = {**body, "max_tokens": 2000}
        with client.stream(
            "POST", "/compatible-mode/v1/chat/completions", json=long, headers=KEY
        ) as stream:
            lines = stream.iter_lines()
            next(lines)
            next(lines)
        left = time.time()
        deadline = time.monotonic() + 5
        while True:
            entries = client.get("/_emulator/requests").json()["requests"]
            if "ended" in entries[-1] or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    assert whole[-1] == "data: [DONE]"
    finished, cancelled = entries[-2:]
    assert finished["disconnected"] is False
    assert finished["ended"] >= finished["time"]
    assert cancelled["disconnected"] is True
    assert left - 1 < cancelled["ended"] < left + 5  # it stopped with the client, not at the end


def test_banner_names_both_base_urls_and_both_sdks() -> None:
    text = banner("127.0.0.1", 8400)
    assert "http://127.0.0.1:8400/compatible-mode/v1" in text
    assert 'dashscope.base_http_api_url = "http://127.0.0.1:8400/api/v1"' in text
    assert "from openai import OpenAI" in text


def test_build_config_lays_flags_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "emulator.yaml"
    path.write_text("pacing: {chunk_tokens: 2, ttft_ms: 5}\nfaults: {error_rate: 0.5}\n")
    config = build_config(path, tokens_per_second=50, seed=7)
    assert config.pacing.chunk_tokens == 2
    assert config.pacing.ttft_ms == 5
    assert config.pacing.tokens_per_second == 50
    assert config.faults.seed == 7
    assert config.faults.error_rate == 0.5
    assert build_config(None) == EmulatorConfig()


def cli() -> typer.Typer:
    """The ``qwenkit`` app when ``emulate`` is registered on it, else the command on its own."""
    from qwenkit.cli import app

    if any(command.name == "emulate" for command in app.registered_commands):
        return app
    wrapper = typer.Typer()
    wrapper.command("emulate")(emulate)

    @wrapper.callback()
    def _group() -> None:
        """qwenkit"""

    return wrapper


def test_cli_help() -> None:
    result = CliRunner().invoke(cli(), ["emulate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in (
        "--host",
        "--port",
        "--config",
        "--scenarios",
        "--ttft-ms",
        "--tokens-per-second",
        "--seed",
    ):
        assert flag in result.output


def test_cli_command_serves(tmp_path: Path) -> None:
    port = free_port()
    script = (
        "import typer; from qwenkit.cli._emulate import emulate; "
        "app = typer.Typer(); app.command()(emulate); app()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, "--port", str(port), "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith(f"qwenkit emulator on http://127.0.0.1:{port}")
        deadline = time.monotonic() + 20
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while True:
                try:
                    health = client.get("/_emulator/health")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    assert process.poll() is None
                    time.sleep(0.05)
            assert health.json()["status"] == "ok"
            assert client.get("/_emulator/config").json()["faults"]["seed"] == 3
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
