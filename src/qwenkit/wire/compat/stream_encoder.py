"""Encoding canonical events as a compatible-mode SSE stream, framed exactly like the service.

Framing (reference §2.3, verbatim chunks of qwen3-max; §6 for tool calls)::

    data: {"choices":[{"delta":{"content":null,"role":"assistant","reasoning_content":""},
           "index":0,"logprobs":null,"finish_reason":null}],"object":"chat.completion.chunk",
           "usage":null,"created":1761899724,"system_fingerprint":null,"model":"...","id":"chatcmpl-..."}

    data: [DONE]

(one line per event in reality). Rules implemented:

1. ``ResponseStarted`` must come first (``CompatStreamError`` otherwise); it fixes ``id``,
   ``created`` and ``model`` for every chunk (a bare request id becomes ``chatcmpl-<request_id>``)
   and writes nothing by itself.
2. The first chunk of each choice carries ``role: "assistant"``: ``{"content": ""}`` for a plain
   answer, ``{"content": null, "reasoning_content": ""}`` in thinking mode, in a chunk of its own
   before the first text. When a plain answer starts with a tool call, the role rides on the first
   tool-call chunk with ``content: null`` (the §2.3 tool-call example).
3. Reasoning chunks: ``{"content": null, "reasoning_content": "..."}``. Answer chunks:
   ``{"content": "..."}``, plus ``"reasoning_content": null`` in thinking mode. Thinking mode is the
   ``thinking`` argument, and is switched on by the first ``ReasoningDelta`` too. Empty texts write
   nothing.
4. Tool calls: the first fragment of an index has ``index``, ``id``, ``type: "function"`` and
   ``function.name`` + ``arguments``; later fragments have ``id: ""``, ``type: "function"`` and
   ``function.arguments`` only (an id or name not known at the first fragment is written once, when
   it arrives).
5. Every chunk has ``"usage": null``, ``"logprobs": null``, ``"system_fingerprint": null`` and
   ``"finish_reason": null``, except the finish chunk: delta ``{"content": ""}`` (plus
   ``"reasoning_content": null`` in thinking mode) and the reason.
6. ``UsageReported`` writes nothing; the last one is kept and, with ``include_usage``, ``close()``
   writes it as one chunk with ``"choices": []`` (after the finish chunk). ``close()`` always ends
   with ``data: [DONE]``; a second ``close()`` writes nothing, ``encode()`` after it raises.
7. ``StreamError`` writes ``data: {"error": {...}, "id": ..., "request_id": ...}``, the compatible
   error envelope of §8.1 (request id taken from ``ResponseStarted`` when the error has none). It
   may come before ``ResponseStarted``. UNCONFIRMED: no public source shows how the real service
   reports an error in the middle of a compatible-mode stream; this is the form the ``openai``
   SDK recognises (it raises on a data object with an ``error`` key).

JSON is compact and UTF-8 (``_common.dumps``); the constant end of every chunk is serialised once
per stream. ``orjson`` is not a dependency and was not measured (it is not installed).
"""

from __future__ import annotations

import dataclasses

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
from qwenkit.types.usage import Usage
from qwenkit.wire.compat._common import CompatStreamError, compat_id, dumps, request_id_from_id
from qwenkit.wire.compat.usage import encode_usage
from qwenkit.wire.errors import encode_compat_error
from qwenkit.wire.sse import COMPAT_DONE, encode_compat_event

OBJECT = "chat.completion.chunk"

_ROLE_PLAIN = '{"content":"","role":"assistant"}'
_ROLE_THINKING = '{"content":null,"role":"assistant","reasoning_content":""}'
_FINISH_PLAIN = '{"content":""}'
_FINISH_THINKING = '{"content":"","reasoning_content":null}'


