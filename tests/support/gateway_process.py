"""Real ``qwenkit serve`` processes for the gateway's scale-out and worker tests.

Not a test module: imported by name (``from gateway_process import gateway_processes``), like
``emulator_server``. ``gateway_processes`` starts one ``python -m qwenkit serve`` per argument
list, the way users start it, waits until each answers ``/readyz`` (failing the test with the
process's output if it exits or does not start), yields their base URLs, and stops them with
SIGTERM (SIGKILL after 20 s).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from emulator_server import free_port

__all__ = ["gateway_processes"]

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


@contextmanager
def gateway_processes(
    env: dict[str, str], logs: Path, arguments: Sequence[Sequence[str]]
) -> Iterator[list[str]]:
    """One gateway per entry of ``arguments`` (extra ``serve`` options), each on a free port."""
    ports = [free_port() for _ in arguments]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port, extra in zip(ports, arguments, strict=True):
            with (logs / f"gateway-{port}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "qwenkit", "serve", "--port", str(port), *extra],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, process in zip(urls, processes, strict=True):
            _wait_ready(url, process, logs)
        yield urls
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(url: str, process: subprocess.Popen[bytes], logs: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = "\n".join(p.read_text() for p in logs.glob("gateway-*.log"))
            pytest.fail(f"the gateway at {url} exited ({process.returncode}):\n{output}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the gateway at {url} did not start within {START_TIMEOUT} s")
