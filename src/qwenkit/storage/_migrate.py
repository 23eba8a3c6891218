"""Schema migrations (Alembic), applied on start or by ``qwenkit db upgrade``.

Alembic is driven from code, with the connection passed in (``env.py`` never reads a URL or an
``alembic.ini``): the whole upgrade runs in one transaction that first takes a lock, so several
processes starting at once against one database migrate it exactly once (PostgreSQL: a
transaction-level advisory lock; SQLite: ``BEGIN IMMEDIATE``). A database whose schema is newer
than this qwenkit knows is refused rather than written to.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from qwenkit._exceptions import StorageError
from qwenkit.storage._sql import immediate
from qwenkit.storage._urls import StoreURL

__all__ = ["current_revision", "head_revision", "upgrade", "upgrade_store"]

_LOCK_ID = 0x71776E6B  # "qwnk": the advisory lock of qwenkit migrations
_VERSION_TABLE = "qk_alembic_version"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return config


def head_revision() -> str:
    """The newest schema revision this qwenkit knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": _VERSION_TABLE})
        return context.get_current_revision()


def upgrade(engine: Engine, url: StoreURL, revision: str = "head") -> str | None:
    """Bring the database of ``engine`` to ``revision``; returns the revision it was at."""
    config = _config()
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    with immediate(engine).begin() as conn:
        if url.backend == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        before = MigrationContext.configure(
            conn, opts={"version_table": _VERSION_TABLE}
        ).get_current_revision()
        if before is not None and before not in known:
            raise StorageError(
                f"the database at {url.masked} is at schema revision {before!r}, newer than this "
                f"qwenkit knows (head {head_revision()!r}); upgrade qwenkit",
                url=url.masked,
            )
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return before


def upgrade_store(url: str | StoreURL, revision: str = "head") -> str | None:
    """Connect to the SQL store at ``url`` (a clear ``StorageError`` naming it when it cannot
    be reached) and migrate it to ``revision``; returns the revision it was at. Idempotent."""
    from qwenkit.storage._sql import check_reachable, sync_engine
    from qwenkit.storage._urls import parse_store_url

    parsed = parse_store_url(url, part="ledger")
    engine = sync_engine(parsed, pool_size=1)
    try:
        check_reachable(engine, parsed)
        return upgrade(engine, parsed, revision)
    finally:
        engine.dispose()
