"""``submit()``: a call as a task you can poll, wait for and cancel (reference §4).

DashScope runs some services as asynchronous tasks (``X-DashScope-Async: enable``, then
``GET /api/v1/tasks/{id}`` until done, ``POST .../cancel`` while ``PENDING``). **Text generation
is not one of them**: the real service answers 403 ``AccessDenied`` ("current user api does not
support asynchronous calls"). So ``submit()`` has two kinds of task behind one interface:

- by default a **background job in the client**: the ``chat`` call runs as an ``asyncio`` task
  the client holds (cancelled by ``aclose()``), ``PENDING`` until it starts, ``RUNNING``, then
  ``SUCCEEDED``, ``FAILED`` (``result()`` raises the call's error) or ``CANCELED``. Its id starts
  with ``local-``; ``cancel()`` works until it has finished;
- with ``server=True`` a **service task**: the request policies run as for ``chat`` (routing,
  ``max_tokens``, validation; a task cannot stream, so thinking is off unless asked for), the body
  is sent to the native endpoint with ``X-DashScope-Async: enable``, and ``status()``/``wait()``
  poll ``GET /tasks/{id}``; only a ``PENDING`` task can be cancelled (``cancel()`` returns
  ``False`` when it is too late). For the emulator (``tasks.text_generation_async``) and for
  services that accept it; the implementation is ``qwenkit.client._tasks_server``; ``AsyncQwen.submit`` picks the kind.

``wait()`` polls at the SDK's cadence (``PollSchedule``: 1 s, doubled every 3 polls, at most
5 s); a background job needs no polling and is simply awaited. ``timeout`` raises
``TaskTimeoutError`` and leaves the task running. Statuses are DashScope's strings.
"""

from __future__ import annotations

import asyncio
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from qwenkit._exceptions import QwenError
from qwenkit.client._result import ChatResult

if TYPE_CHECKING:
    from qwenkit._core.runner import Runner

__all__ = [
    "TERMINAL",
    "AsyncTask",
    "BackgroundJobs",
    "LocalTask",
    "PollSchedule",
    "Task",
    "TaskError",
    "TaskTimeoutError",
]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"})


class TaskError(QwenError):
    """A task without a result: not finished, ``CANCELED`` or ``UNKNOWN`` (expired or never seen)."""

    def __init__(self, message: str, *, task_id: str, status: str) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.status = status


class TaskTimeoutError(TaskError, TimeoutError):
    """``wait(timeout=...)`` ran out; the task goes on."""


@dataclass(frozen=True)
class PollSchedule:
    """Delays between polls: ``start``, multiplied by ``factor`` every ``every`` polls, ``cap``."""

    start: float = 1.0
    factor: float = 2.0
    every: int = 3
    cap: float = 5.0

    def delays(self) -> Iterator[float]:
        delay, count = min(self.start, self.cap), 0
        while True:
            yield delay
            count += 1
            if count % self.every == 0:
                delay = min(delay * self.factor, self.cap)


class BackgroundJobs:
    """The client's background jobs: kept referenced while they run, cancelled by ``aclose``."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        job = asyncio.get_running_loop().create_task(coro)
        self._running.add(job)
        job.add_done_callback(self._finished)
        return job

    def _finished(self, job: asyncio.Task[Any]) -> None:
        self._running.discard(job)
        if not job.cancelled():
            job.exception()  # kept on the task for result(); never "never retrieved"

    async def aclose(self) -> None:
        jobs = list(self._running)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)


class AsyncTask(ABC):
    """A submitted call: ``status()``, ``wait()``, ``cancel()``, ``result()`` (module docstring)."""

    id: str
    server: bool

    @abstractmethod
    async def status(self) -> str:
        """The current status (``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED``...)."""

    @abstractmethod
    async def cancel(self) -> bool:
        """Stop the task; ``False`` when it is too late (finished, or a service task running)."""

    @abstractmethod
    async def result(self) -> ChatResult:
        """The answer of a finished task; raises its error, or ``TaskError`` without one."""

    @abstractmethod
    async def _wait(self, timeout: float | None, poll: PollSchedule, sleep: Sleep) -> None: ...

    async def wait(
        self,
        *,
        timeout: float | None = None,
        poll: PollSchedule | None = None,
        sleep: Sleep | None = None,
    ) -> ChatResult:
        """Wait until the task ends, then ``result()``. ``sleep`` replaces ``anyio.sleep``."""
        await self._wait(timeout, poll or PollSchedule(), sleep or anyio.sleep)
        return await self.result()

    def _timeout(self, timeout: float | None, status: str) -> TaskTimeoutError:
        return TaskTimeoutError(
            f"task {self.id} still {status} after {timeout} s", task_id=self.id, status=status
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


class LocalTask(AsyncTask):
    server = False

    def __init__(self, jobs: BackgroundJobs, work: Coroutine[Any, Any, ChatResult]) -> None:
        self.id = f"local-{uuid.uuid4().hex}"
        self._started = False
        self._job = jobs.spawn(self._run(work))

    async def _run(self, work: Coroutine[Any, Any, ChatResult]) -> ChatResult:
        self._started = True
        return await work

    async def status(self) -> str:
        job = self._job
        if not job.done():
            return "RUNNING" if self._started else "PENDING"
        if job.cancelled():
            return "CANCELED"
        return "FAILED" if job.exception() is not None else "SUCCEEDED"

    async def cancel(self) -> bool:
        if self._job.done():
            return False
        self._job.cancel()
        await asyncio.wait({self._job})
        return True

    async def result(self) -> ChatResult:
        status = await self.status()
        if status in ("PENDING", "RUNNING", "CANCELED"):
            raise TaskError(
                f"task {self.id} is {status}: no result", task_id=self.id, status=status
            )
        return self._job.result()  # the call's own error for a FAILED job

    async def _wait(self, timeout: float | None, poll: PollSchedule, sleep: Sleep) -> None:
        done, _ = await asyncio.wait({self._job}, timeout=timeout)
        if not done:
            raise self._timeout(timeout, await self.status())


class Task:
    """``AsyncTask`` for the synchronous client: each method runs on the client's runner."""

    def __init__(self, task: AsyncTask, runner: Runner) -> None:
        self.aio = task
        self._runner = runner

    @property
    def id(self) -> str:
        return self.aio.id

    @property
    def server(self) -> bool:
        return self.aio.server

    def status(self) -> str:
        return self._runner.run(self.aio.status())

    def cancel(self) -> bool:
        return self._runner.run(self.aio.cancel())

    def result(self) -> ChatResult:
        return self._runner.run(self.aio.result())

    def wait(
        self,
        *,
        timeout: float | None = None,
        poll: PollSchedule | None = None,
        sleep: Sleep | None = None,
    ) -> ChatResult:
        return self._runner.run(self.aio.wait(timeout=timeout, poll=poll, sleep=sleep))

    def __repr__(self) -> str:
        return f"<Task {self.id}>"
