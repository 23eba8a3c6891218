"""``qwenkit models``: the model catalog as a table (limits, capabilities, prices)."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from qwenkit.cli._output import console, print_json


def models(
    region: str = typer.Option(
        "ap-southeast-1", "--region", "-r", help="Region whose prices to show."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the models qwenkit knows: window, output cap, thinking mode, tools, price."""
    from qwenkit._settings import Region, Settings
    from qwenkit.catalog import Catalog, PriceUnavailableError

    settings = Settings.load(region=region)
    region_name = (
        settings.region.value if isinstance(settings.region, Region) else str(settings.region)
    )
    catalog = Catalog.load(settings.catalog_file)
    rows: list[dict[str, Any]] = []
    for profile in catalog.models():
        try:
            prices = profile.price_table(region_name)
        except PriceUnavailableError:
            prices = None
        tier = prices.tiers[0] if prices else None
        rows.append(
            {
                "model": profile.name,
                "context_window": profile.context_window,
                "max_output_tokens": profile.max_output_tokens,
                "thinking": profile.thinking.value,
                "tools": profile.tools,
                "json_mode": profile.json_mode,
                "endpoint": profile.endpoint,
                "tokenizer": profile.tokenizer,
                "currency": prices.currency if prices else None,
                "input_per_million": str(tier.input) if tier else None,
                "output_per_million": str(tier.output) if tier else None,
                "confidence": profile.confidence,
            }
        )
    if as_json:
        print_json({"region": region_name, "figures_taken": catalog.figures_taken, "models": rows})
        return
    currency = next((row["currency"] for row in rows if row["currency"]), "")
    table = Table(
        title=f"Qwen models: {region_name} prices per 1M tokens in {currency}, figures of {catalog.figures_taken}",
        caption="* some figures unconfirmed (see models.toml); thinking: hybrid_off/on = toggle, default off/on",
    )
    table.add_column("model", no_wrap=True)
    table.add_column("ctx", justify="right", no_wrap=True)
    table.add_column("out", justify="right", no_wrap=True)
    table.add_column("thinking", no_wrap=True)
    table.add_column("tools", justify="center", no_wrap=True)
    table.add_column("json", justify="center", no_wrap=True)
    table.add_column("$ in", justify="right", no_wrap=True)
    table.add_column("$ out", justify="right", no_wrap=True)
    for row in rows:
        mark = "" if row["confidence"] == "documented" else "*"
        table.add_row(
            row["model"] + mark,
            _short(row["context_window"]),
            _short(row["max_output_tokens"]),
            row["thinking"],
            "yes" if row["tools"] else "no",
            "yes" if row["json_mode"] else "no",
            row["input_per_million"] or "-",
            row["output_per_million"] or "-",
        )
    console.print(table)


def _short(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}K"
    return f"{n:,}"
