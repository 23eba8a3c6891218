"""llama.cpp's error envelope on the compatible wire: an integer ``code`` (the HTTP status), the
name in ``type``, no id. The bodies are ``llama-server``'s, as measured."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qwenkit._core.retries import is_retryable
from qwenkit._exceptions import APIStatusError, BadRequestError, ServerError, error_from_info
from qwenkit.types import ErrorInfo, StreamError
from qwenkit.wire import compat
from qwenkit.wire.errors import decode_compat_error, encode_llama_cpp_error
from qwenkit.wire.sse import SSEDecoder

CONTEXT = {
    "error": {
        "code": 400,
        "message": "request (5010 tokens) exceeds the available context size (4096 tokens), "
        "try increasing it",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 5010,
        "n_ctx": 4096,
    }
}


def envelope(status: int, message: str, kind: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "type": kind}}


LLAMA_ERRORS = [
    (400, CONTEXT, "exceed_context_size_error", BadRequestError, False),
    (
        400,
        envelope(400, "Expected 'messages' to be an array", "invalid_request_error"),
        "invalid_request_error",
        BadRequestError,
        False,
    ),
    (
        500,
        envelope(
            500,
            "The model produced output that does not match the expected peg-native format",
            "server_error",
        ),
        "server_error",
        ServerError,
        True,
    ),
    (
        503,
        envelope(503, "Loading model", "unavailable_error"),
        "unavailable_error",
        ServerError,
        True,
    ),
]


@pytest.mark.parametrize(("status", "body", "code", "cls", "retryable"), LLAMA_ERRORS)
def test_an_integer_code_gives_way_to_the_type(
    status: int, body: dict[str, Any], code: str, cls: type[APIStatusError], retryable: bool
) -> None:
    info = compat.decode_error(status, json.dumps(body).encode())
    assert (info.status, info.code, info.message) == (status, code, body["error"]["message"])
    assert info.request_id is None
    assert info.compat_code is None
    assert info.compat_type == code
    error = error_from_info(info, body=body)
    assert type(error) is cls
    assert (error.code, error.request_id, error.retryable) == (code, None, retryable)
    assert is_retryable(error) is retryable


def test_a_string_code_is_kept_and_a_missing_one_falls_back_to_the_type() -> None:
    dashscope = {"error": {"code": "invalid_parameter_error", "type": "invalid_request_error"}}
    assert decode_compat_error(400, dashscope).code == "InvalidParameter"
    assert decode_compat_error(400, {"error": {"code": "400", "message": "m"}}).code == "400"
    no_code = {"error": {"message": "m", "type": "invalid_request_error"}}
    assert decode_compat_error(400, no_code).code == "invalid_request_error"
    neither = {"error": {"code": 503, "message": "m"}}
    assert decode_compat_error(503, neither).code == "ModelUnavailable"  # the status's usual code


def test_an_error_event_with_an_integer_code_takes_it_as_its_status() -> None:
    decoder = SSEDecoder()
    data = json.dumps(envelope(500, "boom", "server_error"))
    (event,) = decoder.feed(f"data: {data}\n\n".encode())
    (error,) = compat.StreamDecoder().feed(event)
    assert isinstance(error, StreamError)
    assert (error.error.status, error.error.code, error.error.message) == (
        500,
        "server_error",
        "boom",
    )


def test_encode_names_the_error_by_its_status_unless_it_has_a_llama_cpp_name() -> None:
    bad = ErrorInfo(400, "InvalidParameter", "Range of n should be [1, 4]", "rid-1")
    assert encode_llama_cpp_error(bad) == envelope(
        400, "Range of n should be [1, 4]", "invalid_request_error"
    )
    loading = ErrorInfo(503, "ModelUnavailable", "Loading model")
    assert encode_llama_cpp_error(loading) == envelope(503, "Loading model", "unavailable_error")
    context = ErrorInfo(400, "exceed_context_size_error", "too long")
    assert encode_llama_cpp_error(context)["error"]["type"] == "exceed_context_size_error"
    throttled = ErrorInfo(429, "Throttling.RateQuota", "slow down")
    assert encode_llama_cpp_error(throttled)["error"]["type"] == "limit_requests"
    decoded = compat.decode_error(503, json.dumps(encode_llama_cpp_error(loading)))
    assert (decoded.code, decoded.request_id) == ("unavailable_error", None)
