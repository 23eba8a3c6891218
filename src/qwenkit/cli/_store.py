"""The ``--store`` option of the commands that read or write a store, and how a URL is chosen:
the flag, else the part's own setting (``QWENKIT_KEYS_URL``...), else ``QWENKIT_STORE_URL``, else
the embedded SQLite file (``qwenkit.storage._urls.default_store_url``)."""

from __future__ import annotations

import typer

from qwenkit.storage._urls import Part

STORE_HELP = (
    "Store URL (sqlite:///file.db, postgresql://..., redis://...); default: the part's "
    "QWENKIT_*_URL, QWENKIT_STORE_URL, or the embedded SQLite file."
)


def store_option() -> str | None:
    value: str | None = typer.Option(None, "--store", help=STORE_HELP, envvar=None)
    return value


def store_url(part: Part, given: str | None) -> str:
    """The URL the command uses for ``part``."""
    from qwenkit._settings import Settings
    from qwenkit.storage._urls import configured_url, default_store_url

    if given:
        return given
    url = configured_url(Settings.load(), part, default=default_store_url())
    assert url is not None
    return url
