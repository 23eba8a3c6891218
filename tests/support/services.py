"""What a test does when something the machine should provide is not there.

Not a test module: imported by name (``from services import service_missing``), like
``emulator_server``. PostgreSQL, Redis and Chromium are on every development and CI machine.
Without one, a test skips with a message, unless ``QWENKIT_REQUIRE_SERVICES=1`` (set by
``.ci/run``): then it fails, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["service_missing"]


def service_missing(message: str, hint: str) -> NoReturn:
    """Fail (``QWENKIT_REQUIRE_SERVICES=1``) or skip the test, saying what is missing and how to
    get it."""
    if os.environ.get("QWENKIT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}; QWENKIT_REQUIRE_SERVICES=1 makes that a failure", pytrace=False)
    pytest.skip(f"{message}; {hint}")
