"""The API error tree: one class per kind of failure, chosen by DashScope code, then by status."""

from __future__ import annotations

import pickle

import pytest

from qwenkit._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    NotFoundError,
    PermissionDeniedError,
    QwenError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
    UsageError,
    ValidationError,
    error_from_info,
)
from qwenkit.types import AssistantMessage, ChatResponse, Choice, ErrorInfo
from qwenkit.wire.errors import ERROR_CODES, decode_error, make_error

# Every row of the wire table, with the class a user catches and whether a retry may help.
EXPECTED: dict[str, tuple[type[APIStatusError], bool]] = {
    "InvalidParameter": (BadRequestError, False),
    "DataInspectionFailed": (ContentFilterError, False),
    "InvalidApiKey": (AuthenticationError, False),
    "Arrearage": (BadRequestError, False),
    "Throttling": (RateLimitError, True),
    "Throttling.RateQuota": (RateLimitError, True),
    "Throttling.AllocationQuota": (RateLimitError, True),
    "Throttling.BurstRate": (RateLimitError, True),
    "InvalidParameter.NotSupportEnableThinking": (BadRequestError, False),
    "UnsupportedOperation": (BadRequestError, False),
    "AllocationQuota.FreeTierOnly": (PermissionDeniedError, False),
    "AccessDenied": (PermissionDeniedError, False),
    "AccessDenied.Unpurchased": (PermissionDeniedError, False),
    "ModelNotFound": (NotFoundError, False),
    "WorkSpaceNotFound": (NotFoundError, False),
    "RequestTimeOut": (APIStatusError, True),
    "BadRequest.TooLarge": (BadRequestError, False),
    "InternalError": (ServerError, True),
    "InternalError.Algo": (ServerError, True),
    "SystemError": (ServerError, True),
    "ModelUnavailable": (ServerError, True),
}


def test_the_expected_table_covers_every_wire_code() -> None:
    assert set(EXPECTED) == set(ERROR_CODES)


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_every_wire_code_maps_to_its_class(code: str) -> None:
    cls, retryable = EXPECTED[code]
    info = make_error(code, "msg", request_id="rid")
    err = error_from_info(info, body={"code": code})
    assert type(err) is cls
    assert err.retryable is retryable
    assert (err.status, err.code, err.message, err.request_id) == (
        ERROR_CODES[code].status,
        code,
        "msg",
        "rid",
    )
    assert err.error is info
    assert err.body == {"code": code}


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, BadRequestError, False),
        (401, AuthenticationError, False),
        (403, PermissionDeniedError, False),
        (404, NotFoundError, False),
        (408, APIStatusError, True),
        (409, APIStatusError, False),
        (413, BadRequestError, False),
        (422, APIStatusError, False),
        (429, RateLimitError, True),
        (500, ServerError, True),
        (501, ServerError, False),
        (502, ServerError, True),
        (503, ServerError, True),
        (504, ServerError, True),
        (505, ServerError, False),
        (599, ServerError, False),
    ],
)
def test_unknown_codes_map_by_status(status: int, cls: type[APIError], retryable: bool) -> None:
    err = error_from_info(ErrorInfo(status=status, code="SomethingNew", message="m"))
    assert type(err) is cls
    assert err.retryable is retryable
    assert err.status == status


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        ("InternalError.Algo.DataInspectionFailed", 400, ContentFilterError),
        ("DataInspectionFailed.Output", 400, ContentFilterError),
        ("Throttling.Whatever", 429, RateLimitError),
        ("Endpoint.AccessDenied", 403, PermissionDeniedError),
        ("BadRequest.EmptyInput", 400, BadRequestError),
        ("InternalError.Algo.InvalidParameter", 400, BadRequestError),
        ("InvalidParameter", 500, BadRequestError),
        # the code wins over an unusual status
        ("InvalidApiKey", 400, AuthenticationError),
        ("ModelNotFound", 400, NotFoundError),
        ("DataInspectionFailed", 500, ContentFilterError),
    ],
)
def test_code_decides_before_status(code: str, status: int, cls: type[APIError]) -> None:
    err = error_from_info(ErrorInfo(status=status, code=code, message="m"))
    assert type(err) is cls
    assert err.retryable is (cls is RateLimitError)


