"""Native error envelopes: JSON bodies, SSE-framed bodies, and error events."""

from __future__ import annotations

import pytest

from qwenkit.types import ErrorInfo, StreamError
from qwenkit.wire.native import (
    NativeRequestError,
    decode_error,
    decode_stream,
    encode_error,
    encode_error_event,
)

THINKING_ERROR = ErrorInfo(
    400,
    "InvalidParameter",
    "parameter.enable_thinking must be set to false for non-streaming calls",
    request_id="cb57ead7-9455-4db0-9dfa-76c41cdd5a06",
)


def test_encode_error_is_the_service_envelope() -> None:
    assert encode_error(THINKING_ERROR) == (
        400,
        {
            "code": "InvalidParameter",
            "message": "parameter.enable_thinking must be set to false for non-streaming calls",
            "request_id": "cb57ead7-9455-4db0-9dfa-76c41cdd5a06",
        },
    )


def test_decode_error_of_a_json_body() -> None:
    body = (
        b'{"code":"InvalidApiKey","message":"Invalid API-key provided.",'
        b'"request_id":"01415ff3-53f4-989d-83c0-3eb61fa1418e"}'
    )
    assert decode_error(401, body) == ErrorInfo(
        401, "InvalidApiKey", "Invalid API-key provided.", "01415ff3-53f4-989d-83c0-3eb61fa1418e"
    )


def test_decode_error_of_an_sse_body() -> None:
    body = (
        "id:1\nevent:error\n:HTTP_STATUS/400\n"
        'data:{"request_id":"req-1","code":"Arrearage","type":"Arrearage",'
        '"message":"Access denied, please make sure your account is in good standing."}\n\n'
    )
    error = decode_error(400, body)
    assert (error.status, error.code, error.request_id) == (400, "Arrearage", "req-1")
    assert error.message.startswith("Access denied")


def test_decode_error_of_a_proxy_page() -> None:
    error = decode_error(502, b"<html>Bad Gateway</html>")
    assert (error.status, error.code, error.message) == (
        502,
        "InternalError",
        "<html>Bad Gateway</html>",
    )


def test_error_event_bytes() -> None:
    assert encode_error_event(THINKING_ERROR, id=3) == (
        b"id:3\nevent:error\n:HTTP_STATUS/400\n"
        b'data:{"code":"InvalidParameter","message":"parameter.enable_thinking must be set to '
        b'false for non-streaming calls","request_id":"cb57ead7-9455-4db0-9dfa-76c41cdd5a06"}\n\n'
    )


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
def test_error_event_decodes_back(status: int) -> None:
    error = ErrorInfo(status, "SomeCode", "message with 中文", "r-1")
    assert list(decode_stream([encode_error_event(error)])) == [StreamError(error)]


def test_request_error_carries_the_native_error() -> None:
    exc = NativeRequestError("BadRequest.EmptyModel", 'Required parameter "model" missing.')
    assert isinstance(exc, ValueError)
    assert exc.error == ErrorInfo(
        400, "BadRequest.EmptyModel", 'Required parameter "model" missing.'
    )
    assert encode_error(exc.error)[1]["code"] == "BadRequest.EmptyModel"
