"""``qwenkit budget``: what each key and environment has spent, holds and may still spend.

``show [KEY_ID] [--env ENV]`` reads the limits from the keys store (a key's own, and those of its
environment) and the counters from the budgets store: spent (settled), reserved (held by calls
in flight), the limit and when the window resets, per limit (daily money, requests and tokens
per minute). Without arguments it shows every active key and every environment they belong to.
``set ENV [--daily-budget AMOUNT] [--rpm N] [--tpm N]`` sets the limits of a whole environment
(over all its keys). Budget scopes are named ``key:<id>`` and ``env:<name>``: the names the
gateway reserves against. Each store is ``--store``, else ``QWENKIT_KEYS_URL`` /
``QWENKIT_BUDGETS_URL``, ``QWENKIT_STORE_URL`` or the embedded SQLite file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from qwenkit.cli._keys import _budget
from qwenkit.cli._output import console, fail, print_json
from qwenkit.cli._store import store_option, store_url

if TYPE_CHECKING:
    from qwenkit.storage import BudgetState

app = typer.Typer(
    help="Budgets: spent, reserved, limit and reset time per key and environment.",
    no_args_is_help=True,
)


@app.command("show")
def show(
    key_id: str | None = typer.Argument(None, help="A key id (from `qwenkit keys list`)."),
    env: str | None = typer.Option(None, "--env", help="An environment (e.g. prod)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    store: str | None = store_option(),
) -> None:
    """Show spent, reserved, limit and reset time of keys and environments."""
    import anyio

    rows = anyio.run(_states, key_id, env, store)
    if as_json:
        print_json([state.to_dict() for state in rows])
        return
    if not rows:
        console.print("no budgets: no key or environment here has a limit")
        return
    table = Table(title="Budgets")
    for column in ("scope", "limit of", "limit", "spent", "reserved", "remaining", "resets at"):
        table.add_column(column, justify="left" if column in ("scope", "limit of") else "right")
    for state in rows:
        data = state.to_dict()
        table.add_row(
            state.scope,
            _kind(state.kind),
            data["limit"],
            data["spent"],
            data["reserved"],
            data["remaining"],
            state.resets_at.astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        )
    console.print(table)


@app.command("set")
def set_limits(
    env: str = typer.Argument(..., help="The environment (e.g. prod)."),
    daily_budget: str | None = typer.Option(
        None, "--daily-budget", help="Money per day, in the catalog's currency."
    ),
    rpm: int | None = typer.Option(None, "--rpm", min=1, help="Requests per minute."),
    tpm: int | None = typer.Option(None, "--tpm", min=1, help="Tokens per minute."),
    store: str | None = store_option(),
) -> None:
    """Set the limits of a whole environment (unset ones: no limit of that kind)."""
    import anyio

    from qwenkit.storage import Limits
    from qwenkit.storage._keys import open_keys

    limits = Limits(
        daily_cost=_budget(daily_budget), requests_per_minute=rpm, tokens_per_minute=tpm
    )

    async def main() -> None:
        keys = open_keys(store_url("keys", store))
        try:
            await keys.set_environment(env, limits)
        finally:
            await keys.aclose()

    anyio.run(main)
    console.print(f"environment {env}: {_describe(limits)}")


async def _states(key_id: str | None, env: str | None, store: str | None) -> list[BudgetState]:
    from qwenkit._settings import Settings
    from qwenkit.storage._budgets import open_budgets
    from qwenkit.storage._keys import open_keys
    from qwenkit.storage._status import budget_states

    keys = open_keys(store_url("keys", store))
    zone = Settings.load().budget_timezone
    budgets = open_budgets(store_url("budgets", store), timezone=zone)
    try:
        return await budget_states(keys, budgets, key_id=key_id, env=env)
    except LookupError as exc:
        fail(f"{exc} (see `qwenkit keys list`)")
    finally:
        await keys.aclose()
        await budgets.aclose()


def _kind(kind: str) -> str:
    return {
        "daily_cost": "day",
        "requests_per_minute": "requests/min",
        "tokens_per_minute": "tokens/min",
    }[kind]


def _describe(limits: Any) -> str:
    parts = [
        f"daily budget {limits.daily_cost}" if limits.daily_cost is not None else "",
        f"{limits.requests_per_minute} requests/min" if limits.requests_per_minute else "",
        f"{limits.tokens_per_minute} tokens/min" if limits.tokens_per_minute else "",
    ]
    shown = ", ".join(part for part in parts if part)
    return shown or "no limits"
