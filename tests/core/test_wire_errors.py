"""Error envelopes: the verbatim bodies of the reference decode, and re-encode in both formats."""

from __future__ import annotations

import json

from qwenkit.types import ErrorInfo
from qwenkit.wire.errors import (
    decode_compat_error,
    decode_error,
    decode_native_error,
    encode_compat_error,
    encode_native_error,
    make_error,
)

THINKING_COMPAT = (
    '{"error":{"code":"invalid_parameter_error","param":null,"message":"parameter.enable_thinking must be set '
    'to false for non-streaming calls","type":"invalid_request_error"},"id":"chatcmpl-f5a1f1ee-dac6-9c1b-9bdb-'
    '2f0c22b8af45","request_id":"f5a1f1ee-dac6-9c1b-9bdb-2f0c22b8af45"}'
)


def test_compat_error_decodes_to_native_code_and_round_trips() -> None:
    err = decode_compat_error(400, THINKING_COMPAT)
    assert err.code == "InvalidParameter"
    assert err.request_id == "f5a1f1ee-dac6-9c1b-9bdb-2f0c22b8af45"
    assert err.message.startswith("parameter.enable_thinking")
    assert encode_compat_error(err) == json.loads(THINKING_COMPAT)


def test_native_error_round_trip_and_compat_translation() -> None:
    body = {"code": "InvalidApiKey", "message": "Invalid API-key provided.", "request_id": "0141"}
    err = decode_native_error(401, json.dumps(body).encode())
    assert (err.status, err.code, err.request_id) == (401, "InvalidApiKey", "0141")
    assert encode_native_error(err) == body
    compat = encode_compat_error(err)
    assert compat["error"]["code"] == "invalid_api_key"
    assert compat["error"]["type"] == "invalid_request_error"
    assert "id" not in compat  # gateway-side errors carry no chatcmpl id


def test_allocation_quota_maps_to_insufficient_quota() -> None:
    err = make_error(
        "Throttling.AllocationQuota", "Allocated quota exceeded, please increase your quota limit."
    )
    assert err.status == 429
    body = encode_compat_error(ErrorInfo(429, err.code, err.message, "r1"))
    assert body["error"]["code"] == "insufficient_quota"
    assert body["id"] == "chatcmpl-r1"


def test_decode_error_recognises_either_envelope() -> None:
    assert decode_error(400, THINKING_COMPAT).compat_code == "invalid_parameter_error"
    native = decode_error(
        429, {"code": "Throttling.RateQuota", "message": "Requests rate limit exceeded"}
    )
    assert native.code == "Throttling.RateQuota"
    assert native.compat_code is None


def test_non_json_bodies_still_give_an_error() -> None:
    err = decode_native_error(502, b"<html>Bad Gateway</html>")
    assert err.status == 502
    assert err.code == "InternalError"
    assert "Bad Gateway" in err.message
    empty = decode_compat_error(503, b"")
    assert empty.code == "ModelUnavailable"
    assert "empty body" in empty.message
