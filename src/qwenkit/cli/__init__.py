"""The ``qwenkit`` command (typer + rich).

One module per command group; each imports its heavy parts only when it runs, so ``qwenkit
--version`` and ``--help`` stay instant. Every failure the user can cause (a bad file, an unknown
model, a bad config) is one clear line on stderr and a non-zero exit; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import sys

import pydantic
import typer

from qwenkit._version import __version__
from qwenkit.cli import (
    _batch,
    _budget,
    _chat,
    _db,
    _emulate,
    _keys,
    _lint,
    _models,
    _report,
    _route,
    _serve,
    _tokens,
)
from qwenkit.cli._output import fail

app = typer.Typer(
    name="qwenkit",
    help=(
        "Run products on the Qwen API in production: chat, tokens, models, routes, lint, keys, "
        "budgets, usage reports, a local DashScope emulator."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(_tokens.app, name="tokens")
app.command("models")(_models.models)
app.command("chat")(_chat.chat)
app.command("route")(_route.route)
app.command("emulate")(_emulate.emulate)
app.command("serve")(_serve.serve)
app.add_typer(_lint.app, name="lint")
app.add_typer(_keys.app, name="keys")
app.command("report")(_report.report)
app.add_typer(_budget.app, name="budget")
app.add_typer(_db.app, name="db")
app.add_typer(_batch.app, name="batch")

_DEBUG = {"on": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qwenkit {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks instead of one-line errors."
    ),
) -> None:
    _DEBUG["on"] = debug


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``qwenkit`` script."""
    _DEBUG["on"] = False
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        fail("aborted", code=130)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument...
        ctx = getattr(exc, "ctx", None)
        path = getattr(ctx, "command_path", None) or "qwenkit"
        fail(f"{exc.format_message()} (see '{path} --help')", code=exc.exit_code)
    except Exception as exc:  # the CLI's outermost boundary: one line for the user
        if _DEBUG["on"]:
            raise
        fail(_describe(exc))
    if isinstance(code, int) and code:
        sys.exit(code)  # without standalone mode, click returns typer.Exit's code instead


_EXTRAS = {"starlette": "emulator", "uvicorn": "emulator", "yaml": "emulator"}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in _EXTRAS:
        extra = _EXTRAS[(exc.name or "").split(".")[0]]
        return f"this command needs the {extra} extra: pip install 'qwenkit[{extra}]'"
    if isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or exc.title
        return f"{where}: {first['msg']}"
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ = ["app", "main"]
