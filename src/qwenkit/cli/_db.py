"""``qwenkit db``: the SQL store's schema. ``upgrade`` migrates it (what opening a store does,
for deploy scripts that migrate once before the replicas start); ``current`` shows where it is."""

from __future__ import annotations

import typer

from qwenkit.cli._output import console
from qwenkit.cli._store import store_option, store_url

app = typer.Typer(help="The SQL store's schema: upgrade, current revision.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    revision: str = typer.Option("head", "--revision", help="The revision to migrate to."),
    store: str | None = store_option(),
) -> None:
    """Migrate the store's schema (idempotent)."""
    from qwenkit.storage import parse_store_url, upgrade_store

    url = store_url("ledger", store)
    before = upgrade_store(url, revision)
    shown = parse_store_url(url, part="ledger").masked
    after = _current(url)
    if before == after:
        console.print(f"{shown}: already at revision {after}")
    else:
        console.print(f"{shown}: revision {before or '(empty)'} -> {after}")


@app.command("current")
def current(store: str | None = store_option()) -> None:
    """Show the store's schema revision and the newest this qwenkit knows."""
    from qwenkit.storage._migrate import head_revision

    url = store_url("ledger", store)
    console.print(f"current: {_current(url) or '(never migrated)'}\nhead: {head_revision()}")


def _current(url: str) -> str | None:
    from qwenkit.storage import parse_store_url
    from qwenkit.storage._migrate import current_revision
    from qwenkit.storage._sql import check_reachable, sync_engine

    parsed = parse_store_url(url, part="ledger")
    parsed.require_driver()
    engine = sync_engine(parsed, pool_size=1)
    try:
        check_reachable(engine, parsed)
        return current_revision(engine)
    finally:
        engine.dispose()
