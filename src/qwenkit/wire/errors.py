"""Error envelopes of both wire formats, and the map between their codes.

Native (DashScope)::

    {"code": "InvalidParameter", "message": "...", "request_id": "..."}

Compatible (OpenAI-style)::

    {"error": {"message": "...", "type": "invalid_request_error", "param": null,
               "code": "invalid_parameter_error"},
     "id": "chatcmpl-<request_id>", "request_id": "<request_id>"}

llama.cpp's ``llama-server`` (an OpenAI-compatible server) sends the HTTP status as an integer
``code`` and names the error in ``type``, with no id::

    {"error": {"code": 400, "message": "request (5010 tokens) exceeds the available context size
               (4096 tokens), try increasing it", "type": "exceed_context_size_error",
               "n_prompt_tokens": 5010, "n_ctx": 4096}}

so a ``code`` that is not a string (an integer, or none) is not a name: the decoder takes ``type``
in its place (``ErrorInfo.code == "exceed_context_size_error"``, ``compat_code`` ``None``), and only
without a ``type`` either falls back to the usual code of the HTTP status.
``encode_llama_cpp_error`` writes that envelope (the emulator's ``error_envelope`` quirk).

The canonical ``ErrorInfo.code`` is the native code. ``ERROR_CODES`` maps each native code to its
usual HTTP status and its compatible-mode ``code``/``type``; rows whose compatible form no public
source shows are marked ``confirmed=False`` (see ``shared/reference/dashscope-wire.md`` §8): for
those the native code is reused, so nothing is invented that a client could mistake for the
service's own word. Decoders are tolerant: a body that is not JSON (a proxy's HTML page, an empty
body) still becomes an ``ErrorInfo`` with the HTTP status and the text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qwenkit.types.errors import ErrorInfo


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    status: int
    compat_code: str
    compat_type: str
    confirmed: bool = True


ERROR_CODES: dict[str, ErrorCode] = {
    row.code: row
    for row in (
        ErrorCode("InvalidParameter", 400, "invalid_parameter_error", "invalid_request_error"),
        ErrorCode("DataInspectionFailed", 400, "data_inspection_failed", "data_inspection_failed"),
        ErrorCode("InvalidApiKey", 401, "invalid_api_key", "invalid_request_error"),
        ErrorCode("Arrearage", 400, "Arrearage", "Arrearage", confirmed=False),
        ErrorCode("Throttling", 429, "Throttling", "Throttling", confirmed=False),
        ErrorCode(
            "Throttling.RateQuota",
            429,
            "limit_requests",
            "limit_requests",
        ),
        ErrorCode("Throttling.AllocationQuota", 429, "insufficient_quota", "insufficient_quota"),
        ErrorCode(
            "Throttling.BurstRate",
            429,
            "limit_burst_rate",
            "limit_burst_rate",
            confirmed=False,
        ),
        ErrorCode(
            "InvalidParameter.NotSupportEnableThinking",
            400,
            "invalid_parameter_error",
            "invalid_request_error",
            confirmed=False,
        ),
        ErrorCode(
            "UnsupportedOperation",
            400,
            "UnsupportedOperation",
            "invalid_request_error",
            confirmed=False,
        ),
        ErrorCode(
            "AllocationQuota.FreeTierOnly",
            403,
            "AllocationQuota.FreeTierOnly",
            "AllocationQuota.FreeTierOnly",
            confirmed=False,
        ),
        ErrorCode("AccessDenied", 403, "access_denied", "invalid_request_error", confirmed=False),
        ErrorCode(
            "AccessDenied.Unpurchased",
            403,
            "access_denied",
            "invalid_request_error",
            confirmed=False,
        ),
        ErrorCode("ModelNotFound", 404, "model_not_found", "invalid_request_error"),
        ErrorCode(
            "WorkSpaceNotFound", 404, "WorkSpaceNotFound", "invalid_request_error", confirmed=False
        ),
        ErrorCode("RequestTimeOut", 408, "RequestTimeOut", "RequestTimeOut", confirmed=False),
        ErrorCode(
            "BadRequest.TooLarge",
            413,
            "BadRequest.TooLarge",
            "invalid_request_error",
            confirmed=False,
        ),
        ErrorCode("InternalError", 500, "internal_error", "internal_error", confirmed=False),
        ErrorCode("InternalError.Algo", 500, "internal_error", "internal_error", confirmed=False),
        ErrorCode("SystemError", 500, "internal_error", "internal_error", confirmed=False),
        ErrorCode("ModelUnavailable", 503, "ModelUnavailable", "ModelUnavailable", confirmed=False),
    )
}

_BY_COMPAT: dict[str, str] = {}
for _row in ERROR_CODES.values():
    _BY_COMPAT.setdefault(_row.compat_code, _row.code)

_FALLBACK_BY_STATUS = {
    400: "InvalidParameter",
    401: "InvalidApiKey",
    403: "AccessDenied",
    404: "ModelNotFound",
    408: "RequestTimeOut",
    413: "BadRequest.TooLarge",
    429: "Throttling",
    500: "InternalError",
    502: "InternalError",
    503: "ModelUnavailable",
    504: "RequestTimeOut",
}


def compat_code_for(error: ErrorInfo) -> tuple[str, str]:
    """The compatible-mode ``(code, type)`` of an error."""
    row = ERROR_CODES.get(error.code)
    code = error.compat_code or (row.compat_code if row else error.code)
    kind = error.compat_type or (row.compat_type if row else error.code)
    return code, kind


def native_code_for(compat_code: str) -> str:
    """The native code behind a compatible-mode code (unknown codes are kept as they are)."""
    return _BY_COMPAT.get(compat_code, compat_code)


def make_error(
    code: str, message: str, *, request_id: str | None = None, status: int | None = None
) -> ErrorInfo:
    """An ``ErrorInfo`` for a native code, with its usual HTTP status unless one is given."""
    row = ERROR_CODES.get(code)
    return ErrorInfo(
        status=status if status is not None else (row.status if row else 400),
        code=code,
        message=message,
        request_id=request_id,
    )


# -- native -------------------------------------------------------------------------------------


def encode_native_error(error: ErrorInfo) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    body["request_id"] = error.request_id or ""
    return body


def decode_native_error(status: int, body: bytes | str | Mapping[str, Any] | None) -> ErrorInfo:
    data = _as_mapping(body)
    if data is None:
        return _from_text(status, body)
    if isinstance(data.get("error"), Mapping):  # a compatible envelope on a native route
        return decode_compat_error(status, data)
    code = _str(data.get("code")) or _FALLBACK_BY_STATUS.get(status, f"HTTP{status}")
    return ErrorInfo(
        status=status,
        code=code,
        message=_str(data.get("message")) or "",
        request_id=_str(data.get("request_id")),
    )


# -- compatible ---------------------------------------------------------------------------------


def encode_compat_error(error: ErrorInfo, *, include_id: bool | None = None) -> dict[str, Any]:
    """The compatible envelope. ``id`` (``chatcmpl-<request_id>``) is present on model-side errors
    and absent on gateway errors such as a bad key; by default it is left out for 401."""
    code, kind = compat_code_for(error)
    body: dict[str, Any] = {
        "error": {"message": error.message, "type": kind, "param": error.param, "code": code}
    }
    if include_id is None:
        include_id = error.status != 401
    if include_id and error.request_id:
        body["id"] = f"chatcmpl-{error.request_id}"
    body["request_id"] = error.request_id or ""
    return body


def decode_compat_error(status: int, body: bytes | str | Mapping[str, Any] | None) -> ErrorInfo:
    data = _as_mapping(body)
    if data is None:
        return _from_text(status, body)
    inner = data.get("error")
    if not isinstance(inner, Mapping):
        if "code" in data and "message" in data:  # a native envelope on a compatible route
            return decode_native_error(status, data)
        inner = {}
    raw_code = inner.get("code")
    compat_code = raw_code if isinstance(raw_code, str) else None  # llama.cpp: the HTTP status
    compat_type = _str(inner.get("type"))
    named = compat_code or compat_type
    code = native_code_for(named) if named else _FALLBACK_BY_STATUS.get(status, f"HTTP{status}")
    request_id = _str(data.get("request_id"))
    if request_id is None:
        ident = _str(data.get("id"))
        if ident and ident.startswith("chatcmpl-"):
            request_id = ident.removeprefix("chatcmpl-")
    return ErrorInfo(
        status=status,
        code=code,
        message=_str(inner.get("message")) or "",
        request_id=request_id,
        compat_code=compat_code,
        compat_type=compat_type,
        param=_str(inner.get("param")),
    )


def decode_error(status: int, body: bytes | str | Mapping[str, Any] | None) -> ErrorInfo:
    """Either envelope, recognised by its shape."""
    data = _as_mapping(body)
    if data is not None and isinstance(data.get("error"), Mapping):
        return decode_compat_error(status, data)
    return decode_native_error(status, body if data is None else data)


# -- llama.cpp ----------------------------------------------------------------------------------

LLAMA_CPP_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    500: "server_error",
    501: "not_supported_error",
    503: "unavailable_error",
}
"""The ``type`` llama.cpp's server gives each status (its ``error_type`` enum); a request over the
context size is a 400 ``exceed_context_size_error``."""

_LLAMA_CPP_NAMES = frozenset({*LLAMA_CPP_TYPES.values(), "exceed_context_size_error"})


def encode_llama_cpp_error(error: ErrorInfo) -> dict[str, Any]:
    """llama.cpp's envelope: ``{"error": {"code": <status>, "message", "type"}}``, no id.

    ``type`` is the error's code when it already is one of llama.cpp's types, else the type
    llama.cpp gives the status, else (a status llama.cpp never sends, such as 429) the compatible
    type of the error.
    """
    if error.code in _LLAMA_CPP_NAMES:
        kind = error.code
    else:
        kind = LLAMA_CPP_TYPES.get(error.status) or compat_code_for(error)[1]
    return {"error": {"code": error.status, "message": error.message, "type": kind}}


# -- helpers ------------------------------------------------------------------------------------


def _as_mapping(body: bytes | str | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if body is None:
        return None
    if isinstance(body, Mapping):
        return body
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, Mapping) else None


def _from_text(status: int, body: bytes | str | Mapping[str, Any] | None) -> ErrorInfo:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    text = text.strip()
    return ErrorInfo(
        status=status,
        code=_FALLBACK_BY_STATUS.get(status, f"HTTP{status}"),
        message=text[:500] if text else f"HTTP {status} with an empty body",
    )


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
