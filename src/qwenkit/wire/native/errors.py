"""Native errors: the JSON envelope, the SSE-framed form, and the codec's own exceptions.

Non-streaming: HTTP 4xx/5xx with ``{"code": "...", "message": "...", "request_id": "..."}``.
Streaming: the same object as the ``data`` of an ``event:error`` event whose ``:HTTP_STATUS/NNN``
comment states the status, both when the request is rejected up front (HTTP non-2xx, SSE body,
``id:1``) and mid-stream (HTTP 200 already sent, then the error event, then the end)::

    id:1
    event:error
    :HTTP_STATUS/400
    data:{"code":"Arrearage","message":"Access denied, ...","request_id":"req-1"}

Some error bodies carry a ``type`` too (``Arrearage``); ``ErrorInfo`` has no place for it, so it
is not re-encoded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from qwenkit._exceptions import WireError
from qwenkit.types import ErrorInfo
from qwenkit.wire.errors import decode_native_error, encode_native_error, make_error
from qwenkit.wire.sse import SSEDecoder, encode_native_event

__all__ = [
    "NativeRequestError",
    "NativeResponseError",
    "NativeStreamError",
    "decode_error",
    "dumps",
    "encode_error",
    "encode_error_event",
]


class NativeError(WireError):
    """A body or stream that is not valid DashScope native wire data."""


class NativeRequestError(NativeError):
    """A request body the native service would reject before looking at it, with its native code
    (``BadRequest.EmptyModel``, ``BadRequest.EmptyInput``, ``InvalidParameter``) and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def error(self) -> ErrorInfo:
        """The error as the service reports it (HTTP 400 for every code this codec raises)."""
        return make_error(self.code, self.message, status=400)


class NativeResponseError(NativeError):
    """A body given to ``decode_response`` that is not a native success body."""


class NativeStreamError(NativeError):
    """A native stream that cannot be decoded (a cumulative text that does not extend the previous
    one), or events given to the encoder in an impossible order."""


def dumps(data: Any) -> str:
    """Compact JSON as DashScope writes it: no spaces after separators, UTF-8 text kept as is."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def encode_error(error: ErrorInfo) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body of a non-streaming native error."""
    return error.status, encode_native_error(error)


def encode_error_event(error: ErrorInfo, *, id: int = 1) -> bytes:
    """One SSE ``event:error`` event (``id:1`` for a streaming request rejected up front)."""
    return encode_native_event(
        dumps(encode_native_error(error)), id=id, event="error", status=error.status
    )


def decode_error(status: int, body: bytes | str | Mapping[str, Any] | None) -> ErrorInfo:
    """The error of a native non-2xx response. ``body`` may be JSON, or the SSE-framed body of a
    rejected streaming request (its first event's data is used), or any text (kept as message)."""
    if isinstance(body, (bytes, str)):
        raw = body.encode() if isinstance(body, str) else body
        if raw.lstrip().startswith((b"id:", b"event:", b"data:", b":HTTP_STATUS")):
            decoder = SSEDecoder()
            events = decoder.feed(raw) + decoder.close()
            if events:
                return decode_native_error(status, events[0].data)
    return decode_native_error(status, body)
