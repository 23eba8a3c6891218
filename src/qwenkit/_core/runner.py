"""``Runner``: the bridge under the synchronous client, one event loop in one daemon thread.

``Qwen`` (sync) is ``AsyncQwen`` driven through a ``Runner``: every call is a coroutine submitted
to the runner's loop with ``asyncio.run_coroutine_threadsafe``, and the calling thread waits for
its result. So there is one implementation (the async one), and the sync client behaves the same
from any thread:

- from a plain thread (or several: calls from different threads run concurrently on the loop);
- from *inside a running event loop* (a sync library called from async code, a notebook cell):
  the runner's loop is another loop in another thread, so nothing deadlocks. The caller's loop is
  blocked while it waits, as it is by any synchronous call; ``AsyncQwen`` is the answer there.

The loop and its thread start on first use and stop in ``close()`` (``Qwen.close()``); the thread
is a daemon, so a forgotten ``close()`` never keeps a process alive. A call made from the runner's
own thread (a reasoning callback calling the sync client again) would wait for itself; it raises
``UsageError`` instead. If the waiting thread is interrupted (``KeyboardInterrupt``), the
coroutine is cancelled on the loop before the exception goes on.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from qwenkit._exceptions import UsageError

__all__ = ["Runner"]

T = TypeVar("T")


class Runner:
    """An event loop in a daemon thread; ``run`` a coroutine or ``iterate`` an async iterator."""

    def __init__(self, name: str = "qwenkit-sync") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise UsageError("this client is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=_serve, args=(loop, ready), name=self.name, daemon=True
                )
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the runner's loop and wait for its result (or exception)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise UsageError(
                "a synchronous qwenkit call from inside its own event loop (a callback?) would "
                "wait for itself; use AsyncQwen there"
            )
        try:
            loop = self._started()
        except UsageError:
            coro.close()
            raise
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # no-op when it already finished; else cancels the task on the loop
            raise

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """The items of an async iterator, each fetched on the runner's loop."""
        while True:
            try:
                yield self.run(_next(iterator))
            except StopAsyncIteration:
                return

    def close(self) -> None:
        """Stop the loop and join its thread (idempotent). Pending tasks are cancelled first."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if threading.current_thread() is thread:
            raise UsageError("a qwenkit client cannot be closed from its own event loop")
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("running" if self._loop else "idle")
        return f"<Runner {self.name} {state}>"


async def _next(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()


def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()
    finally:
        _cancel_pending(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
