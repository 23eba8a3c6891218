"""Native SSE streams to canonical events.

Each native event is framed as ``id:N`` / ``event:result`` / ``:HTTP_STATUS/200`` / ``data:{json}``
(see ``qwenkit.wire.sse``); the data is a whole response object::

    {"output": {"choices": [{"message": {"content": "", "reasoning_content": "The",
                                         "role": "assistant"}, "finish_reason": "null"}]},
     "usage": {"input_tokens": 287, "output_tokens": 3, "total_tokens": 290,
               "output_tokens_details": {"reasoning_tokens": 1}},
     "request_id": "a1959ad1-..."}

Decoding rules:

- The first result yields ``ResponseStarted(id="chatcmpl-" + request_id, model, request_id)``;
  native chunks carry no model, so it is the one the caller gives.
- ``finish_reason`` is the *string* ``"null"`` while a choice is unfinished (JSON ``null`` and a
  missing key are read the same way); any other value yields ``Finished``.
  A choice finishes once: a repeated final chunk (``StreamEncoder`` re-sends it when usage
  arrives after the finish) yields only its new usage.
- ``reasoning_content`` / ``content`` yield ``ReasoningDelta`` / ``ContentDelta`` (empty strings
  are skipped). Multimodal content lists (``[{"text": "..."}]``) count by their text. Tool calls
  yield ``ToolCallDelta`` by ``index`` (the position in the list when absent). With
  ``result_format: "text"`` the chunk has ``output.text`` instead of ``choices``.
- ``incremental=False`` (``incremental_output: false``): every chunk holds the whole text so far,
  and every tool call its whole arguments so far; they are turned into deltas. A cumulative text
  that does not extend the previous one raises ``NativeStreamError``; an empty or missing field
  carries no information and never counts as a reset.
- ``usage`` is cumulative and present in every chunk: ``UsageReported`` is emitted only when it
  differs from the last one (an all-zero usage is never reported), *before* the deltas of its
  chunk. The encoder attaches the latest usage to the next chunk it writes, so this order makes a
  native-to-native relay through events reproduce every chunk's usage exactly.
- ``event:error`` (or any event with an ``:HTTP_STATUS`` of 400 or more) yields ``StreamError``
  and ends the decoding; later events are ignored. The status is the event's ``:HTTP_STATUS/NNN``
  comment. When it is missing, the usual status of the error code is used (``Throttling.*`` is
  429, ``InvalidApiKey`` 401...) and 400 only for a code without one: the dashscope SDK ignores the
  comment and always falls back to 400, which makes a throttling error look not retryable.
- ``event:done`` (which the SDK skips) and unknown event kinds are ignored.
- ``output`` keys other than the answer (``search_info``, ``tool_info``) have no event and are not
  reported.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

from qwenkit.types import (
    ContentDelta,
    ErrorInfo,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    StreamError,
    ToolCallDelta,
    Usage,
    UsageReported,
)
from qwenkit.wire.errors import decode_native_error, make_error
from qwenkit.wire.native.content import native_text
from qwenkit.wire.native.errors import NativeStreamError
from qwenkit.wire.native.usage import decode_usage
from qwenkit.wire.sse import SSEEvent, aiter_sse, iter_sse

__all__ = ["StreamDecoder", "adecode_stream", "decode_stream"]


@dataclasses.dataclass(slots=True)
class _ToolState:
    id: str | None = None
    name: str | None = None


class StreamDecoder:
    """Feed native SSE events one by one; get canonical events out (sans-IO).

    ``incremental=False`` decodes an ``incremental_output: false`` stream (whole texts in every
    chunk) into deltas; ``feed`` raises ``NativeStreamError`` when such a text does not extend the
    previous one. After an ``event:error``, ``error`` is set, ``done`` is true and ``feed`` returns
    nothing more.
    """

    def __init__(
        self, *, model: str = "", incremental: bool = True, live_usage: bool = True
    ) -> None:
        self.model = model
        self.incremental = incremental
        self.live_usage = live_usage
        """False: usage is decoded once, with the chunk that finishes (a client that wants only
        the final figures skips decoding a usage object in every chunk)."""
        self._raw_usage: Mapping[str, Any] | None = None
        self.request_id: str | None = None
        self.error: ErrorInfo | None = None
        self._started = False
        self._usage = Usage()  # an all-zero usage (what an encoder sends before any) is not news
        self._texts: dict[tuple[int, str], str] = {}
        self._tools: dict[tuple[int, int], _ToolState] = {}
        self._seen: set[int] = set()
        self._finished: set[int] = set()

    @property
    def done(self) -> bool:
        """True after an error, or once every choice seen so far has finished."""
        return self.error is not None or (bool(self._seen) and self._seen <= self._finished)

    def feed(self, event: SSEEvent) -> list[Event]:
        if self.error is not None:
            return []
        if event.event == "error" or (event.status is not None and event.status >= 400):
            return [self._fail(event.status, event.data)]
        if event.event not in (None, "result"):
            return []
        try:
            data = json.loads(event.data)
        except ValueError as exc:
            raise NativeStreamError(
                f"native stream data is not JSON: {event.data[:200]!r}"
            ) from exc
        if not isinstance(data, Mapping):
            raise NativeStreamError("native stream data is not a JSON object")
        if "output" not in data and data.get("code"):
            return [self._fail(event.status, data)]
        return self._result(data)

    def _fail(self, status: int | None, data: str | Mapping[str, Any]) -> StreamError:
        info = decode_native_error(status or 400, data)
        if status is None:
            info = dataclasses.replace(info, status=make_error(info.code, "").status)
        if info.request_id is None and self.request_id is not None:
            info = dataclasses.replace(info, request_id=self.request_id)
        self.error = info
        return StreamError(info)

    def _result(self, data: Mapping[str, Any]) -> list[Event]:
        events: list[Event] = []
        if not self._started:
            self._started = True
            rid = data.get("request_id")
            self.request_id = rid if isinstance(rid, str) else None
            events.append(
                ResponseStarted(
                    id="chatcmpl-" + (self.request_id or ""),
                    model=self.model,
                    request_id=self.request_id,
                )
            )
        usage = data.get("usage")
        if isinstance(usage, Mapping):
            if self.live_usage:
                self._report(usage, events)
            else:
                self._raw_usage = usage
        finishes: list[Finished] = []
        output = data.get("output")
        if isinstance(output, Mapping):
            choices = output.get("choices")
            if isinstance(choices, list):
                for position, choice in enumerate(choices):
                    if isinstance(choice, Mapping):
                        self._choice(choice, position, events, finishes)
            elif "text" in output:
                self._seen.add(0)
                self._text(0, "content", output.get("text"), events)
                self._finish(0, output.get("finish_reason"), finishes)
        if finishes and self._raw_usage is not None:
            self._report(self._raw_usage, events)
            self._raw_usage = None
        events.extend(finishes)
        return events

    def _report(self, usage: Mapping[str, Any], events: list[Event]) -> None:
        decoded = decode_usage(usage)
        if decoded != self._usage:
            self._usage = decoded
            events.append(UsageReported(decoded))

    def _choice(
        self,
        choice: Mapping[str, Any],
        position: int,
        events: list[Event],
        finishes: list[Finished],
    ) -> None:
        index = choice.get("index")
        idx = index if isinstance(index, int) else position
        self._seen.add(idx)
        message = choice.get("message")
        if isinstance(message, Mapping):
            self._text(idx, "reasoning", message.get("reasoning_content"), events)
            self._text(idx, "content", native_text(message.get("content")), events)
            calls = message.get("tool_calls")
            if isinstance(calls, list):
                for pos, call in enumerate(calls):
                    if isinstance(call, Mapping):
                        self._tool(idx, call, pos, events)
        self._finish(idx, choice.get("finish_reason"), finishes)

    def _finish(self, idx: int, reason: Any, finishes: list[Finished]) -> None:
        if isinstance(reason, str) and reason and reason != "null" and idx not in self._finished:
            self._finished.add(idx)
            finishes.append(Finished(reason, idx))

    def _new_text(self, key: tuple[int, str], text: str, what: str) -> str:
        """The part of a cumulative text that is new since the last chunk."""
        previous = self._texts.get(key, "")
        if not text.startswith(previous):
            raise NativeStreamError(
                f"cumulative {what} of choice {key[0]} does not extend the previous chunk "
                "(is the stream really incremental_output: false?)"
            )
        self._texts[key] = text
        return text[len(previous) :]

    def _text(self, idx: int, field: str, text: Any, events: list[Event]) -> None:
        if not isinstance(text, str) or not text:
            return
        if not self.incremental:
            text = self._new_text((idx, field), text, field)
            if not text:
                return
        events.append(
            ReasoningDelta(text, idx) if field == "reasoning" else ContentDelta(text, idx)
        )

    def _tool(self, idx: int, call: Mapping[str, Any], position: int, events: list[Event]) -> None:
        index = call.get("index")
        tool_index = index if isinstance(index, int) else position
        function = call.get("function")
        fn: Mapping[str, Any] = function if isinstance(function, Mapping) else {}
        call_id = _str(call.get("id"))
        name = _str(fn.get("name"))
        arguments = _str(fn.get("arguments")) or ""
        if self.incremental:
            if call_id or name or arguments:
                events.append(
                    ToolCallDelta(tool_index, call_id or None, name or None, arguments, idx)
                )
            return
        state = self._tools.setdefault((idx, tool_index), _ToolState())
        new_id = call_id if call_id and state.id is None else None
        new_name = name if name and state.name is None else None
        new_args = (
            self._new_text((idx, f"tool{tool_index}"), arguments, "tool arguments")
            if arguments
            else ""
        )
        state.id = state.id or new_id
        state.name = state.name or new_name
        if new_id or new_name or new_args:
            events.append(ToolCallDelta(tool_index, new_id, new_name, new_args, idx))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def decode_stream(
    chunks: Iterable[bytes], *, model: str = "", incremental: bool = True
) -> Iterator[Event]:
    """Canonical events of a native SSE byte stream (stops after an error event)."""
    decoder = StreamDecoder(model=model, incremental=incremental)
    for event in iter_sse(chunks):
        yield from decoder.feed(event)
        if decoder.error is not None:
            return


async def adecode_stream(
    chunks: AsyncIterable[bytes], *, model: str = "", incremental: bool = True
) -> AsyncIterator[Event]:
    """The async twin of ``decode_stream``."""
    decoder = StreamDecoder(model=model, incremental=incremental)
    async for event in aiter_sse(chunks):
        for item in decoder.feed(event):
            yield item
        if decoder.error is not None:
            return
