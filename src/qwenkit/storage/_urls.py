"""Store URLs: which backend a URL names, and the driver URLs SQLAlchemy and redis-py take.

``sqlite:///relative.db`` or ``sqlite:////absolute/path.db`` (one file, no server; WAL mode and
a busy timeout are set on every connection), ``postgresql://user@host:5432/db`` (also
``postgres://`` and ``postgresql+psycopg://``; psycopg 3 for both the sync and the async engine),
``redis://host:6379/0`` (also ``rediss://``; ``?prefix=name:`` sets the key prefix, default
``qwenkit:``). Which parts take which backend: the ledger and the keys need SQL, the budgets and
the cache take SQL or Redis. A URL that fits none of these is refused with the forms accepted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from qwenkit._exceptions import StorageError
from qwenkit._settings import ConfigError, Settings

__all__ = [
    "Backend",
    "Part",
    "StoreURL",
    "configured_url",
    "default_store_url",
    "parse_store_url",
]

Backend = Literal["sqlite", "postgresql", "redis"]
Part = Literal["ledger", "budgets", "cache", "keys"]

_SCHEMES: dict[str, Backend] = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "sqlite+aiosqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "postgresql+psycopg": "postgresql",
    "redis": "redis",
    "rediss": "redis",
}
ALLOWED: dict[Part, frozenset[Backend]] = {
    "ledger": frozenset({"sqlite", "postgresql"}),
    "keys": frozenset({"sqlite", "postgresql"}),
    "budgets": frozenset({"sqlite", "postgresql", "redis"}),
    "cache": frozenset({"sqlite", "postgresql", "redis"}),
}
_FORMS = "sqlite:///path/to/file.db, postgresql://user@host:5432/db or redis://host:6379/0"
_EXTRAS: dict[Backend, tuple[str, str]] = {
    "sqlite": ("aiosqlite", "storage"),
    "postgresql": ("psycopg", "postgres"),
    "redis": ("redis", "redis"),
}


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed store URL. ``str()`` and ``masked`` never show a password."""

    raw: str
    backend: Backend
    prefix: str = "qwenkit:"
    """Redis key prefix (``?prefix=``)."""

    @property
    def masked(self) -> str:
        parts = urlsplit(self.raw)
        if parts.password is None:
            return self.raw
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"StoreURL({self.masked!r})"

    @property
    def is_sql(self) -> bool:
        return self.backend != "redis"

    def sqlalchemy(self, *, asyncio: bool) -> str:
        """The SQLAlchemy URL of this store: aiosqlite/pysqlite or psycopg 3."""
        if self.backend == "sqlite":
            scheme = "sqlite+aiosqlite" if asyncio else "sqlite+pysqlite"
        elif self.backend == "postgresql":
            scheme = "postgresql+psycopg"
        else:
            raise StorageError(f"{self.masked} is a Redis URL, not a SQL one", url=self.masked)
        return scheme + "://" + self.raw.split("://", 1)[1]

    def redis(self) -> str:
        """The URL for redis-py (the ``prefix`` query parameter removed)."""
        parts = urlsplit(self.raw)
        query = {k: v for k, v in parse_qs(parts.query).items() if k != "prefix"}
        return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))

    @property
    def sqlite_path(self) -> str:
        """The file of a ``sqlite:///`` URL (relative to the working directory unless absolute)."""
        return urlsplit(self.raw).path[1:]

    def require_driver(self) -> None:
        """Raise a ``ConfigError`` naming the extra to install when the driver is missing."""
        module, extra = _EXTRAS[self.backend]
        try:
            __import__(module)
            if self.is_sql:
                __import__("sqlalchemy")
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"{self.masked} needs {exc.name}: pip install 'qwenkit[{extra}]'"
            ) from exc


def parse_store_url(url: str | StoreURL, *, part: Part) -> StoreURL:
    """Parse ``url`` for ``part`` (``ledger``...), or raise a ``ConfigError`` saying what fits."""
    if isinstance(url, StoreURL):
        parsed = url
    else:
        text = url.strip()
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        backend = _SCHEMES.get(scheme)
        if backend is None:
            shown = StoreURL(text, "sqlite").masked if "://" in text else text
            raise ConfigError(f"store URL {shown!r} is not one of: {_FORMS}")
        prefix = "qwenkit:"
        if backend == "redis":
            given = parse_qs(urlsplit(text).query).get("prefix")
            prefix = given[0] if given else prefix
        parsed = StoreURL(text, backend, prefix)
        if backend == "sqlite":
            path = parsed.sqlite_path
            if not path or path == ":memory:" or "mode=memory" in text:
                raise ConfigError(
                    f"store URL {text!r}: SQLite needs a file (sqlite:///qwenkit.db); an in-memory "
                    "database is not shared between connections"
                )
    if parsed.backend not in ALLOWED[part]:
        kinds = " or ".join(sorted(ALLOWED[part]))
        raise ConfigError(f"the {part} store needs {kinds}; {parsed.masked} is {parsed.backend}")
    return parsed


def default_store_url() -> str:
    """The embedded store of the CLI and ``qwenkit serve`` when no URL is set:
    ``$QWENKIT_HOME/qwenkit.db``, else ``$XDG_DATA_HOME/qwenkit/qwenkit.db``, else
    ``~/.local/share/qwenkit/qwenkit.db``."""
    home = os.environ.get("QWENKIT_HOME")
    if home:
        base = Path(home)
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".local" / "share") / "qwenkit"
    return f"sqlite:///{(base / 'qwenkit.db').absolute()}"


def configured_url(settings: Settings, part: Part, *, default: str | None = None) -> str | None:
    """The URL of ``part`` in ``settings``: its own (``QWENKIT_LEDGER_URL``...), else
    ``QWENKIT_STORE_URL``, else ``default``. A Redis store URL is skipped for the ledger and the
    keys (they need SQL), which then fall back to ``default``."""
    own: str | None = getattr(settings, f"{part}_url")
    if own:
        return own
    shared = settings.store_url
    if shared and not (part in ("ledger", "keys") and shared.startswith(("redis", "rediss"))):
        return shared
    return default
