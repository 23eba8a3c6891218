"""Helpers shared by the compatible-mode codec modules: JSON output, ids, exceptions.

JSON is written compact (``separators=(",", ":")``) and with ``ensure_ascii=False``: the service
itself sends raw UTF-8 (Chinese text is not ``\\u`` escaped), and compact output is what every
chunk of a long stream costs. Compact JSON never contains a raw line break (JSON escapes them), so
one JSON text is always one SSE ``data:`` line.

Ids: the compatible wire has no ``request_id`` in success bodies and chunks; the response id is
``chatcmpl-<request_id>`` (error bodies show both side by side, see the reference §2.2), so the
request id is derived from the id when decoding and the id is rebuilt from a bare request id when
encoding a response that came from the native wire.
"""

from __future__ import annotations

import json
from typing import Any

from qwenkit._exceptions import WireError

ID_PREFIX = "chatcmpl-"
_SHOWN = 200


class CompatError(WireError):
    """Base of the errors raised by the compatible-mode codec for input it cannot translate."""


class CompatRequestError(CompatError):
    """A request body that is not a JSON object or lacks ``model`` / ``messages``."""


class CompatResponseError(CompatError):
    """A response body that is not a JSON object."""


class CompatStreamError(CompatError):
    """A stream event that is not valid JSON, or events given to the encoder in an invalid order."""


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 kept as is.

    Same output as ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``, through one
    shared encoder: ``json.dumps`` with non-default options builds a new encoder on every call,
    which costs more than encoding a short delta.
    """
    return _ENCODER.encode(value)


def truncate(text: str, limit: int = _SHOWN) -> str:
    """``text`` cut to ``limit`` characters (with a note of the full length) for error messages."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters in all)"


def request_id_from_id(ident: Any) -> str | None:
    """The request id inside a ``chatcmpl-<request_id>`` id, or ``None``."""
    if isinstance(ident, str) and ident.startswith(ID_PREFIX) and len(ident) > len(ID_PREFIX):
        return ident[len(ID_PREFIX) :]
    return None


def compat_id(ident: str, request_id: str | None) -> str:
    """The id to put on the compatible wire.

    An id that already has the ``chatcmpl-`` prefix, or that is unrelated to the request id, is
    kept as it is. An empty id, or one equal to the bare request id (the native wire has no other
    id), becomes ``chatcmpl-<request_id>`` like the service's own ids.
    """
    if ident.startswith(ID_PREFIX) or not request_id:
        return ident
    if not ident or ident == request_id:
        return ID_PREFIX + request_id
    return ident
