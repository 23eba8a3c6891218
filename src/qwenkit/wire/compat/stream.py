"""Decoding a compatible-mode SSE stream into canonical events.

Wire rules (reference §2.3, §5.4, §6, §8.1):

- Each event is ``data: {json}`` + a blank line; the stream ends with ``data: [DONE]``. The SSE
  framing itself (line endings, chunk boundaries) is ``qwenkit.wire.sse``'s job.
- Every chunk is a ``chat.completion.chunk`` with the same ``id`` / ``created`` / ``model``; the
  first one yields ``ResponseStarted`` (request id derived from ``chatcmpl-<request_id>``).
- ``choices[i].delta``: ``reasoning_content`` -> ``ReasoningDelta``, ``content`` ->
  ``ContentDelta`` (``null`` and ``""`` are skipped: the first chunk carries only
  ``role: "assistant"`` with an empty content, the finish chunk ``content: ""``),
  ``tool_calls[]`` -> ``ToolCallDelta`` (``id: ""`` and a missing or empty name, as later
  fragments of a call have them, become ``None``; a fragment with nothing in it is skipped).
  ``delta.role`` and ``logprobs`` are not events and are dropped.
- ``finish_reason`` (non-null) -> ``Finished``, after the deltas of the same chunk.
- ``usage``: ``null`` in every chunk but the last one with ``stream_options.include_usage``, which
  has ``"choices": []`` and the usage object -> ``UsageReported``.
- An event whose JSON has an ``error`` object -> ``StreamError``, status from the SSE event if it
  has one, otherwise the usual status of the error code (an integer ``code``, as llama.cpp sends,
  is the status itself).

Invalid JSON in a data line raises ``CompatStreamError`` with the offending text (truncated).
Events after ``[DONE]`` are ignored; ``StreamDecoder.done`` tells whether ``[DONE]`` was seen, so a
caller can tell a complete stream from a cut connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

from qwenkit.types.events import (
    ContentDelta,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    StreamError,
    ToolCallDelta,
    UsageReported,
)
from qwenkit.wire.compat._common import CompatStreamError, dumps, request_id_from_id, truncate
from qwenkit.wire.compat.usage import decode_usage
from qwenkit.wire.errors import ERROR_CODES, decode_compat_error, native_code_for
from qwenkit.wire.sse import SSEEvent, aiter_sse, iter_sse

DONE = "[DONE]"
_MAP = (dict, Mapping)  # JSON gives dicts: the exact-type check first, the ABC check only after
_UNKNOWN_ERROR_STATUS = 500


def _error_status(error: Mapping[str, Any]) -> int:
    code = error.get("code")
    if type(code) is int and 400 <= code <= 599:  # llama.cpp: the code is the HTTP status
        return code
    row = ERROR_CODES.get(native_code_for(code)) if isinstance(code, str) else None
    return row.status if row is not None else _UNKNOWN_ERROR_STATUS


def _stream_error(chunk: Mapping[str, Any], status: int | None) -> StreamError:
    error = chunk["error"]
    return StreamError(decode_compat_error(status or _error_status(error), chunk))


def _tool_call_deltas(calls: Any, choice: int, events: list[Event]) -> None:
    if not isinstance(calls, list):
        return
    for position, call in enumerate(calls):
        if not isinstance(call, _MAP):
            continue
        index = call.get("index")
        function = call.get("function")
        if not isinstance(function, _MAP):
            function = {}
        ident = call.get("id") or None
        name = function.get("name") or None
        arguments = function.get("arguments") or ""
        if not isinstance(arguments, str):  # never seen; keep it as the JSON text it stands for
            arguments = dumps(arguments)
        if ident is None and name is None and not arguments:
            continue
        events.append(
            ToolCallDelta(
                index=index if isinstance(index, int) else position,
                id=ident,
                name=name,
                arguments=arguments,
                choice=choice,
            )
        )


def decode_chunk(chunk: Mapping[str, Any], *, status: int | None = None) -> list[Event]:
    """The events of one ``chat.completion.chunk`` object (without ``ResponseStarted``).

    A mapping with an ``error`` object gives one ``StreamError`` (``status``, when known, is the
    HTTP status to report; otherwise the usual status of the error code is used).
    """
    error = chunk.get("error")
    if error is not None and isinstance(error, _MAP):
        return [_stream_error(chunk, status)]
    events: list[Event] = []
    choices = chunk.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        if not isinstance(choice, _MAP):
            continue
        index = choice.get("index")
        number = index if isinstance(index, int) else 0
        delta = choice.get("delta")
        if delta is not None and isinstance(delta, _MAP):
            reasoning = delta.get("reasoning_content")
            if reasoning and isinstance(reasoning, str):
                events.append(ReasoningDelta(reasoning, number))
            content = delta.get("content")
            if content and isinstance(content, str):
                events.append(ContentDelta(content, number))
            calls = delta.get("tool_calls")
            if calls:
                _tool_call_deltas(calls, number, events)
        finish = choice.get("finish_reason")
        if finish and isinstance(finish, str):
            events.append(Finished(finish, number))
    usage = chunk.get("usage")
    if usage is not None and isinstance(usage, _MAP):
        events.append(UsageReported(decode_usage(usage)))
    return events


class StreamDecoder:
    """Stateful decoder: feed it the SSE events of one compatible-mode stream, in order."""

    __slots__ = ("_done", "_started")

    def __init__(self) -> None:
        self._started = False
        self._done = False

    @property
    def done(self) -> bool:
        """``True`` once ``data: [DONE]`` was received."""
        return self._done

    @property
    def started(self) -> bool:
        """``True`` once the first chunk (and so ``ResponseStarted``) was decoded."""
        return self._started

    def feed(self, event: SSEEvent) -> list[Event]:
        """The canonical events of one SSE event (possibly none)."""
        if self._done:
            return []
        data = event.data.strip()
        if not data:
            return []
        if data == DONE:
            self._done = True
            return []
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise CompatStreamError(
                f"invalid JSON in a compatible-mode stream event: {truncate(data)!r}"
            ) from exc
        if not isinstance(chunk, dict):
            raise CompatStreamError(
                f"a compatible-mode stream event is not a JSON object: {truncate(data)!r}"
            )
        error = chunk.get("error")
        if error is not None and isinstance(error, _MAP):
            return [_stream_error(chunk, event.status)]
        if self._started:
            return decode_chunk(chunk)
        self._started = True
        ident = chunk.get("id")
        ident = ident if isinstance(ident, str) else ""
        model = chunk.get("model")
        created = chunk.get("created")
        request_id = chunk.get("request_id")
        started = ResponseStarted(
            id=ident,
            model=model if isinstance(model, str) else "",
            created=created if isinstance(created, int) else 0,
            request_id=request_id if isinstance(request_id, str) else request_id_from_id(ident),
        )
        return [started, *decode_chunk(chunk)]


def decode_stream(chunks: Iterable[bytes]) -> Iterator[Event]:
    """Canonical events from the raw bytes of a compatible-mode stream, split anywhere."""
    decoder = StreamDecoder()
    for event in iter_sse(chunks):
        yield from decoder.feed(event)


async def adecode_stream(chunks: AsyncIterable[bytes]) -> AsyncIterator[Event]:
    """``decode_stream`` for an asynchronous byte source."""
    decoder = StreamDecoder()
    async for event in aiter_sse(chunks):
        for item in decoder.feed(event):
            yield item
