"""``qwenkit lint tools MODULE:OBJECT`` and ``qwenkit lint prompt FILE``: the schema lint and the
prefix-cache lint, for CI. Exit 0 when clean or with warnings, 1 with findings under ``--strict``,
2 when the target cannot be loaded."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from qwenkit.cli._output import console, fail, print_json, read_input

if TYPE_CHECKING:
    from qwenkit.agents import FunctionTool
    from qwenkit.types import Tool

app = typer.Typer(
    help="Lint tool schemas and system prompts (for CI).",
    no_args_is_help=True,
)


def load_object(target: str) -> Any:
    """The object named by ``MODULE:OBJECT`` (``OBJECT`` may be dotted), importable from cwd."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"expected MODULE:OBJECT, got {target!r}")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        value: Any = importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(cwd)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def as_tools(value: Any) -> list[FunctionTool[..., Any] | Tool]:
    """The tools in a ``Toolbox``, a tool, a tool dict, a function, or a list of these."""
    from qwenkit.agents import FunctionTool, Toolbox, tool
    from qwenkit.types import Tool

    if isinstance(value, Toolbox):
        return list(value)
    if isinstance(value, (FunctionTool, Tool)):
        return [value]
    if isinstance(value, Mapping):
        return [Tool.model_validate(value)]
    if callable(value):
        return [tool(value)]
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return [item for element in value for item in as_tools(element)]
    raise ValueError(f"not a tool, a Toolbox, a function or a list of them: {type(value).__name__}")


def _parameters(item: FunctionTool[..., Any] | Tool) -> dict[str, Any]:
    from qwenkit.types import Tool

    schema = item.function.parameters if isinstance(item, Tool) else item.parameters
    return schema or {}


def _where(tool: str, path: str) -> str:
    return f"{tool}.{path}" if path else tool


def _table(title: str, columns: list[str], rows: Iterable[list[str]]) -> Table:
    table = Table(title=title, show_lines=True)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


@app.command("tools")
def tools(
    target: str = typer.Argument(
        ..., help="MODULE:OBJECT: a Toolbox, a tool, a function or a list."
    ),
    strict: bool = typer.Option(False, "--strict", help="Findings are errors: exit 1."),
    max_parameters: int = typer.Option(8, "--max-parameters", help="Most top-level parameters."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Lint tool schemas: nesting, optional parameters, descriptions, free-form objects, size."""
    import json

    from qwenkit.agents import flatten_suggestion, lint_schema

    try:
        items = as_tools(load_object(target))
    except Exception as exc:  # the user's module may fail in any way: one line, exit 2
        fail(f"cannot load {target}: {type(exc).__name__}: {exc}", code=2)
    findings = [
        f for item in items for f in lint_schema(item, max_parameters=max_parameters, strict=strict)
    ]
    nested = {f.tool for f in findings if f.rule == "nested-object"}
    flattened = {
        item.name: flatten_suggestion(_parameters(item)) for item in items if item.name in nested
    }
    if as_json:
        print_json(
            {
                "tools": [item.name for item in items],
                "findings": [f.to_dict() for f in findings],
                "flattened": flattened,
            }
        )
    elif findings:
        rows = [[_where(f.tool, f.path), f.rule, f.message, f.suggestion or ""] for f in findings]
        title = f"tool schema {'errors' if strict else 'warnings'}: {len(findings)}"
        console.print(_table(title, ["where", "rule", "message", "suggestion"], rows))
        for name, schema in flattened.items():
            console.print(f"[bold]{name}[/]: flattened parameters")
            console.print_json(json.dumps(schema, ensure_ascii=False))
    else:
        console.print(f"{len(items)} tool(s), no findings")
    if findings and strict:
        raise typer.Exit(1)


@app.command("prompt")
def prompt(
    file: str = typer.Argument(..., help="A system prompt file, or - for stdin."),
    strict: bool = typer.Option(False, "--strict", help="Findings are errors: exit 1."),
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", help="A rule to skip (repeatable): time, date..."),
    ] = None,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Find dynamic content (dates, times, ids, counters) that breaks the implicit prefix cache."""
    from qwenkit.agents import lint_prompt

    try:
        text = read_input(file)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {file}: {exc}", code=2)
    findings = lint_prompt(text, ignore=ignore or ())
    if as_json:
        print_json({"source": file, "findings": [f.to_dict() for f in findings]})
    elif findings:
        rows = [[f"{f.line}:{f.column}", f.rule, f.text, f.message] for f in findings]
        console.print(_table(f"dynamic content in {file}", ["at", "rule", "text", "message"], rows))
        console.print(findings[0].suggestion)
    else:
        console.print("no dynamic content found: the prompt can be cached as a prefix")
    if findings and strict:
        raise typer.Exit(1)
