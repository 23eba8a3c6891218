"""Headless Chromium driven by Playwright, for the tests marked ``browser``.

Not a test module: a pytest plugin of fixtures (``tests/conftest.py`` names it in
``pytest_plugins``) that can also be imported by name (``from browser import launched_chromium``),
like ``emulator_server``.

The browser is Debian's ``chromium`` (``/usr/bin/chromium``; ``make browser`` installs it with
apt-get, and ``make test`` runs that first); Playwright drives it through ``executable_path`` and
never downloads a browser of its own (no ``playwright install``). The flags are the ones this
machine needs: without the background-networking ones Chromium keeps trying hosts that the closed
network refuses. Each launch gets a new empty profile (Playwright's ``launch`` makes a fresh user
data dir and deletes it on close). Without Chromium or Playwright a test skips with a message, or
fails under ``QWENKIT_REQUIRE_SERVICES=1`` (CI).

``browser`` is module-scoped, not session-scoped: Playwright's sync API runs an event loop on the
test thread while it is started, so ``asyncio.run`` cannot run there until it stops. A module
that needs ``asyncio.run`` (making keys, say) does it in a fixture set up before ``browser``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest
from services import service_missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = [
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "browser",
    "launched_chromium",
    "new_page",
    "page",
    "require_chromium",
]

CHROMIUM = os.environ.get("QWENKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LAUNCH_TIMEOUT_MS = 30_000
ACTION_TIMEOUT_MS = 10_000
_HINT = "`make browser` installs Debian's chromium (or set QWENKIT_CHROMIUM to a Chromium binary)"


def require_chromium() -> None:
    """Skip or fail the test (see the module's docstring) unless Chromium and Playwright are
    there: a module with a costly setup calls it first."""
    if not os.access(CHROMIUM, os.X_OK):
        service_missing(f"Chromium is not installed at {CHROMIUM}", _HINT)
    try:
        import playwright.sync_api  # noqa: F401 - only whether it imports
    except ImportError as exc:
        service_missing(f"Playwright is not importable ({exc})", "`make install` installs it")


@contextmanager
def launched_chromium() -> Iterator[Browser]:
    """Chromium started by Playwright with this machine's flags; closed on exit. Skips or fails
    the test when Chromium or Playwright is missing (``require_chromium``)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            chromium_sandbox=False,
            args=list(CHROMIUM_FLAGS),
            timeout=LAUNCH_TIMEOUT_MS,
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the test module."""
    with launched_chromium() as chromium:
        yield chromium


@contextmanager
def new_page(chromium: Browser) -> Iterator[Page]:
    """A page in a new browser context (its own cookies and storage), 1280x900, whose actions
    time out after ``ACTION_TIMEOUT_MS``; the context is closed on exit."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page (``new_page``) of the module's Chromium."""
    with new_page(browser) as fresh:
        yield fresh
