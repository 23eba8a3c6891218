"""Fixtures shared by the test suite. One conftest for all (mypy needs module names to be unique);
plain helpers live beside their tests (``agent_support.py``, ``usage_support.py``,
``emulator_server.py``)."""

from __future__ import annotations

import pytest

from qwenkit._settings import Mode


@pytest.fixture
def anyio_backend() -> str:
    """``@pytest.mark.anyio`` tests run on asyncio (the in-process transport needs it)."""
    return "asyncio"


@pytest.fixture(params=["compat", "native"])
def mode(request: pytest.FixtureRequest) -> Mode:
    """Each test that takes it runs over both DashScope wire formats."""
    value: Mode = request.param
    return value
