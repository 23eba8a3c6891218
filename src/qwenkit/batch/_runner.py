"""The batch runner: every line of the input answered once, through an ``AsyncQwen``.

The dispatcher takes the next line not yet in the output, waits for a slot of the AIMD limit and
for the ``rpm``/``tpm`` buckets, checks the budget, and starts the request (``mode="sync"``:
``client.chat``; ``"async-task"``: ``client.submit(..., server=True)`` then ``wait()``;
``"batch-api"``: every pending line in one job of the Batch interface, ``_batch_api``). The
client's ``RetryPolicy`` retries throttling and 5xx itself (honouring ``Retry-After``); a
``RateLimitError`` that still escapes halves the limit and puts the line back in the queue, as
does another transient error, up to ``max_requeues`` times per line. Deterministic failures
(4xx, bad parameters) are written as error rows and never retried.

**Budget.** Each request reserves its worst case (its prompt counted with the Qwen tokenizer
plus its ``max_tokens``, at the catalog's prices) while in flight; a line whose reservation would take
spent + reserved past ``budget`` is not sent, and the run stops (``Summary.stopped == "budget"``)
once the requests in flight have finished. Models the catalog cannot price reserve nothing.

``stop()`` (Ctrl-C in the CLI) stops the dispatcher and cancels the requests in flight; every
row already finished is in the file.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from qwenkit._exceptions import APIError, QwenError, RateLimitError, UsageError
from qwenkit.batch._batch_api import BatchAPIRun
from qwenkit.batch._input import BadLine, Item, read_items
from qwenkit.batch._limits import AIMDLimit, TokenBucket
from qwenkit.batch._output import ResultFile, error_row, success_row
from qwenkit.catalog import Cost, cost
from qwenkit.client import AsyncQwen, ChatResult
from qwenkit.tokens import count_messages
from qwenkit.types import Usage
from qwenkit.wire.compat.usage import encode_usage

__all__ = ["BatchOptions", "BatchRun", "Progress", "Summary", "run_batch"]

BatchMode = Literal["sync", "async-task", "batch-api"]


@dataclass
class BatchOptions:
    """How to run a batch; ``model``/``task`` apply to lines that do not set their own."""

    concurrency: int = 16
    rpm: int | None = None
    tpm: int | None = None
    budget: Decimal | None = None
    model: str | None = None
    task: str | None = None
    mode: BatchMode = "sync"
    max_requeues: int = 8
    default_max_tokens: int = 8192
    """The ``max_tokens`` assumed for the worst case of a line that sets none."""
    batch_endpoint: str = "/v1/chat/completions"
    """``mode="batch-api"``: the batch's ``endpoint`` (DashScope's accepted values UNCONFIRMED)."""
    completion_window: str = "24h"
    poll_initial: float = 1.0
    """``mode="batch-api"``: the first wait between polls, doubled each time up to ``poll_max``."""
    poll_max: float = 30.0


@dataclass
class Progress:
    """Counts so far (``remaining`` excludes lines done in an earlier run)."""

    total: int = 0
    skipped: int = 0
    """Lines already in the output when the run started."""
    done: int = 0
    failed: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)
    currency: str | None = None
    in_flight: int = 0
    requeued: int = 0
    throttled: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def remaining(self) -> int:
        return self.total - self.skipped - self.done - self.failed

    @property
    def rate(self) -> float:
        """Rows written per second in this run."""
        elapsed = time.monotonic() - self.started
        return (self.done + self.failed) / elapsed if elapsed > 0 else 0.0


@dataclass
class Summary:
    """How a run ended: its ``progress`` and why it stopped early (``None``: it finished)."""

    progress: Progress
    stopped: Literal["budget", "interrupted"] | None = None
    message: str | None = None
    concurrency: int = 0


class _Run:
    def __init__(
        self,
        client: AsyncQwen,
        results: ResultFile,
        options: BatchOptions,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.client, self.results, self.options = client, results, options
        self.on_progress = on_progress or (lambda progress: None)
        self.limit = AIMDLimit(options.concurrency)
        self.rpm = TokenBucket(options.rpm) if options.rpm else None
        self.tpm = TokenBucket(options.tpm) if options.tpm else None
        self.progress = Progress()
        self.pending: deque[Item] = deque()
        self.requeues: dict[str, int] = {}
        self.reserved = Decimal(0)
        self.stopping = asyncio.Event()

    # -- the dispatcher ---------------------------------------------------------------------

    async def run(self, path: str | Path) -> Summary:
        for item in read_items(path):
            self.progress.total += 1
            if item.custom_id in self.results.done:
                self.progress.skipped += 1
            elif isinstance(item, BadLine):
                self._write(error_row(item.custom_id, "invalid_line", item.message, line=item.line))
            else:
                self.pending.append(item)
        self.on_progress(self.progress)
        if self.options.mode == "batch-api":
            return await self._run_batch_api()
        tasks: set[asyncio.Task[None]] = set()
        summary = Summary(self.progress)
        try:
            while (self.pending or tasks) and not self.stopping.is_set():
                if not self.pending:
                    await self._wait_any(tasks)
                    continue
                await self._acquire_slot(tasks)
                if self.stopping.is_set():
                    await self.limit.release(ok=False)
                    break
                item = self.pending.popleft()
                worst = self._worst_cost(item)
                budget = self.options.budget
                if budget is not None and self.progress.cost + self.reserved + worst > budget:
                    await self.limit.release(ok=False)
                    self.pending.appendleft(item)
                    summary.stopped = "budget"
                    summary.message = (
                        f"budget {budget} reached: {self.progress.cost} spent, the next line "
                        f"(line {item.line}) could cost up to {worst}; "
                        f"{len(self.pending)} lines not sent"
                    )
                    break
                await self._acquire_rate(item)
                self.reserved += worst
                self.progress.in_flight += 1
                task = asyncio.create_task(self._one(item, worst))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if summary.stopped == "budget" and tasks:
                await asyncio.gather(*tasks)
                # lines put back by the requests in flight were never answered: still not sent
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self.results.sync()
        if self.stopping.is_set() and summary.stopped is None:
            summary.stopped = "interrupted"
            summary.message = f"interrupted: {self.progress.remaining} lines not answered"
        summary.concurrency = self.limit.limit
        return summary

    async def _run_batch_api(self) -> Summary:
        """All pending lines in one Batch API job (``qwenkit.batch._batch_api``); the budget
        sends the lines whose worst cases fit, in order, and stops at the first that does not."""
        summary = Summary(self.progress)
        items: list[Item] = []
        reserved = Decimal(0)
        budget = self.options.budget
        while self.pending:
            item = self.pending[0]
            worst = self._worst_cost(item)
            if budget is not None and reserved + worst > budget:
                summary.stopped = "budget"
                summary.message = (
                    f"budget {budget}: the next line (line {item.line}) could take the batch past "
                    f"it (worst case {reserved + worst}); {len(self.pending)} lines not sent"
                )
                break
            reserved += worst
            items.append(self.pending.popleft())
        options = self.options
        api = BatchAPIRun(
            self.client,
            model=options.model,
            task=options.task,
            endpoint=options.batch_endpoint,
            completion_window=options.completion_window,
            poll_initial=options.poll_initial,
            poll_max=options.poll_max,
            write=self._write_api,
            stopping=self.stopping,
        )
        self.progress.in_flight = len(items)
        try:
            await api.run(items)
        finally:
            self.progress.in_flight = 0
            self.results.sync()
        if self.stopping.is_set() and summary.stopped is None:
            summary.stopped = "interrupted"
            summary.message = f"interrupted: {self.progress.remaining} lines not answered"
        return summary

    def _write_api(self, row: dict[str, Any], usage: Usage | None, price: Cost | None) -> None:
        if usage is not None:
            self.progress.tokens += usage.total_tokens
        if price is not None:
            self.progress.cost += price.total
            self.progress.currency = price.currency
        self.progress.in_flight = max(0, self.progress.in_flight - 1)
        self._write(row)

    async def _wait_any(self, tasks: set[asyncio.Task[None]]) -> None:
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()

    async def _acquire_slot(self, tasks: set[asyncio.Task[None]]) -> None:
        slot = asyncio.ensure_future(self.limit.acquire())
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait([slot, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not slot.done():
            slot.cancel()
            try:
                await slot
            except asyncio.CancelledError:
                self.limit.in_flight += 1  # cancelled before it took a slot: balance release()

    async def _acquire_rate(self, item: Item) -> None:
        if self.rpm is not None:
            await self.rpm.acquire(1)
        if self.tpm is not None:
            await self.tpm.acquire(self._prompt_estimate(item) + self._max_tokens(item))

    def stop(self) -> None:
        self.stopping.set()

    # -- one request ------------------------------------------------------------------------

    async def _one(self, item: Item, worst: Decimal) -> None:
        throttled = ok = False
        try:
            result = await self._call(item)
        except APIError as error:
            throttled = isinstance(error, RateLimitError) and error.retryable
            if not self._requeue(item, error, throttled):
                self._write(error_row(item.custom_id, _code(error), error.message))
        except (UsageError, QwenError) as error:
            self._write(error_row(item.custom_id, _code(error), str(error)))
        else:
            ok = True
            self._write(self._success(item, result))
        finally:
            self.reserved -= worst
            self.progress.in_flight -= 1
            await self.limit.release(throttled=throttled, ok=ok)

    def _requeue(self, item: Item, error: APIError, throttled: bool) -> bool:
        if throttled:
            self.progress.throttled += 1
        if not error.retryable or self.stopping.is_set():
            return False
        count = self.requeues.get(item.custom_id, 0)
        if count >= self.options.max_requeues:
            return False
        self.requeues[item.custom_id] = count + 1
        self.progress.requeued += 1
        self.pending.append(item)
        return True

    async def _call(self, item: Item) -> ChatResult:
        params = dict(item.params)
        model = params.pop("model", None) or self.options.model
        task = params.pop("task", None) or self.options.task
        if self.options.mode == "async-task":
            submitted = await self.client.submit(
                item.messages, model=model, task=task, server=True, **params
            )
            return await submitted.wait()
        return await self.client.chat(item.messages, model=model, task=task, **params)

    def _success(self, item: Item, result: ChatResult) -> dict[str, Any]:
        usage = encode_usage(result.usage) if result.usage is not None else None
        price = None
        if result.cost is not None:
            price = str(result.cost.total)
            self.progress.cost += result.cost.total
            self.progress.currency = result.cost.currency
        if result.usage is not None:
            self.progress.tokens += result.usage.total_tokens
        message = result.message.to_wire()
        message.setdefault("content", "")
        body = {
            "id": f"chatcmpl-{result.request_id or item.custom_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": result.model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": result.finish_reason,
                 "logprobs": None},
            ],
            "usage": usage,
        }  # fmt: skip
        return success_row(item.custom_id, body, result.request_id, usage, price)

    def _write(self, row: dict[str, Any]) -> None:
        self.results.write(row)
        if row["error"] is None:
            self.progress.done += 1
        else:
            self.progress.failed += 1
        self.on_progress(self.progress)

    # -- the worst case ---------------------------------------------------------------------

    def _max_tokens(self, item: Item) -> int:
        value = item.params.get("max_tokens")
        return value if isinstance(value, int) else self.options.default_max_tokens

    def _prompt_estimate(self, item: Item) -> int:
        """The prompt's tokens, counted with the Qwen tokenizer (the model's family); a line the
        counter cannot read counts its characters (more than its tokens: still a worst case)."""
        model = item.params.get("model") or self.options.model or "qwen-plus"
        try:
            return count_messages(item.messages, model=str(model)).total
        except (QwenError, ValueError, TypeError):
            return sum(len(str(message)) for message in item.messages)

    def _worst_cost(self, item: Item) -> Decimal:
        if self.options.budget is None:
            return Decimal(0)
        model = item.params.get("model") or self.options.model or "qwen-plus"
        prompt, completion = self._prompt_estimate(item), self._max_tokens(item)
        usage = Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )
        try:
            price = cost(
                usage, str(model), self.client.settings.region.value, catalog=self.client.catalog
            )
        except (QwenError, LookupError, ValueError):
            return Decimal(0)
        return price.total


def _code(error: QwenError) -> str:
    code = getattr(error, "code", None)
    status = getattr(error, "status", None)
    return str(code or status or type(error).__name__)


class BatchRun:
    """A run that can be stopped from outside (a signal handler): ``await run()``, ``stop()``."""

    def __init__(
        self,
        client: AsyncQwen,
        input_path: str | Path,
        results: ResultFile,
        options: BatchOptions | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self._run = _Run(client, results, options or BatchOptions(), on_progress)
        self._path = input_path

    @property
    def progress(self) -> Progress:
        return self._run.progress

    async def run(self) -> Summary:
        return await self._run.run(self._path)

    def stop(self) -> None:
        self._run.stop()


async def run_batch(
    client: AsyncQwen,
    input_path: str | Path,
    results: ResultFile,
    options: BatchOptions | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> Summary:
    """Answer every line of ``input_path`` not yet in ``results``; see the module docstring."""
    return await BatchRun(client, input_path, results, options, on_progress).run()
