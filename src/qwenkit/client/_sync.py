"""``Qwen``: the synchronous client, a thin wrapper over ``AsyncQwen`` (no logic of its own).

Every method runs the ``AsyncQwen`` method of the same name on the client's ``Runner`` (an event
loop in a daemon thread) and waits for it, so the two clients cannot drift apart. It works from any
thread and from inside a running event loop (the caller's loop waits, as for any blocking call; in
async code prefer ``AsyncQwen``). Callbacks (``on_reasoning``, usage sinks) run in the runner's
thread. ``close()`` (or ``with``) closes the connection pool, then stops the thread.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Generator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel

from qwenkit._core.cache import ResponseCache
from qwenkit._core.observe import ReasoningCallback
from qwenkit._core.retries import RetryPolicy
from qwenkit._core.runner import Runner
from qwenkit._core.transport import Flavour
from qwenkit._core.upstreams import UpstreamSpec
from qwenkit._core.usage import PromptCapture, UsageSink
from qwenkit._settings import Mode, Region, Settings
from qwenkit._timeouts import Timeout
from qwenkit.catalog import Catalog, Router, TaskKind
from qwenkit.client._async import AsyncQwen
from qwenkit.client._call import MessagesInput
from qwenkit.client._result import ChatResult, ChatStream
from qwenkit.client._structured import JSONResult
from qwenkit.client._tasks import Task
from qwenkit.storage import Limits, Store
from qwenkit.structured.parse import Expect

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["Qwen"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


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
        cache: ResponseCache | bool | None = None,
        upstream: Flavour = "dashscope",
        store: str | Store | None = None,
        budget: Limits | Mapping[str, Limits] | None = None,
        tags: Mapping[str, str] | None = None,
        prompt_capture: PromptCapture | None = None,
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        upstreams: Mapping[str, UpstreamSpec | Settings] | None = None,
        tracer_provider: TracerProvider | bool | None = None,
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
            store=store,
            budget=budget,
            tags=tags,
            prompt_capture=prompt_capture,
            fallbacks=fallbacks,
            upstreams=upstreams,
            tracer_provider=tracer_provider,
        )
        """The ``AsyncQwen`` this client drives (use it from async code)."""
        self._runner = Runner()

    @property
    def settings(self) -> Settings:
        return self.aio.settings

    @property
    def store(self) -> Store | None:
        """The ``Store`` of the ledger, budgets and cache (``None`` without one)."""
        return self.aio.store

    def with_tags(self, **tags: str) -> Qwen:
        """``AsyncQwen.with_tags``: a client sharing everything but its tags."""
        twin = copy.copy(self)
        twin.aio = self.aio.with_tags(**tags)
        return twin

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

    def json(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        task: TaskKind | str | None = None,
        expect: Expect = dict,
        **params: Any,
    ) -> Any:
        """``AsyncQwen.json``, waited for."""
        return self._runner.run(
            self.aio.json(messages, model=model, task=task, expect=expect, **params)
        )

    def json_result(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        task: TaskKind | str | None = None,
        expect: Expect = dict,
        **params: Any,
    ) -> JSONResult:
        """``AsyncQwen.json_result``, waited for."""
        return self._runner.run(
            self.aio.json_result(messages, model=model, task=task, expect=expect, **params)
        )

    def stream_json(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        task: TaskKind | str | None = None,
        **params: Any,
    ) -> Generator[dict[str, Any], None, None]:
        """``AsyncQwen.stream_json`` as an iterator; ``close()`` it to stop early."""
        return self._iterate(self.aio.stream_json(messages, model=model, task=task, **params))

    def extract(
        self,
        messages: MessagesInput,
        schema: type[M],
        *,
        max_retries: int = 2,
        model: str | None = None,
        task: TaskKind | str | None = "extract",
        **params: Any,
    ) -> M:
        """``AsyncQwen.extract``, waited for."""
        coro = self.aio.extract(
            messages, schema, max_retries=max_retries, model=model, task=task, **params
        )
        return self._runner.run(coro)

    def stream_extract(
        self,
        messages: MessagesInput,
        schema: type[M],
        *,
        model: str | None = None,
        task: TaskKind | str | None = "extract",
        **params: Any,
    ) -> Generator[BaseModel, None, None]:
        """``AsyncQwen.stream_extract`` as an iterator; ``close()`` it to stop early."""
        items = self.aio.stream_extract(messages, schema, model=model, task=task, **params)
        return self._iterate(items)

    def submit(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        task: TaskKind | str | None = None,
        thinking: bool | None = None,
        server: bool = False,
        **params: Any,
    ) -> Task:
        """``AsyncQwen.submit``; the task's methods run on this client's runner."""
        coro = self.aio.submit(
            messages, model=model, task=task, thinking=thinking, server=server, **params
        )
        return Task(self._runner.run(coro), self._runner)

    def resume_task(
        self,
        task_id: str,
        *,
        model: str,
        tags: Mapping[str, str] | None = None,
        request_id: str | None = None,
        task: str | None = None,
    ) -> Task:
        """``AsyncQwen.resume_task``; the task's methods run on this client's runner."""
        resumed = self.aio.resume_task(
            task_id, model=model, tags=tags, request_id=request_id, task=task
        )
        return Task(resumed, self._runner)

    def _iterate(self, items: AsyncIterator[T]) -> Generator[T, None, None]:
        try:
            yield from self._runner.iterate(items)
        finally:
            if not self._runner.closed:
                self._runner.run(getattr(items, "aclose")())  # noqa: B009 - an async generator

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