class StreamEncoder:
    """Turns canonical events into the bytes of a compatible-mode stream (see the module doc)."""

    __slots__ = (
        "_closed",
        "_ident",
        "_include_usage",
        "_request_id",
        "_roles",
        "_tail",
        "_thinking",
        "_tools",
        "_usage",
    )

    def __init__(self, *, include_usage: bool = False, thinking: bool = False) -> None:
        self._include_usage = include_usage
        self._thinking = thinking
        self._tail: str | None = None
        self._ident: tuple[str, int, str] | None = None
        self._request_id: str | None = None
        self._roles: set[int] = set()
        self._tools: dict[tuple[int, int], list[bool]] = {}
        self._usage: Usage | None = None
        self._closed = False

    @property
    def usage(self) -> Usage | None:
        """The last usage reported so far."""
        return self._usage

    def encode(self, event: Event) -> bytes:
        """The SSE bytes for one event (``b""`` when it writes nothing by itself)."""
        if self._closed:
            raise CompatStreamError("encode() called after close()")
        if isinstance(event, StreamError):
            return self._error(event)
        if isinstance(event, ResponseStarted):
            return self._start(event)
        if self._tail is None:
            raise CompatStreamError(
                f"{type(event).__name__} before ResponseStarted: "
                "ResponseStarted must be the first event of a stream"
            )
        if isinstance(event, ContentDelta):
            if not event.text:
                return b""
            role = self._role(event.choice)
            suffix = ',"reasoning_content":null}' if self._thinking else "}"
            return role + self._chunk('{"content":' + dumps(event.text) + suffix, event.choice)
        if isinstance(event, ReasoningDelta):
            if not event.text:
                return b""
            self._thinking = True
            role = self._role(event.choice)
            delta = '{"content":null,"reasoning_content":' + dumps(event.text) + "}"
            return role + self._chunk(delta, event.choice)
        if isinstance(event, ToolCallDelta):
            return self._tool_call(event)
        if isinstance(event, Finished):
            role = self._role(event.choice)
            delta = _FINISH_THINKING if self._thinking else _FINISH_PLAIN
            return role + self._chunk(delta, event.choice, dumps(event.reason))
        if isinstance(event, UsageReported):
            self._usage = event.usage
            return b""
        raise CompatStreamError(f"not a stream event: {event!r}")

    def close(self) -> bytes:
        """The end of the stream: the usage chunk (with ``include_usage``) and ``data: [DONE]``."""
        if self._closed:
            return b""
        self._closed = True
        if not (self._include_usage and self._usage is not None and self._ident is not None):
            return COMPAT_DONE
        ident, created, model = self._ident
        chunk = {
            "choices": [],
            "object": OBJECT,
            "usage": encode_usage(self._usage),
            "created": created,
            "system_fingerprint": None,
            "model": model,
            "id": ident,
        }
        return encode_compat_event(dumps(chunk)) + COMPAT_DONE

    # -- internals ------------------------------------------------------------------------------

    def _start(self, event: ResponseStarted) -> bytes:
        if self._tail is not None:
            raise CompatStreamError("a second ResponseStarted in one stream")
        ident = compat_id(event.id, event.request_id)
        self._ident = (ident, event.created, event.model)
        self._request_id = event.request_id or request_id_from_id(ident)
        self._tail = (
            f',"object":"{OBJECT}","usage":null,"created":{dumps(event.created)},'
            f'"system_fingerprint":null,"model":{dumps(event.model)},"id":{dumps(ident)}}}'
        )
        return b""

    def _chunk(self, delta: str, choice: int, finish: str = "null") -> bytes:
        return encode_compat_event(
            f'{{"choices":[{{"delta":{delta},"index":{choice},"logprobs":null,'
            f'"finish_reason":{finish}}}]{self._tail}'
        )

    def _role(self, choice: int) -> bytes:
        if choice in self._roles:
            return b""
        self._roles.add(choice)
        return self._chunk(_ROLE_THINKING if self._thinking else _ROLE_PLAIN, choice)

    def _tool_call(self, event: ToolCallDelta) -> bytes:
        key = (event.choice, event.index)
        sent = self._tools.get(key)  # [id written, name written]
        if sent is None:
            self._tools[key] = [bool(event.id), bool(event.name)]
            call: dict[str, object] = {
                "index": event.index,
                "id": event.id or "",
                "type": "function",
                "function": {"name": event.name or "", "arguments": event.arguments},
            }
        else:
            new_id = bool(event.id) and not sent[0]
            new_name = bool(event.name) and not sent[1]
            if not (new_id or new_name or event.arguments):
                return b""
            function: dict[str, str] = {"arguments": event.arguments}
            if new_name and event.name:
                function = {"name": event.name, "arguments": event.arguments}
                sent[1] = True
            call = {
                "index": event.index,
                "id": event.id if new_id and event.id else "",
                "type": "function",
                "function": function,
            }
            sent[0] = sent[0] or new_id
        if event.choice not in self._roles and not self._thinking:
            self._roles.add(event.choice)
            delta = {"content": None, "role": "assistant", "tool_calls": [call]}
            return self._chunk(dumps(delta), event.choice)
        role = self._role(event.choice)
        return role + self._chunk(dumps({"tool_calls": [call]}), event.choice)

    def _error(self, event: StreamError) -> bytes:
        error = event.error
        if error.request_id is None and self._request_id is not None:
            error = dataclasses.replace(error, request_id=self._request_id)
        return encode_compat_event(dumps(encode_compat_error(error)))
