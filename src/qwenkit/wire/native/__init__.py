"""The DashScope native wire format (``/api/v1/services/aigc/.../generation``), both directions.

Pure translation between the canonical types and native JSON / SSE bytes; no I/O. The modules:

- ``request``: request bodies and headers (``decode_request``, ``encode_request``,
  ``request_headers``, ``NativeRequest``);
- ``response``: non-streaming success bodies of both result formats (``decode_response``,
  ``encode_response``);
- ``stream`` / ``encoder``: SSE streams to events and back (``StreamDecoder``, ``decode_stream``,
  ``adecode_stream``, ``StreamEncoder``);
- ``errors``: error envelopes, SSE-framed errors, and this codec's exceptions;
- ``content`` / ``usage``: multimodal parts without ``type`` and native usage objects.

Each module's docstring states the wire rules it implements (source:
``shared/reference/dashscope-wire.md`` §3). Translating a compatible request into a native one is
``encode_request(compat.decode_request(body))``: both codecs meet at ``ChatRequest``.
"""

from __future__ import annotations

from qwenkit.wire.native.content import decode_content, encode_content
from qwenkit.wire.native.encoder import StreamEncoder
from qwenkit.wire.native.errors import (
    NativeRequestError,
    NativeResponseError,
    NativeStreamError,
    decode_error,
    encode_error,
    encode_error_event,
)
from qwenkit.wire.native.request import (
    NativeRequest,
    decode_request,
    encode_request,
    request_headers,
)
from qwenkit.wire.native.response import decode_response, encode_response
from qwenkit.wire.native.stream import StreamDecoder, adecode_stream, decode_stream
from qwenkit.wire.native.usage import decode_usage, encode_usage

__all__ = [
    "NativeRequest",
    "NativeRequestError",
    "NativeResponseError",
    "NativeStreamError",
    "StreamDecoder",
    "StreamEncoder",
    "adecode_stream",
    "decode_content",
    "decode_error",
    "decode_request",
    "decode_response",
    "decode_stream",
    "decode_usage",
    "encode_content",
    "encode_error",
    "encode_error_event",
    "encode_request",
    "encode_response",
    "encode_usage",
    "request_headers",
]
