"""Emulator request validation: every rule in both wire forms, the rule order, body checks."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from qwenkit.catalog import get_model
from qwenkit.emulator.config import EmulatorConfig
from qwenkit.emulator.messages import TASK_STATUS_UNKNOWN, Wire
from qwenkit.emulator.validation import (
    async_not_supported_error,
    auth_error,
    check_body,
    effective_thinking,
    task_not_cancellable_error,
    validate_request,
)
from qwenkit.types import ChatRequest, ErrorInfo
from qwenkit.wire.errors import encode_compat_error, encode_native_error

PREFIX = "<400> InternalError.Algo.InvalidParameter: "
PARAM = ("invalid_parameter_error", "invalid_request_error")
USER = {"role": "user", "content": "hello"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
WIRES: tuple[Wire, ...] = ("compat", "native")


def request(**fields: Any) -> ChatRequest:
    body: dict[str, Any] = {"model": "qwen-plus", "messages": [USER], **fields}
    return ChatRequest.model_validate(body)


def check(
    req: ChatRequest,
    *,
    wire: Wire = "native",
    stream: bool = False,
    model: str | None = None,
    prompt_tokens: int | None = 10,
    config: EmulatorConfig | None = None,
) -> ErrorInfo | None:
    name = model or req.model
    try:
        profile = get_model(name)
    except KeyError:
        profile = None
    return validate_request(
        req,
        wire=wire,
        stream=stream,
        profile=profile,
        config=config or EmulatorConfig(),
        prompt_tokens=prompt_tokens,
    )


# (id, request fields, check() keywords, expected message)
RULES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("empty-messages", {"messages": []}, {}, "[] is too short"),
    (
        "tool-without-tool-calls",
        {"messages": [USER, {"role": "tool", "content": "x", "tool_call_id": "c"}]},
        {},
        PREFIX
        + 'messages with role "tool" must be a response to a preceeding message with "tool_calls".',
    ),
    (
        "tool-after-plain-assistant",
        {
            "messages": [
                USER,
                {"role": "assistant", "content": "hi"},
                {"role": "tool", "content": "x", "tool_call_id": "c"},
            ]
        },
        {},
        PREFIX
        + 'messages with role "tool" must be a response to a preceeding message with "tool_calls".',
    ),
    (
        "arguments-not-json",
        {
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{'a': 1"}}],
                },
                {"role": "tool", "content": "x", "tool_call_id": "call_1"},
            ]
        },
        {},
        PREFIX + 'The "function.arguments" parameter of the code model must be in JSON format.',
    ),
    ("n-too-big", {"n": 5}, {}, PREFIX + "Range of n should be [1, 4]"),
    ("n-zero", {"n": 0}, {}, PREFIX + "Range of n should be [1, 4]"),
    (
        "max-tokens-over",
        {"max_tokens": 32_769},
        {},
        PREFIX + "Range of max_tokens should be [1, 32768]",
    ),
    ("max-tokens-zero", {"max_tokens": 0}, {}, PREFIX + "Range of max_tokens should be [1, 32768]"),
    (
        "thinking-non-stream",
        {"enable_thinking": True},
        {},
        "parameter.enable_thinking must be set to false for non-streaming calls",
    ),
    (
        "thinking-default-on-non-stream",
        {"model": "qwen3-32b"},
        {},
        "parameter.enable_thinking must be set to false for non-streaming calls",
    ),
    (
        "thinking-only-rejects-false",
        {"model": "qwq-plus", "enable_thinking": False},
        {"stream": True},
        PREFIX + "The value of the enable_thinking parameter is restricted to True.",
    ),
    (
        "stream-only-model",
        {"model": "qwq-plus"},
        {},
        "This model only support stream mode, please enable the stream parameter to access the "
        "model. ",
    ),
    (
        "open-source-qwen3-non-stream",
        {"model": "qwen3-32b", "enable_thinking": False},
        {},
        "current user api does not support http call",
    ),
    (
        "json-keyword",
        {"response_format": {"type": "json_object"}},
        {},
        PREFIX
        + "'messages' must contain the word 'json' in some form, to use 'response_format' of "
        "type 'json_object'.",
    ),
    (
        "json-with-thinking",
        {
            "response_format": {"type": "json_object"},
            "enable_thinking": True,
            "messages": [{"role": "user", "content": "Answer in JSON."}],
        },
        {"stream": True},
        PREFIX + "Json mode response is not supported when enable_thinking is true",
    ),
    (
        "input-too-long",
        {"model": "qwen-max"},
        {"prompt_tokens": 30_721},
        PREFIX + "Range of input length should be [1, 30720]",
    ),
    (
        "input-too-long-thinking-limit",
        {"model": "qwen-turbo", "enable_thinking": True},
        {"prompt_tokens": 98_305, "stream": True},
        PREFIX + "Range of input length should be [1, 98304]",
    ),
]


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize(
    ("fields", "kwargs", "message"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_each_rule_in_both_wires(
    wire: Wire, fields: dict[str, Any], kwargs: dict[str, Any], message: str
) -> None:
    error = check(request(**fields), wire=wire, **kwargs)
    assert error is not None
    assert (error.status, error.code, error.message) == (400, "InvalidParameter", message)
    assert (error.compat_code, error.compat_type) == PARAM


@pytest.mark.parametrize("wire", WIRES)
def test_valid_requests_pass(wire: Wire) -> None:
    history = [
        {"role": "system", "content": "Reply in json."},
        USER,
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "content": "1", "tool_call_id": "call_1"},
        {"role": "tool", "content": "2", "tool_call_id": "call_1"},
    ]
    ok = request(messages=history, n=4, max_tokens=32_768, response_format={"type": "json_object"})
    assert check(ok, wire=wire, prompt_tokens=997_952) is None
    assert check(request(enable_thinking=True), wire=wire, stream=True) is None
    assert check(request(model="qwq-plus"), wire=wire, stream=True) is None
    assert check(request(model="qwen3-32b", enable_thinking=False), stream=True) is None
    empty_args = {**CALL, "function": {"name": "f", "arguments": ""}}
    no_args = [USER, {"role": "assistant", "tool_calls": [empty_args]}]
    assert check(request(messages=no_args), wire=wire) is None
    assert check(request(model="qwen-max", enable_thinking=True), wire=wire) is None  # ignored


def test_compat_envelope_matches_the_captured_body() -> None:
    error = check(request(response_format={"type": "json_object"}), wire="compat")
    assert error is not None
    rid = "07df985b-2ff2-4f7c-a6e7-f022f075133b"
    captured = {
        "error": {
            "code": "invalid_parameter_error",
            "param": None,
            "message": PREFIX + "'messages' must contain the word 'json' in some form, to use "
            "'response_format' of type 'json_object'.",
            "type": "invalid_request_error",
        },
        "id": f"chatcmpl-{rid}",
        "request_id": rid,
    }
    assert encode_compat_error(dataclasses.replace(error, request_id=rid)) == captured


def test_native_envelope_matches_the_captured_body() -> None:
    error = check(request(enable_thinking=True), wire="native")
    assert error is not None
    rid = "cb57ead7-9455-4db0-9dfa-76c41cdd5a06"
    assert encode_native_error(dataclasses.replace(error, request_id=rid)) == {
        "code": "InvalidParameter",
        "message": "parameter.enable_thinking must be set to false for non-streaming calls",
        "request_id": rid,
    }


def test_unknown_model_per_wire() -> None:
    compat = check(request(model="qwen9"), wire="compat")
    native = check(request(model="qwen9"), wire="native")
    assert compat == ErrorInfo(
        404,
        "ModelNotFound",
        "The model `qwen9` does not exist or you do not have access to it.",
        compat_code="model_not_found",
        compat_type="invalid_request_error",
    )
    assert native is not None
    assert (native.status, native.code, native.message) == (
        404,
        "ModelNotFound",
        "Model can not be found.",
    )


@pytest.mark.parametrize("wire", WIRES)
def test_thinking_flag_on_a_model_without_thinking_when_strict(wire: Wire) -> None:
    config = EmulatorConfig()
    config.quirks.thinking_flag_on_non_thinking_model = "error"
    error = check(request(model="qwen-max", enable_thinking=True), wire=wire, config=config)
    assert error is not None
    assert error.code == "InvalidParameter.NotSupportEnableThinking"
    assert error.message == "The model qwen-max does not support enable_thinking."
    assert (error.status, error.compat_code, error.compat_type) == (400, *PARAM)
    assert check(request(model="qwen-max", enable_thinking=False), config=config) is None


def test_json_schema_keyword_rule_follows_the_quirk() -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert check(request(response_format=schema)) is None
    config = EmulatorConfig()
    config.quirks.json_schema_requires_keyword = True
    error = check(request(response_format=schema), config=config)
    assert error is not None
    assert "'messages' must contain the word 'json'" in error.message


def test_json_keyword_is_case_insensitive_and_read_in_system_or_user_only() -> None:
    fmt = {"type": "json_object"}
    assert (
        check(request(response_format=fmt, messages=[{"role": "user", "content": "Give JSON"}]))
        is None
    )
    parts = [{"type": "text", "text": "as Json"}]
    assert (
        check(request(response_format=fmt, messages=[{"role": "system", "content": parts}, USER]))
        is None
    )
    in_assistant = [USER, {"role": "assistant", "content": "json"}, USER]
    assert check(request(response_format=fmt, messages=in_assistant)) is not None


def first_message(**fields: Any) -> str:
    kwargs = fields.pop("kwargs", {})
    error = check(request(**fields), **kwargs)
    assert error is not None
    return error.message.removeprefix(PREFIX)


def test_rule_order() -> None:
    tool_first = [USER, {"role": "tool", "content": "x", "tool_call_id": "c"}]
    bad_args = [
        USER,
        {
            "role": "assistant",
            "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{"}}],
        },
    ]
    assert first_message(model="qwen9", messages=[]) == "Model can not be found."
    assert first_message(messages=[], n=9) == "[] is too short"
    assert first_message(messages=tool_first + bad_args[1:], n=9).startswith("messages with role")
    assert first_message(messages=bad_args, n=9).startswith('The "function.arguments"')
    assert first_message(n=9, max_tokens=10**6) == "Range of n should be [1, 4]"
    assert first_message(max_tokens=10**6, enable_thinking=True).startswith("Range of max_tokens")
    json_fmt = {"type": "json_object"}
    assert first_message(enable_thinking=True, response_format=json_fmt).startswith("parameter.")
    on_stream = {"stream": True, "prompt_tokens": 10**7}
    assert first_message(
        enable_thinking=True, response_format=json_fmt, kwargs=on_stream
    ).startswith("'messages' must contain")
    json_user = [{"role": "user", "content": "json please"}]
    assert first_message(
        enable_thinking=True, response_format=json_fmt, messages=json_user, kwargs=on_stream
    ).startswith("Json mode")


THINKING_TABLE = [
    ("qwen-max", None, False),
    ("qwen-max", True, False),
    ("qwen-plus", None, False),
    ("qwen-plus", True, True),
    ("qwen-plus", False, False),
    ("qwen3.5-plus", None, True),
    ("qwen3.5-plus", False, False),
    ("qwen3-32b", None, True),
    ("qwq-plus", None, True),
    ("qwq-plus", False, True),
]


@pytest.mark.parametrize(("model", "flag", "expected"), THINKING_TABLE)
def test_effective_thinking(model: str, flag: bool | None, expected: bool) -> None:
    req = request(model=model) if flag is None else request(model=model, enable_thinking=flag)
    assert effective_thinking(req, get_model(model)) is expected


def test_effective_thinking_without_a_profile() -> None:
    assert effective_thinking(request(enable_thinking=True), None) is True
    assert effective_thinking(request(), None) is False


def test_check_body() -> None:
    body = {"model": "qwen-plus", "messages": [USER]}
    assert check_body(json.dumps(body).encode(), max_body_bytes=1024) == (body, None)
    too_large = ErrorInfo(
        413,
        "BadRequest.TooLarge",
        "Payload Too Large",
        None,
        "BadRequest.TooLarge",
        "invalid_request_error",
    )
    assert check_body(b"x" * 1025, max_body_bytes=1024) == (None, too_large)
    invalid = "Required body invalid, please check the request body format."
    for raw in (b'{"model": ', b"[1, 2]", b'"text"', b"\xff\xfe{}", b""):
        parsed, error = check_body(raw, max_body_bytes=1024)
        assert parsed is None
        assert error is not None
        assert (error.status, error.code, error.message) == (400, "InvalidParameter", invalid)
        assert (error.compat_code, error.compat_type) == PARAM


def test_auth_errors() -> None:
    compat = auth_error(wire="compat", reason="invalid")
    assert (compat.status, compat.code, compat.message) == (
        401,
        "InvalidApiKey",
        "Incorrect API key provided.",
    )
    assert (compat.compat_code, compat.compat_type) == ("invalid_api_key", "invalid_request_error")
    assert encode_compat_error(dataclasses.replace(compat, request_id="x")) == {
        "error": {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        },
        "request_id": "x",
    }
    native = auth_error(wire="native", reason="region")
    assert (native.status, native.code, native.message) == (
        401,
        "InvalidApiKey",
        "Invalid API-key provided.",
    )
    missing = auth_error(wire="native", reason="missing")
    assert (missing.status, missing.code, missing.message) == (
        401,
        "InvalidApiKey",
        "No API-key provided.",
    )


def test_task_errors() -> None:
    error = async_not_supported_error()
    assert (error.status, error.code) == (403, "AccessDenied")
    assert error.message == "current user api does not support asynchronous calls"
    assert error.request_id is None
    cancel = task_not_cancellable_error()
    assert (cancel.status, cancel.code) == (400, "UnsupportedOperation")
    assert (
        cancel.message
        == "Failed to cancel the task, please confirm if the task is in PENDING status."
    )
    assert TASK_STATUS_UNKNOWN == "UNKNOWN"
