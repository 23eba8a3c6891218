"""``qwenkit report``: usage, cost and cache hit rates over the ledger, and prompt bloat.

``--by endpoint|model|key|env|day|hour`` (a day or hour in ``--tz``), ``--since 7d`` (30m, 24h, 4w or an ISO
date), ``--format table|json|csv``. JSON is one object: ``rows``, ``total`` (its ``requests`` is
the request count) and ``week_over_week``. Built on ``qwenkit.storage._reports.usage_report``.
"""

from __future__ import annotations

import csv
import io
import sys
from typing import Any

import typer
from rich.table import Table

from qwenkit.cli._output import console, fail, print_json
from qwenkit.cli._store import store_option, store_url

_FIELDS = (
    "group", "requests", "ok", "errors", "cancelled", "error_rate", "prompt_tokens",
    "completion_tokens", "cached_tokens", "cache_creation_tokens", "reasoning_tokens", "cost",
    "currency", "prefix_cache_hit_rate", "edge_cache_hit_rate", "latency_p50", "latency_p95",
    "ttft_p50", "ttft_p95", "prompt_tokens_per_request",
)  # fmt: skip


def report(
    *,
    since: str = typer.Option("7d", "--since", help="30m, 24h, 7d, 4w, or an ISO date."),
    until: str | None = typer.Option(None, "--until", help="An ISO date/time (default: now)."),
    by: str = typer.Option("endpoint", "--by", help="endpoint, model, key, env, day or hour."),
    output: str = typer.Option("table", "--format", help="table, json or csv."),
    tz: str = typer.Option("UTC", "--tz", help="Time zone of --by day and hour (IANA name)."),
    bloat_threshold: float = typer.Option(
        1.5, "--bloat-threshold", min=1.0, help="Week-over-week prompt growth flagged as bloat."
    ),
    store: str | None = store_option(),
) -> None:
    """Usage report over the ledger: requests, tokens, cost, cache hit rates, latency, bloat."""
    from zoneinfo import ZoneInfoNotFoundError

    from qwenkit.storage._reports import parse_since, usage_report

    if by not in ("endpoint", "model", "key", "env", "day", "hour"):
        fail(f"--by {by!r}: use endpoint, model, key, env, day or hour", code=2)
    if output not in ("table", "json", "csv"):
        fail(f"--format {output!r}: use table, json or csv", code=2)
    try:
        start = parse_since(since)
        end = parse_since(until) if until else None
        result = usage_report(
            store_url("ledger", store), since=start, until=end, by=by,  # type: ignore[arg-type]
            tz=tz, bloat_threshold=bloat_threshold,
        )  # fmt: skip
    except (ValueError, ZoneInfoNotFoundError) as exc:
        fail(str(exc) if str(exc) else f"unknown time zone {tz!r}", code=2)
    data = result.to_dict()
    if output == "json":
        print_json(data)
    elif output == "csv":
        _csv(data)
    else:
        _table(data)


def _csv(data: dict[str, Any]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in [*data["rows"], data["total"]]:
        writer.writerow({name: row[name] for name in _FIELDS})
    sys.stdout.write(buffer.getvalue())


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def _table(data: dict[str, Any]) -> None:
    span = f"{data['since'][:16]} and {data['until'][:16]}"
    if not data["rows"]:
        console.print(f"no usage recorded between {span}")
        return
    table = Table(title=f"Usage by {data['by']}, between {span} (UTC)")
    for column in (
        data["by"], "requests", "errors", "prompt", "completion", "cached", "reasoning", "cost",
        "prefix cache", "edge cache", "p50", "p95", "ttft p50", "ttft p95",
    ):  # fmt: skip
        table.add_column(column, justify="left" if column == data["by"] else "right")
    for row in [*data["rows"], data["total"]]:
        table.add_row(
            str(row["group"] if row["group"] is not None else "-"),
            str(row["requests"]),
            _rate(row["error_rate"]),
            f"{row['prompt_tokens']:,}",
            f"{row['completion_tokens']:,}",
            f"{row['cached_tokens']:,}",
            f"{row['reasoning_tokens']:,}",
            f"{row['cost']} {row['currency'] or ''}".strip(),
            _rate(row["prefix_cache_hit_rate"]),
            _rate(row["edge_cache_hit_rate"]),
            _seconds(row["latency_p50"]),
            _seconds(row["latency_p95"]),
            _seconds(row["ttft_p50"]),
            _seconds(row["ttft_p95"]),
            style="bold" if row is data["total"] else None,
        )
    console.print(table)
    if data["week_over_week"]:
        weeks = Table(title="Prompt tokens per request, this week against last week")
        for column in ("endpoint", "this week", "last week", "growth", ""):
            weeks.add_column(column, justify="left" if column == "endpoint" else "right")
        for growth in data["week_over_week"]:
            weeks.add_row(
                str(growth["endpoint"] or "-"),
                f"{growth['this_week']:,.0f}",
                "-" if growth["last_week"] is None else f"{growth['last_week']:,.0f}",
                "-" if growth["ratio"] is None else f"{growth['ratio']:.2f}x",
                "BLOAT" if growth["bloat"] else "",
                style="bold red" if growth["bloat"] else None,
            )
        console.print(weeks)