@pytest.mark.parametrize("code", ["PostpaidBillOverdue", "PrepaidBillOverdue", "Arrearage"])
def test_billing_codes_are_never_retryable_even_with_a_transient_status(code: str) -> None:
    for status in (429, 500, 503):
        err = error_from_info(ErrorInfo(status=status, code=code, message="m"))
        assert err.retryable is False, (code, status)


def test_content_filter_is_still_a_bad_request() -> None:
    body = {
        "code": "DataInspectionFailed",
        "message": "Input data may contain inappropriate content.",
    }
    with pytest.raises(BadRequestError) as caught:
        raise error_from_info(decode_error(400, body), body=body)
    assert isinstance(caught.value, ContentFilterError)
    assert caught.value.body is body


def test_compat_envelope_decodes_to_the_same_class() -> None:
    body = {
        "error": {
            "message": "You exceeded your current quota",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        },
        "request_id": "abc",
    }
    err = error_from_info(decode_error(429, body))
    assert isinstance(err, RateLimitError)
    assert err.code == "Throttling.AllocationQuota"
    assert err.retryable


def test_str_is_one_line_with_status_code_message_and_request_id() -> None:
    err = error_from_info(
        ErrorInfo(429, "Throttling.RateQuota", "Requests rate limit exceeded.", "r1")
    )
    assert str(err) == "429 Throttling.RateQuota: Requests rate limit exceeded. (request_id r1)"
    assert str(err) == str(err.error)
    assert str(APIConnectionError()) == "Connection error."
    assert str(ServerError("boom")) == "500: boom"
    assert str(APITimeoutError(request_id="r2")) == "Request timed out. (request_id r2)"


def test_defaults_of_hand_made_errors() -> None:
    assert RateLimitError("slow down").status == 429
    assert RateLimitError("slow down").code == "Throttling"
    assert ContentFilterError("no").code == "DataInspectionFailed"
    assert ContentFilterError("no").status == 400
    assert NotFoundError("x", status=410).status == 410
    assert APIStatusError("x").status is None
    assert APIConnectionError().headers == {}
    assert APIConnectionError().attempts == ()


def test_hierarchy() -> None:
    for cls in (APIStatusError, APIConnectionError, StreamInterruptedError):
        assert issubclass(cls, APIError)
    assert issubclass(APIError, QwenError)
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(ContentFilterError, BadRequestError)
    assert not issubclass(APIError, UsageError)
    assert issubclass(ValidationError, UsageError)
    assert issubclass(ValidationError, ValueError)


def test_connection_errors_are_retryable_and_interrupted_streams_are_not() -> None:
    assert APIConnectionError().retryable
    assert APITimeoutError().retryable
    assert not StreamInterruptedError("reset", status=200).retryable


def test_stream_interrupted_error_carries_the_partial_response() -> None:
    partial = ChatResponse(
        id="c1", model="qwen-plus", choices=[Choice(message=AssistantMessage(content="Hel"))]
    )
    cause = APITimeoutError()

    def relay() -> None:
        try:
            raise cause
        except APITimeoutError as exc:
            raise StreamInterruptedError("stream stopped", partial=partial, request_id="r") from exc

    with pytest.raises(StreamInterruptedError) as caught:
        relay()
    err = caught.value
    assert err.partial is not None
    assert err.partial.content == "Hel"
    assert err.__cause__ is cause
    assert str(err) == "stream stopped (request_id r)"


def test_validation_error_names_the_parameter() -> None:
    err = ValidationError("tool message answers no call", param="messages[2].tool_call_id")
    assert err.param == "messages[2].tool_call_id"
    assert str(err) == "tool message answers no call"


@pytest.mark.parametrize(
    "err",
    [
        error_from_info(ErrorInfo(429, "Throttling", "m", "r"), body={"a": 1}, headers={"x": "y"}),
        ContentFilterError("no"),
        APIConnectionError(),
        APITimeoutError("late", request_id="r"),
        StreamInterruptedError("cut", status=500, code="InternalError"),
        ValidationError("bad", param="p"),
    ],
)
def test_errors_pickle(err: QwenError) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert str(back) == str(err)
    assert vars(back) == vars(err)
