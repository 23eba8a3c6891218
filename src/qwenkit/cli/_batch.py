"""``qwenkit batch run``: answer every line of a JSONL file, resumably, within limits.

``qwenkit batch run INPUT.jsonl --out RESULTS.jsonl [--model|--task] [--concurrency N] [--rpm N]
[--tpm N] [--budget AMOUNT] [--mode sync|async-task|batch-api] [--base-url URL] [--quiet]``. Rerunning the
same command skips the lines already in ``--out``. A rich progress bar while it runs (``--quiet``:
none) and a summary table at the end. Exit codes: 0 done (failed rows included), 2 bad options or
unreadable files, 3 stopped at the budget, 130 interrupted (Ctrl-C; what finished is written).
See ``qwenkit.batch`` and ``docs/batch.md``.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer
from rich.markup import escape
from rich.table import Table

from qwenkit.cli._output import console, err_console, fail

if TYPE_CHECKING:
    from qwenkit.batch import BatchOptions, Progress, Summary
    from qwenkit.batch._runner import BatchMode

app = typer.Typer(help="Batch jobs: many requests from a JSONL file.", no_args_is_help=True)

EXIT_BUDGET = 3
EXIT_INTERRUPTED = 130


def _amount(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        fail(f"--budget {value!r}: give an amount such as 5 or 0.25", code=2)
    if not amount.is_finite() or amount <= 0:
        fail(f"--budget {value!r}: give a positive amount", code=2)
    return amount


@app.command("run")
def run(  # noqa: PLR0917 - typer maps parameters to options
    input_file: str = typer.Argument(..., help="The JSONL input, one request a line."),
    out_file: str = typer.Option(..., "--out", "-o", help="The JSONL results (appended; resumed)."),
    model: str | None = typer.Option(None, "--model", help="Model of lines that set none."),
    task: str | None = typer.Option(None, "--task", help="Task of lines that set none."),
    concurrency: int = typer.Option(16, "--concurrency", min=1, help="Most requests in flight."),
    rpm: int | None = typer.Option(None, "--rpm", min=1, help="Requests per minute, at most."),
    tpm: int | None = typer.Option(None, "--tpm", min=1, help="Tokens per minute (worst case)."),
    budget: str | None = typer.Option(None, "--budget", help="Stop before spending more."),
    mode: str = typer.Option("sync", "--mode", help="sync, async-task or batch-api."),
    base_url: str | None = typer.Option(None, "--base-url", help="Where to send (or env)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no summary."),
) -> None:
    """Send every line of INPUT not yet in --out; write one result row per line."""
    from qwenkit._exceptions import QwenError
    from qwenkit.batch import BatchOptions

    input_path, out = Path(input_file), Path(out_file)
    if mode not in ("sync", "async-task", "batch-api"):
        fail(f"--mode {mode!r}: use sync, async-task or batch-api", code=2)
    if not input_path.is_file():
        fail(f"{input_path}: no such file", code=2)
    options = BatchOptions(
        concurrency=concurrency, rpm=rpm, tpm=tpm, budget=_amount(budget), model=model,
        task=task, mode=cast("BatchMode", mode),  # checked just above
    )  # fmt: skip

    try:
        summary = asyncio.run(_run(input_path, out, options, base_url, quiet))
    except QwenError as exc:  # batch-api: the upload, the batch or a poll failed
        fail(str(exc), code=1)
    if not quiet:
        _summary_table(summary)
    progress = summary.progress
    console.print(
        f"results in {escape(str(out))}: {progress.done} done, {progress.failed} failed"
        + (f", {progress.skipped} from an earlier run" if progress.skipped else ""),
        soft_wrap=True,
    )
    if summary.stopped is not None:
        err_console.print(
            f"[bold yellow]stopped:[/] {escape(summary.message or '')}", soft_wrap=True
        )
        sys.exit(EXIT_BUDGET if summary.stopped == "budget" else EXIT_INTERRUPTED)


async def _run(
    input_path: Path, out: Path, options: BatchOptions, base_url: str | None, quiet: bool
) -> Summary:
    from qwenkit._core.retries import RetryPolicy
    from qwenkit._exceptions import QwenError
    from qwenkit.batch import BatchRun, ResultFile
    from qwenkit.client import AsyncQwen

    try:
        results = ResultFile(out)
    except (OSError, QwenError) as exc:
        fail(str(exc), code=2)
    retry = RetryPolicy(max_attempts=4, deadline=120.0)
    with results:
        async with AsyncQwen(base_url=base_url, retry=retry, usage_sinks=[]) as client:
            bar = None if quiet else _Bar()
            batch = BatchRun(client, input_path, results, options, bar.update if bar else None)
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGINT, batch.stop)
            try:
                if bar is None:
                    return await batch.run()
                with bar:
                    return await batch.run()
            finally:
                loop.remove_signal_handler(signal.SIGINT)


class _Bar:
    """The rich progress bar: done/failed/remaining, tokens, cost, rate and ETA."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("batch"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=err_console,
            transient=False,
        )
        self.task = self.bar.add_task("batch", total=None, info="")

    def update(self, progress: Progress) -> None:
        cost = f"{progress.cost} {progress.currency or ''}".strip()
        info = (
            f"ok {progress.done} failed {progress.failed} left {progress.remaining} "
            f"tokens {progress.tokens:,} cost {cost} {progress.rate:.1f}/s"
        )
        self.bar.update(
            self.task,
            total=progress.total - progress.skipped,
            completed=progress.done + progress.failed,
            info=info,
        )

    def __enter__(self) -> _Bar:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def _summary_table(summary: Summary) -> None:
    progress = summary.progress
    table = Table(title="Batch summary")
    table.add_column("")
    table.add_column("", justify="right")
    rows = [
        ("lines", progress.total),
        ("answered", progress.done),
        ("failed", progress.failed),
        ("from an earlier run", progress.skipped),
        ("not answered", progress.remaining),
        ("requeued (throttled or transient)", progress.requeued),
        ("tokens", f"{progress.tokens:,}"),
        ("cost", f"{progress.cost} {progress.currency or ''}".strip()),
        ("rate", f"{progress.rate:.1f} lines/s"),
        ("final concurrency", summary.concurrency),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    err_console.print(table)
