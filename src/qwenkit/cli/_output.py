"""Shared output helpers of the CLI: one console for tables, one way to fail."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, *, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    sys.exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def read_input(path: str | None) -> str:
    """The text of FILE, or of stdin for ``-`` or no FILE."""
    if path is None or path == "-":
        if sys.stdin.isatty():
            raise ValueError("no input: give a FILE, or pipe text into stdin (use - for stdin)")
        return sys.stdin.read()
    with open(path, encoding="utf-8") as handle:
        return handle.read()
