"""A real emulator server for the SDK tests: uvicorn in a background thread on a free port.

Not a test module: the emulator's SDK tests and the gateway's tests import it by name, ``from
emulator_server import ...``; ``tests/support`` is on pytest's ``pythonpath`` and mypy's
``mypy_path`` (``pyproject.toml``). ``serve`` is a context manager, so each module owns its server in a module-scoped
fixture and shuts it down when the module is done.

``restored_config`` changes the emulator's settings through the control API for the duration of
a ``with`` block (``PATCH /_emulator/config``), then puts the whole previous configuration back
and resets the per-key counters and windows (``POST /_emulator/reset``), so tests stay independent.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

__all__ = ["free_port", "restored_config", "serve"]

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(app: ASGIApp, *, ws: str = "none") -> Iterator[str]:
    """Run ``app`` with uvicorn in a daemon thread; yields its base URL (``http://127.0.0.1:N``).
    ``ws`` is uvicorn's WebSocket implementation (``"websockets-sansio"`` to serve them).

    Waits for the lifespan startup (the tokenizers are loaded then) and, on exit, asks the server
    to stop and checks that its thread ended: clients must be closed before the block ends.
    """
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="critical",  # the drop fault makes uvicorn log the app's exception
            ws=ws,
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, name=f"emulator-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited before it started")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_TIMEOUT)
    if thread.is_alive():
        raise RuntimeError("uvicorn did not stop")


@contextmanager
def restored_config(control: httpx.Client, patch: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Apply ``patch`` to the emulator's configuration; restore the previous one afterwards.

    ``control`` is a client whose base URL is the server's root. Yields the patched configuration.
    The emulator is reset before the block (so per-key counters such as ``fail_first``'s start at
    zero) and after it (so nothing the block did leaks into the next test).
    """
    before = control.get("/_emulator/config")
    before.raise_for_status()
    reset = control.post("/_emulator/reset")
    reset.raise_for_status()
    patched = control.patch("/_emulator/config", json=patch)
    patched.raise_for_status()
    try:
        yield patched.json()
    finally:
        control.patch("/_emulator/config", json=before.json()).raise_for_status()
        control.post("/_emulator/reset").raise_for_status()
