"""Canonical events to native SSE bytes, exactly as DashScope writes them.

Every chunk is one event (``id`` counts from 1; no space after any colon; compact JSON with UTF-8
text as is)::

    id:1
    event:result
    :HTTP_STATUS/200
    data:{"output":{"choices":[{"message":{"content":"","reasoning_content":"The","role":"assistant"},"finish_reason":"null"}]},"usage":{"input_tokens":287,"output_tokens":3,"total_tokens":290,"output_tokens_details":{"reasoning_tokens":1}},"request_id":"a1959ad1-..."}

Rules:

- ``ResponseStarted`` must come first (it gives the ``request_id`` every chunk repeats) and writes
  nothing; so does ``UsageReported``, which only updates the usage of the next chunks.
- Each delta event becomes one chunk with ``"finish_reason":"null"`` (the string). Once a choice
  has produced reasoning, its chunks carry ``reasoning_content`` (``""`` when the chunk is answer
  text), and reasoning chunks carry ``"content":""``, as the service does.
- ``usage`` is in every chunk: the latest ``UsageReported`` (cumulative), with
  ``output_tokens_details.reasoning_tokens`` when there are reasoning tokens; zeros before any
  usage is known (a native chunk always has a usage object, and nothing better is known yet).
- ``incremental=False``: every chunk carries the whole content, reasoning and tool calls so far
  instead of the delta.
- ``Finished`` writes the last chunk of its choice: empty texts (the whole texts when cumulative)
  and the finish reason. A usage reported only after it (the compatible mode reports usage in a
  chunk after the finish) cannot be lost: the final chunk is written again with the new usage.
- ``StreamError`` writes ``event:error`` with ``:HTTP_STATUS/<status>`` and
  ``{"code","message","request_id"}``; with no result before it (a request rejected up front) it
  is ``id:1``. Nothing may follow it.
- ``result_format="text"``: chunks are ``{"output":{"text":...,"finish_reason":...}}``; that shape
  has no place for reasoning, tool calls or a second choice, so those events write nothing.
- ``close()`` returns ``b""``: a native stream has no terminator, it ends when the connection does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from qwenkit.types import (
    ContentDelta,
    ErrorInfo,
    Event,
    ReasoningDelta,
    ResponseStarted,
    StreamError,
    ToolCallDelta,
    Usage,
    UsageReported,
)
from qwenkit.wire.errors import encode_native_error
from qwenkit.wire.native.errors import NativeStreamError, dumps
from qwenkit.wire.native.usage import encode_usage
from qwenkit.wire.sse import encode_native_event

__all__ = ["StreamEncoder"]


@dataclass(slots=True)
class _Choice:
    content: str = ""
    reasoning: str = ""
    thinking: bool = False
    tools: dict[int, dict[str, Any]] = field(default_factory=dict)


class StreamEncoder:
    """Turn canonical events into native SSE bytes (sans-IO)."""

    def __init__(
        self,
        *,
        result_format: Literal["text", "message"] = "message",
        incremental: bool = True,
    ) -> None:
        self.result_format = result_format
        self.incremental = incremental
        self._id = 0
        self._request_id = ""
        self._started = False
        self._failed = False
        self._usage: Usage | None = None
        self._choices: dict[int, _Choice] = {}
        self._last_final: tuple[int, str] | None = None

    def encode(self, event: Event) -> bytes:
        if self._failed:
            raise NativeStreamError("the native stream already ended with an error event")
        if isinstance(event, StreamError):
            return self._error(event.error)
        if isinstance(event, ResponseStarted):
            if self._started:
                raise NativeStreamError("ResponseStarted given twice")
            self._started = True
            self._request_id = event.request_id or event.id.removeprefix("chatcmpl-")
            return b""
        if not self._started:
            raise NativeStreamError(f"{type(event).__name__} before ResponseStarted")
        if isinstance(event, UsageReported):
            changed = event.usage != self._usage
            self._usage = event.usage
            if changed and self._last_final is not None:
                return self._chunk(*self._last_final, {})
            return b""
        self._last_final = None
        state = self._choices.setdefault(event.choice, _Choice())
        if self.result_format == "text" and (
            event.choice != 0 or isinstance(event, (ReasoningDelta, ToolCallDelta))
        ):
            return b""
        if isinstance(event, ReasoningDelta):
            state.reasoning += event.text
            state.thinking = True
            return self._chunk(event.choice, "null", {"reasoning_content": event.text})
        if isinstance(event, ContentDelta):
            state.content += event.text
            return self._chunk(event.choice, "null", {"content": event.text})
        if isinstance(event, ToolCallDelta):
            return self._chunk(event.choice, "null", {"tool_calls": [self._tool(state, event)]})
        self._last_final = (event.choice, event.reason)
        return self._chunk(event.choice, event.reason, {})

    def close(self) -> bytes:
        """End of the stream: nothing to write (a native stream has no terminator)."""
        return b""

    @staticmethod
    def _tool(state: _Choice, event: ToolCallDelta) -> dict[str, Any]:
        """Record a tool-call fragment; return the fragment as the wire shows it."""
        fragment: dict[str, Any] = {"index": event.index}
        if event.id:
            fragment["id"] = event.id
        fragment["type"] = "function"
        function: dict[str, Any] = {}
        if event.name:
            function["name"] = event.name
        function["arguments"] = event.arguments
        fragment["function"] = function
        whole = state.tools.setdefault(
            event.index, {"index": event.index, "type": "function", "function": {"arguments": ""}}
        )
        if event.id and "id" not in whole:
            whole["id"] = event.id
        if event.name and "name" not in whole["function"]:
            whole["function"]["name"] = event.name
        whole["function"]["arguments"] += event.arguments
        return fragment

    def _message(self, choice: int, delta: dict[str, Any]) -> dict[str, Any]:
        state = self._choices[choice]
        if self.incremental:
            message: dict[str, Any] = {"content": delta.get("content", "")}
            if state.thinking:
                message["reasoning_content"] = delta.get("reasoning_content", "")
            if "tool_calls" in delta:
                message["tool_calls"] = delta["tool_calls"]
        else:
            message = {"content": state.content}
            if state.thinking:
                message["reasoning_content"] = state.reasoning
            if state.tools:
                message["tool_calls"] = [_copy(state.tools[i]) for i in sorted(state.tools)]
        message["role"] = "assistant"
        return message

    def _chunk(self, choice: int, reason: str, delta: dict[str, Any]) -> bytes:
        output: dict[str, Any]
        if self.result_format == "text":
            text = (
                self._choices[choice].content if not self.incremental else delta.get("content", "")
            )
            output = {"text": text, "finish_reason": reason}
        else:
            item: dict[str, Any] = {
                "message": self._message(choice, delta),
                "finish_reason": reason,
            }
            if choice:
                item["index"] = choice
            output = {"choices": [item]}
        data = {
            "output": output,
            "usage": encode_usage(self._usage),
            "request_id": self._request_id,
        }
        self._id += 1
        return encode_native_event(dumps(data), id=self._id)

    def _error(self, error: ErrorInfo) -> bytes:
        self._failed = True
        body = encode_native_error(error)
        if not error.request_id and self._request_id:
            body["request_id"] = self._request_id
        self._id += 1
        return encode_native_event(dumps(body), id=self._id, event="error", status=error.status)


def _copy(call: dict[str, Any]) -> dict[str, Any]:
    return {**call, "function": dict(call["function"])}
