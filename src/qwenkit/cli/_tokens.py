"""``qwenkit tokens count``: exact Qwen token counts of a file, stdin, or a message list."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from qwenkit.cli._output import console, print_json, read_input

app = typer.Typer(help="Count tokens with the real Qwen tokenizer.", no_args_is_help=True)


@app.command("count")
def count(
    file: str | None = typer.Argument(
        None, help="A text file, or - for stdin.", show_default=False
    ),
    model: str = typer.Option(
        "qwen-plus", "--model", "-m", help="Model whose tokenizer and window to use."
    ),
    messages: bool = typer.Option(
        False,
        "--messages",
        help="The input is a JSON list of chat messages (or {messages, tools}).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Count tokens, characters and the share of the model's context window."""
    from qwenkit.catalog import get_model
    from qwenkit.tokens import count_messages, count_text

    text = read_input(file)
    profile = get_model(model)
    exact = True
    estimated = 0
    if messages:
        msgs, tools = _parse_messages(text)
        result = count_messages(msgs, model=profile.name, tools=tools)
        tokens, exact, estimated = result.total, result.exact, result.estimated_tokens
        characters = sum(len(_message_text(m)) for m in msgs)
    else:
        tokens = count_text(text, model=profile.name)
        characters = len(text)
    report: dict[str, Any] = {
        "source": file or "-",
        "model": profile.name,
        "tokenizer": profile.tokenizer,
        "tokens": tokens,
        "exact": exact,
        "estimated_tokens": estimated,
        "characters": characters,
        "tokens_per_character": round(tokens / characters, 4) if characters else None,
        "context_window": profile.context_window,
        "max_input_tokens": profile.max_input_tokens,
        "context_share": round(tokens / profile.context_window, 6),
        "fits_input": tokens <= profile.max_input_tokens,
    }
    if as_json:
        print_json(report)
        return
    table = Table(
        title=f"{report['source']} · {profile.name} · {profile.tokenizer} vocabulary",
        show_header=False,
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    label = "tokens" if exact else "tokens (includes an estimate)"
    table.add_row(label, f"{tokens:,}")
    if estimated:
        table.add_row("of which estimated", f"{estimated:,}")
    table.add_row("characters", f"{characters:,}")
    ratio = report["tokens_per_character"]
    table.add_row("tokens per character", f"{ratio:.3f}" if ratio is not None else "-")
    table.add_row("context window", f"{profile.context_window:,}")
    share = report["context_share"] * 100
    table.add_row("share of window", f"{share:.3f}%" if share < 1 else f"{share:.1f}%")
    table.add_row(
        "fits max input",
        "yes" if report["fits_input"] else f"no (max {profile.max_input_tokens:,})",
    )
    console.print(table)


def _parse_messages(text: str) -> tuple[list[Any], list[Any] | None]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"--messages expects JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if isinstance(data, dict):
        msgs, tools = data.get("messages"), data.get("tools")
    else:
        msgs, tools = data, None
    if not isinstance(msgs, list) or not msgs:
        raise ValueError(
            "--messages expects a non-empty JSON list of messages, or an object with 'messages'"
        )
    from qwenkit.types import Tool, parse_messages

    parsed_tools = [Tool.model_validate(t) for t in tools] if isinstance(tools, list) else None
    return list(parse_messages(msgs)), parsed_tools


def _message_text(message: Any) -> str:
    from qwenkit.types import content_text

    return content_text(getattr(message, "content", None))
