"""The OpenAI-compatible wire format (``/compatible-mode/v1/chat/completions``), both directions.

Pure translation between the canonical types of ``qwenkit.types`` and the JSON / SSE bytes of the
compatible mode (reference ``dashscope-wire.md`` §2, §5.4, §6, §7, §8.1); no I/O.

- requests: ``decode_request`` / ``encode_request`` (Qwen parameters top-level) — ``request.py``
- responses: ``decode_response`` / ``encode_response``; errors: ``encode_error`` / ``decode_error``
  — ``response.py``; usage objects: ``decode_usage`` / ``encode_usage`` — ``usage.py``
- streams: ``decode_chunk``, ``StreamDecoder``, ``decode_stream``, ``adecode_stream`` —
  ``stream.py``; ``StreamEncoder`` — ``stream_encoder.py``

Every decoder keeps fields it does not know, so the round trips ``decode(encode(x)) == x`` and
``encode(decode(body)) == body`` hold for realistic bodies; the normalisations where they do not are
listed in each module's docstring.
"""

from qwenkit.wire.compat._common import (
    CompatError,
    CompatRequestError,
    CompatResponseError,
    CompatStreamError,
)
from qwenkit.wire.compat.request import decode_request, encode_request
from qwenkit.wire.compat.response import (
    decode_error,
    decode_response,
    encode_error,
    encode_response,
)
from qwenkit.wire.compat.stream import StreamDecoder, adecode_stream, decode_chunk, decode_stream
from qwenkit.wire.compat.stream_encoder import StreamEncoder
from qwenkit.wire.compat.usage import decode_usage, encode_usage

__all__ = [
    "CompatError",
    "CompatRequestError",
    "CompatResponseError",
    "CompatStreamError",
    "StreamDecoder",
    "StreamEncoder",
    "adecode_stream",
    "decode_chunk",
    "decode_error",
    "decode_request",
    "decode_response",
    "decode_stream",
    "decode_usage",
    "encode_error",
    "encode_request",
    "encode_response",
    "encode_usage",
]
