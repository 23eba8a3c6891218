"""Fixtures shared by the agent tests (helpers that are not fixtures: ``agent_support.py``)."""

from __future__ import annotations

import pytest

from qwenkit._settings import Mode


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["compat", "native"])
def mode(request: pytest.FixtureRequest) -> Mode:
    """Each test that takes it runs over both wire formats."""
    value: Mode = request.param
    return value
