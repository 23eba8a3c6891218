"""What a chat call returns: ``ChatResult``, and the streams that end in one.

``ChatResult`` is the answer (``message``, ``content``, ``tool_calls``, ``finish_reason``) with
what the call cost and how it went (``usage``, ``cost``, ``latency``, the times to the first
token, to the first reasoning token and to the first answer token, ``request_id``, ``attempts``,
``cache_hit``, the policies' ``notes``).

The model's reasoning is kept apart: it is ``result.reasoning`` and nowhere else. ``message`` has
no ``reasoning_content`` (so appending it to a conversation never sends reasoning back), and
neither ``str(result)`` (the content) nor ``repr(result)`` shows it.

``AsyncChatStream`` is what ``AsyncQwen.stream()`` returns: an async iterator of canonical events
(``ReasoningDelta``, ``ContentDelta``, ``ToolCallDelta``, ``UsageReported``, ``Finished``...),
an async context manager that closes the upstream connection on exit, ``text_stream`` (the
content deltas as strings), ``result()`` once the events are consumed and ``await get_result()``
to consume the rest and get it. ``ChatStream`` is the same for ``Qwen``, each method run through
the client's runner (one implementation).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType

from qwenkit._core.pipeline import Call, EventStream
from qwenkit._core.runner import Runner
from qwenkit._exceptions import Attempt, QwenError, UsageError
from qwenkit.catalog import Catalog, Cost, cost
from qwenkit.streaming import StreamAssembler
from qwenkit.types import (
    AssistantMessage,
    ChatResponse,
    ContentDelta,
    Event,
    ToolCall,
    Usage,
    content_text,
)

__all__ = ["AsyncChatStream", "ChatResult", "ChatStream", "build_result"]


@dataclass(frozen=True, eq=False)
class ChatResult:
    """One answer and how it was obtained; see the module docstring. Times are in seconds."""

    message: AssistantMessage
    finish_reason: str | None
    usage: Usage | None
    cost: Cost | None
    """From the catalog's prices; ``None`` for models it does not price (or self-hosted ones)."""
    model: str
    request_id: str | None
    latency: float | None
    time_to_first_token: float | None
    time_to_first_reasoning: float | None
    time_to_first_answer: float | None
    attempts: tuple[Attempt, ...] = ()
    """Failed attempts before the one that answered."""
    cache_hit: bool = False
    notes: tuple[str, ...] = ()
    reasoning: str | None = field(default=None, repr=False)
    """The model's thinking, when it thought: never in ``content``, ``str()`` or ``repr()``."""

    @property
    def content(self) -> str:
        return content_text(self.message.content)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return list(self.message.tool_calls or ())

    def __str__(self) -> str:
        return self.content

    def __repr__(self) -> str:
        return (
            f"ChatResult(model={self.model!r}, content={self.content!r}, "
            f"tool_calls={len(self.tool_calls)}, finish_reason={self.finish_reason!r}, "
            f"usage={self.usage!r}, request_id={self.request_id!r})"
        )


def build_result(
    call: Call, response: ChatResponse, *, region: str | None, catalog: Catalog | None = None
) -> ChatResult:
    """The ``ChatResult`` of a finished call; ``region`` ``None`` leaves ``cost`` unknown."""
    timings = call.timings
    if timings.finished is None:
        timings.finished = time.perf_counter()
    message = response.message.model_copy(update={"reasoning_content": None})
    message.model_fields_set.discard("reasoning_content")
    return ChatResult(
        message=message,
        finish_reason=response.finish_reason,
        usage=response.usage,
        cost=None if region is None else _price(call, response.usage, region, catalog),
        model=response.model or call.request.model,
        request_id=call.request_id or response.request_id,
        latency=timings.latency,
        time_to_first_token=timings.time_to_first_token,
        time_to_first_reasoning=timings.time_to_first_reasoning,
        time_to_first_answer=timings.time_to_first_answer,
        attempts=tuple(call.attempts),
        cache_hit=call.cache_hit,
        notes=tuple(call.notes),
        reasoning=response.reasoning or None,
    )


def _price(call: Call, usage: Usage | None, region: str, catalog: Catalog | None) -> Cost | None:
    """What the call cost (nothing for a cache hit); ``None`` when it cannot be known."""
    if usage is None:
        return None
    try:
        return cost(
            Usage() if call.cache_hit else usage,
            call.profile or call.request.model,
            region,
            thinking=call.request.enable_thinking,
            catalog=catalog,
        )
    except (QwenError, LookupError, ValueError):  # unknown model, no prices there, odd usage
        return None


Finish = Callable[[Call, ChatResponse], ChatResult]


class AsyncChatStream:
    """The events of one call, then its ``ChatResult``; see the module docstring."""

    def __init__(self, events: EventStream, call: Call, finish: Finish) -> None:
        self._events = events
        self._call = call
        self._finish = finish
        self._assembler = StreamAssembler()
        self._done = False
        self._result: ChatResult | None = None
        self._error: Exception | None = None

    @property
    def call(self) -> Call:
        """The pipeline's record of the call (request as sent, profile, notes, timings)."""
        return self._call

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> Event:
        if self._done:
            raise StopAsyncIteration
        try:
            event = await self._events.__anext__()
        except StopAsyncIteration:
            self._done = True
            self._result = self._finish(self._call, self._assembler.result())
            raise
        except Exception as exc:
            self._done, self._error = True, exc
            raise
        except BaseException:
            self._done = True
            raise
        self._assembler.add(event)
        return event

    @property
    def text_stream(self) -> AsyncIterator[str]:
        """The answer's text as it arrives (content deltas of the first choice only)."""
        return self._texts()

    async def _texts(self) -> AsyncIterator[str]:
        async for event in self:
            if isinstance(event, ContentDelta) and event.choice == 0:
                yield event.text

    def result(self) -> ChatResult:
        """The result of a stream consumed to its end (re-raises the error of a failed one)."""
        if self._result is not None:
            return self._result
        if self._error is not None:
            raise self._error
        raise UsageError(
            "the stream has not finished: iterate it to the end, or use `await get_result()`"
        )

    async def get_result(self) -> ChatResult:
        """Consume the events that are left, then return the result."""
        async for _ in self:
            pass
        return self.result()

    async def aclose(self) -> None:
        """Stop here and close the upstream connection (idempotent)."""
        self._done = True
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class ChatStream:
    """``AsyncChatStream`` for the synchronous client: each step runs on the client's runner."""

    def __init__(self, stream: AsyncChatStream, runner: Runner) -> None:
        self._stream = stream
        self._runner = runner

    @property
    def call(self) -> Call:
        return self._stream.call

    def __iter__(self) -> Iterator[Event]:
        return self._runner.iterate(self._stream)

    @property
    def text_stream(self) -> Iterator[str]:
        return self._runner.iterate(self._stream.text_stream)

    def result(self) -> ChatResult:
        return self._stream.result()

    def get_result(self) -> ChatResult:
        return self._runner.run(self._stream.get_result())

    def close(self) -> None:
        if not self._runner.closed:
            self._runner.run(self._stream.aclose())

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
