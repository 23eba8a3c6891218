"""An error answered up front, as bytes of either wire: ``error_body``.

Shared by every server that speaks the wire formats (the emulator, the gateway): the compatible
mode answers with its JSON envelope (a rejected compatible *stream* too: the service answers it
with JSON, and the ``openai`` SDK expects that), the native mode with ``{code, message,
request_id}``, or, for a native streaming request, the SSE-framed ``event:error`` with
``:HTTP_STATUS/NNN`` and the same HTTP status (reference §3.4).
"""

from __future__ import annotations

import json
from typing import Literal, NamedTuple

from qwenkit.types import ErrorInfo
from qwenkit.wire import compat, native

__all__ = ["ErrorBody", "error_body", "json_bytes"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_bytes(body: object) -> bytes:
    """Compact UTF-8 JSON, as the service writes it."""
    return _ENCODER.encode(body).encode("utf-8")


class ErrorBody(NamedTuple):
    status: int
    body: bytes
    media_type: str


def error_body(error: ErrorInfo, *, wire: Literal["compat", "native"], stream: bool) -> ErrorBody:
    """The status, bytes and media type of ``error`` answered up front (module docstring)."""
    if wire == "native" and stream:
        return ErrorBody(error.status, native.encode_error_event(error), "text/event-stream")
    status, body = native.encode_error(error) if wire == "native" else compat.encode_error(error)
    return ErrorBody(status, json_bytes(body), "application/json")
