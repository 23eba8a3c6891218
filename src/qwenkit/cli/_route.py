"""``qwenkit route "TASK"``: which model, temperature, thinking and max_tokens a task gets."""

from __future__ import annotations

import typer
from rich.table import Table

from qwenkit.cli._output import console, print_json


def route(
    task: str = typer.Argument(
        ...,
        help='A task kind (extract, chat, reason, ...) or a description ("summarise this contract").',
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show the route the router picks for a task, and why."""
    from qwenkit._settings import Settings
    from qwenkit.catalog import Catalog, Router

    settings = Settings.load()
    router = Router(catalog=Catalog.load(settings.catalog_file), overrides=settings.routes_file)
    chosen = router.route_text(task)
    data = {
        "task": task,
        "kind": chosen.task,
        "model": chosen.model,
        "temperature": chosen.temperature,
        "thinking": chosen.thinking,
        "max_tokens": chosen.max_tokens,
        "reason": chosen.reason,
    }
    if as_json:
        print_json(data)
        return
    table = Table(show_header=False, title=f"route for {task!r}")
    table.add_column(style="bold")
    table.add_column()
    for key in ("kind", "model", "temperature", "thinking", "max_tokens", "reason"):
        table.add_row(key, str(data[key]))
    console.print(table)
