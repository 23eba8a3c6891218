"""``Qwen``: the synchronous client, a thin wrapper over ``AsyncQwen`` (no logic of its own).

Every method runs the ``AsyncQwen`` method of the same name on the client's ``Runner`` (an event
loop in a daemon thread) and waits for it, so the two clients cannot drift apart. It works from any
thread and from inside a running event loop (the caller's loop waits, as for any blocking call; in
async code prefer ``AsyncQwen``). Callbacks (``on_reasoning``, usage sinks) run in the runner's
thread. ``close()`` (or ``with``) closes the connection pool, then stops the thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import httpx

from qwenkit._client import AsyncQwen, MessagesInput
from qwenkit._core.cache import ResponseCache
from qwenkit._core.observe import ReasoningCallback
from qwenkit._core.retries import RetryPolicy
from qwenkit._core.runner import Runner
from qwenkit._core.transport import Flavour
from qwenkit._core.usage import UsageSink
from qwenkit._result import ChatResult, ChatStream
from qwenkit._settings import Mode, Region, Settings
from qwenkit._timeouts import Timeout
from qwenkit.catalog import Catalog, Router, TaskKind

__all__ = ["Qwen"]


class Qwen:
    """The synchronous Qwen client: same arguments and behaviour as ``AsyncQwen``."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        region: Region | str | None = None,
        mode: Mode | None = None,
        base_url: str | None = None,
        settings: Settings | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        catalog: Catalog | None = None,
        router: Router | None = None,
        default_model: str = "qwen-plus",
        hard_max_tokens: int | None = 8192,
        check_context: bool = True,
        on_reasoning: ReasoningCallback | None = None,
        usage_sinks: Sequence[UsageSink] | None = None,
        cache: ResponseCache | None = None,
        upstream: Flavour = "dashscope",
    ) -> None:
        self.aio = AsyncQwen(
            api_key=api_key,
            region=region,
            mode=mode,
            base_url=base_url,
            settings=settings,
            timeout=timeout,
            retry=retry,
            http_client=http_client,
            catalog=catalog,
            router=router,
            default_model=default_model,
            hard_max_tokens=hard_max_tokens,
            check_context=check_context,
            on_reasoning=on_reasoning,
            usage_sinks=usage_sinks,
            cache=cache,
            upstream=upstream,
        )
        """The ``AsyncQwen`` this client drives (use it from async code)."""
        self._runner = Runner()

    @property
    def settings(self) -> Settings:
        return self.aio.settings

    def chat(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        task: TaskKind | str | None = None,
        thinking: bool | None = None,
        **params: Any,
    ) -> ChatResult:
        """``AsyncQwen.chat``, waited for."""
        return self._runner.run(
            self.aio.chat(messages, model=model, task=task, thinking=thinking, **params)
        )

    def stream(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        task: TaskKind | str | None = None,
        thinking: bool | None = None,
        **params: Any,
    ) -> ChatStream:
        """``AsyncQwen.stream`` as an iterator; use ``with`` so that stopping early closes it."""
        stream = self.aio.stream(messages, model=model, task=task, thinking=thinking, **params)
        return ChatStream(stream, self._runner)

    def close(self) -> None:
        """Close the connection pool and stop the runner's thread (idempotent)."""
        if self._runner.closed:
            return
        try:
            self._runner.run(self.aio.aclose())
        finally:
            self._runner.close()

    def __enter__(self) -> Qwen:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Qwen {self.aio.upstream.describe()}>"
