"""``qwenkit keys``: create, list and revoke the gateway's virtual keys.

``create`` prints the key once: only a salted scrypt hash of it is stored, so it can never be
shown again (create another and revoke the lost one). The key alone goes to stdout (``KEY=$(qwenkit
keys create app)`` works) and the note about it to stderr; ``--json`` prints exactly ``{"key":
..., "id": ...}``. ``list`` shows everything about the keys but the keys. The store is ``--store``,
else ``QWENKIT_KEYS_URL``, ``QWENKIT_STORE_URL`` or the embedded SQLite file, migrated on first
use. Bad option values are one line and exit 2, an unknown key id exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from qwenkit.cli._output import console, err_console, fail, print_json
from qwenkit.cli._store import store_option, store_url

if TYPE_CHECKING:
    from qwenkit.storage import KeyInfo, Limits
    from qwenkit.storage._keys import SQLKeys

app = typer.Typer(help="Virtual keys: create (shown once), list, revoke.", no_args_is_help=True)

T = TypeVar("T")


def _budget(value: str | None) -> Decimal | None:
    """``--daily-budget``: a positive amount."""
    if value is None:
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise typer.BadParameter(
            f"{value!r} is not an amount (e.g. 5 or 2.50)", param_hint="'--daily-budget'"
        ) from None
    if not amount.is_finite() or amount <= 0:
        raise typer.BadParameter(f"{value} is not a positive amount", param_hint="'--daily-budget'")
    return amount


def _models(value: str | None) -> list[str] | None:
    """``--models a,b``: the names, at least one."""
    if value is None:
        return None
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        raise typer.BadParameter(
            f"{value!r}: give model names separated by commas (a,b)", param_hint="'--models'"
        )
    return names


def _run(work: Callable[[SQLKeys], Awaitable[T]], store: str | None) -> T:
    """Open the keys store, run ``work`` on it, close it. A ``UsageError`` exits 2."""
    import anyio

    from qwenkit._exceptions import UsageError
    from qwenkit.storage._keys import open_keys

    keys = open_keys(store_url("keys", store))

    async def main() -> T:
        try:
            return await work(keys)
        finally:
            await keys.aclose()

    try:
        return anyio.run(main)
    except UsageError as exc:
        fail(str(exc), code=2)


@app.command("create")
def create(
    *,
    name: str = typer.Argument(
        ..., metavar="NAME", help="What the key is for (a service, a person)."
    ),
    env: str | None = typer.Option(
        None, "--env", help="Environment (prod, staging): its limits apply to the key too."
    ),
    daily_budget: str | None = typer.Option(
        None,
        "--daily-budget",
        metavar="AMOUNT",
        help="Most the key may spend a day, in the catalog's currency (5, 2.50).",
    ),
    rpm: int | None = typer.Option(None, "--rpm", min=1, help="Requests per minute."),
    tpm: int | None = typer.Option(None, "--tpm", min=1, help="Tokens per minute."),
    models: str | None = typer.Option(
        None,
        "--models",
        metavar="A,B",
        help="Models the key may call, comma-separated (default: any).",
    ),
    reasoning: str | None = typer.Option(
        None,
        "--reasoning",
        metavar="strip|pass|log",
        help="What the gateway does with the model's reasoning for this key (default: the "
        "gateway's setting, strip).",
        show_default=False,
    ),
    max_tokens: int | None = typer.Option(
        None,
        "--max-tokens",
        min=1,
        help="The most output tokens one call of this key may ask for (larger values are "
        "clamped to it).",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help='Print {"key": ..., "id": ...}.'),
    store: str | None = store_option(),
) -> None:
    """Create a key and print it, once: only its hash is stored."""
    from qwenkit.storage import Limits

    limits = Limits(
        daily_cost=_budget(daily_budget), requests_per_minute=rpm, tokens_per_minute=tpm
    )
    chosen = _models(models)
    created = _run(
        lambda keys: keys.create(
            name,
            environment=env,
            limits=limits,
            models=chosen,
            reasoning=reasoning,
            max_tokens=max_tokens,
        ),
        store,
    )
    if as_json:
        print_json({"key": created.key, "id": created.info.id})
        return
    info = created.info
    sys.stdout.write(created.key + "\n")
    sys.stdout.flush()
    err_console.print(
        f"Created key [bold]{info.id}[/] ({escape(_describe(info))}). This is the only time "
        "it is shown: only its hash is stored. Keep it now.",
        soft_wrap=True,
    )


@app.command("list")
def list_keys(
    *,
    include_revoked: bool = typer.Option(False, "--all", help="Include revoked keys."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    store: str | None = store_option(),
) -> None:
    """List the keys (never the keys themselves): limits, models, created, last used."""
    found: Sequence[KeyInfo] = _run(lambda keys: keys.list(include_revoked=include_revoked), store)
    if as_json:
        print_json({"keys": [info.to_dict() for info in found]})
        return
    if not found:
        console.print("No keys." if include_revoked else "No active keys (--all shows revoked).")
        return
    table = Table(title="Virtual keys")
    for column in ("id", "name", "env", "limits", "models", "created", "last used"):
        table.add_column(column, no_wrap=column in ("id", "created", "last used"))
    if include_revoked:
        table.add_column("revoked", no_wrap=True)
    for info in found:
        cells = [
            info.id,
            escape(info.name),
            escape(info.environment or "-"),
            escape(_key_limits(info)),
            escape(", ".join(info.models) if info.models is not None else "any"),
            _when(info.created_at),
            _when(info.last_used_at, "never"),
        ]
        if include_revoked:
            cells.append(_when(info.revoked_at, "-"))
        table.add_row(*cells)
    console.print(table)


@app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., metavar="ID", help="The key's id (see 'qwenkit keys list')."),
    store: str | None = store_option(),
) -> None:
    """Revoke a key: it stops working at once here, within a minute on running gateways."""

    async def work(keys: SQLKeys) -> tuple[bool, KeyInfo | None]:
        return await keys.revoke(key_id), await keys.get(key_id)

    done, info = _run(work, store)
    if info is None:
        fail(f"no key with id {key_id!r} (see 'qwenkit keys list --all')")
    if not done:
        console.print(
            f"Key {escape(key_id)} ({escape(info.name)}) was already revoked "
            f"{_when(info.revoked_at)}."
        )
        return
    console.print(
        f"Revoked key {escape(key_id)} ({escape(info.name)}). Running gateways that verified it "
        "in the last minute accept it until their cache of verified keys expires (60 s)."
    )


def _describe(info: KeyInfo) -> str:
    parts = [f"name {info.name}"]
    if info.environment:
        parts.append(f"env {info.environment}")
    parts.append(f"limits {_key_limits(info)}")
    parts.append("models " + (", ".join(info.models) if info.models is not None else "any"))
    return "; ".join(parts)


def _key_limits(info: KeyInfo) -> str:
    shown = _limits(info.limits)
    if info.max_tokens is None:
        return shown
    cap = f"max_tokens {info.max_tokens}"
    return cap if shown == "none" else f"{shown}, {cap}"


def _limits(limits: Limits) -> str:
    shown = []
    if limits.daily_cost is not None:
        shown.append(f"{limits.daily_cost}/day")
    if limits.requests_per_minute is not None:
        shown.append(f"{limits.requests_per_minute} rpm")
    if limits.tokens_per_minute is not None:
        shown.append(f"{limits.tokens_per_minute} tpm")
    return ", ".join(shown) or "none"


def _when(moment: datetime | None, missing: str = "") -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else missing
