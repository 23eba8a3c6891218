"""Native request bodies and headers, multimodal parts, and compat-to-native translation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from qwenkit.types import (
    ChatRequest,
    ImageURLPart,
    InputAudioPart,
    OtherPart,
    TextPart,
    UserMessage,
    VideoFramesPart,
    VideoURLPart,
)
from qwenkit.wire.native import (
    NativeRequestError,
    decode_request,
    encode_request,
    request_headers,
)

BODY: dict[str, Any] = {  # §3.1, verbatim
    "model": "qwen-plus",
    "input": {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Who are you?"},
        ]
    },
    "parameters": {
        "result_format": "message",
        "incremental_output": True,
        "enable_thinking": False,
    },
}


def test_reference_body_decodes() -> None:
    decoded = decode_request(BODY)
    assert (decoded.result_format, decoded.incremental_output) == ("message", True)
    assert (decoded.stream, decoded.async_task) == (False, False)
    request = decoded.request
    assert request.model == "qwen-plus"
    assert request.enable_thinking is False
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[1].text == "Who are you?"
    assert request.stream is None


def test_reference_body_round_trips() -> None:
    decoded = decode_request(BODY)
    assert encode_request(decoded.request) == BODY


def test_absent_transport_parameters_are_none() -> None:
    decoded = decode_request({"model": "qwen-turbo", "input": {"prompt": "hi"}})
    assert (decoded.result_format, decoded.incremental_output) == (None, None)


@pytest.mark.parametrize(
    ("headers", "body_extra", "stream"),
    [
        ({"X-DashScope-SSE": "enable"}, {}, True),
        ({"x-dashscope-sse": "Enable"}, {}, True),
        ({"Accept": "text/event-stream"}, {}, True),
        ({"ACCEPT": "text/event-stream; charset=utf-8"}, {}, True),
        ({"Accept": "application/json"}, {}, False),
        ({"X-DashScope-SSE": "disable"}, {}, False),
        (None, {"stream": True}, True),  # parameters.stream: unconfirmed, accepted
        (None, {}, False),
    ],
)
def test_streaming_is_keyed_on_headers(
    headers: dict[str, str] | None, body_extra: dict[str, Any], stream: bool
) -> None:
    body = copy.deepcopy(BODY)
    body["parameters"].update(body_extra)
    decoded = decode_request(body, headers)
    assert decoded.stream is stream
    assert decoded.request.stream is (True if stream else None)
    assert "stream" not in decoded.request.extras
    assert "stream" not in encode_request(decoded.request)["parameters"]


def test_async_header() -> None:
    assert decode_request(BODY, {"X-DashScope-Async": "enable"}).async_task


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            {"input": {"prompt": "hi"}},
            "BadRequest.EmptyModel",
            'Required parameter "model" missing from request.',
        ),
        (
            {"model": "", "input": {"prompt": "hi"}},
            "BadRequest.EmptyModel",
            'Required parameter "model" missing from request.',
        ),
        (
            {"model": "qwen-plus", "parameters": {}},
            "BadRequest.EmptyInput",
            "Required input parameter missing from request.",
        ),
        (
            {"model": "qwen-plus", "input": {"text": "?"}},
            "BadRequest.EmptyInput",
            "Required input parameter missing from request.",
        ),
    ],
)
def test_missing_model_or_input(body: dict[str, Any], code: str, message: str) -> None:
    with pytest.raises(NativeRequestError) as info:
        decode_request(body)
    assert (info.value.code, info.value.message) == (code, message)
    assert (info.value.error.status, info.value.error.code) == (400, code)


def test_bad_messages_and_transport_values_are_invalid_parameter() -> None:
    for body in (
        {"model": "m", "input": {"messages": [{"role": "robot", "content": "x"}]}},
        {"model": "m", "input": {"prompt": "x"}, "parameters": {"result_format": "json"}},
        {"model": "m", "input": {"prompt": "x"}, "parameters": {"incremental_output": "yes"}},
    ):
        with pytest.raises(NativeRequestError) as info:
            decode_request(body)
        assert info.value.code == "InvalidParameter"


def test_unknown_fields_are_preserved() -> None:
    body = copy.deepcopy(BODY)
    body["parameters"]["translation_options"] = {"source_lang": "auto", "target_lang": "English"}
    body["parameters"]["enable_code_interpreter"] = True
    body["resources"] = [{"resource_id": "r", "resource_type": "x"}]
    body["input"]["customized_model_id"] = "m-1"
    body["input"]["messages"][1]["future"] = 1
    decoded = decode_request(body)
    assert decoded.request.extras == {
        "translation_options": {"source_lang": "auto", "target_lang": "English"},
        "enable_code_interpreter": True,
        "resources": [{"resource_id": "r", "resource_type": "x"}],
        "native_input": {"customized_model_id": "m-1"},
    }
    assert encode_request(decoded.request) == body


def test_legacy_prompt_and_history() -> None:
    body = {
        "model": "qwen-turbo",
        "input": {"prompt": "And now?", "history": [{"user": "Hi", "bot": "Hello!"}]},
    }
    request = decode_request(body).request
    assert [(m.role, m.text) for m in request.messages] == [
        ("user", "Hi"),
        ("assistant", "Hello!"),
        ("user", "And now?"),
    ]


MULTIMODAL: list[dict[str, Any]] = [
    {"image": "https://x/cat.png", "max_pixels": 1003520},
    {"video": "https://x/v.mp4", "fps": 2},
    {"video": ["https://x/1.jpg", "https://x/2.jpg"]},
    {"audio": "https://x/a.mp3"},
    {"ocr": {"task": "text_recognition"}},
    {"text": "Describe all of these."},
]


def test_multimodal_parts_decode() -> None:
    body = {
        "model": "qwen3-vl-plus",
        "input": {"messages": [{"role": "user", "content": MULTIMODAL}]},
    }
    [message] = decode_request(body).request.messages
    assert isinstance(message, UserMessage)
    assert isinstance(message.content, list)
    image, video, frames, audio, other, text = message.content
    assert isinstance(image, ImageURLPart)
    assert (image.image_url.url, image.extras) == ("https://x/cat.png", {"max_pixels": 1003520})
    assert isinstance(video, VideoURLPart)
    assert (video.video_url.url, video.extras) == ("https://x/v.mp4", {"fps": 2})
    assert isinstance(frames, VideoFramesPart)
    assert frames.video == ["https://x/1.jpg", "https://x/2.jpg"]
    assert isinstance(audio, InputAudioPart)
    assert audio.input_audio.data == "https://x/a.mp3"
    assert isinstance(other, OtherPart)
    assert other.extras == {"ocr": {"task": "text_recognition"}}
    assert text == TextPart(text="Describe all of these.")


def test_multimodal_parts_round_trip() -> None:
    body = {
        "model": "qwen3-vl-plus",
        "input": {"messages": [{"role": "user", "content": MULTIMODAL}]},
        "parameters": {"result_format": "message", "incremental_output": True},
    }
    request = decode_request(copy.deepcopy(body)).request
    assert encode_request(request, multimodal=True) == body


def test_canonical_parts_encode_to_native_shape() -> None:
    request = ChatRequest.model_validate(
        {
            "model": "qwen3-vl-plus",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://x/a.png", "detail": "high"},
                        },
                        {
                            "type": "input_audio",
                            "input_audio": {"data": "https://x/a.wav", "format": "wav"},
                        },
                        {"type": "video_url", "video_url": {"url": "https://x/v.mp4"}},
                        {"type": "text", "text": "What?"},
                    ],
                }
            ],
        }
    )
    content = encode_request(request, multimodal=True)["input"]["messages"][0]["content"]
    assert content == [
        {"image": "https://x/a.png"},
        {"audio": "https://x/a.wav"},
        {"video": "https://x/v.mp4"},
        {"text": "What?"},
    ]


def _content(parts: list[dict[str, Any]]) -> Any:
    request = ChatRequest.model_validate(
        {"model": "qwen-plus", "messages": [{"role": "user", "content": parts}]}
    )
    return encode_request(request)["input"]["messages"][0]["content"]


def test_text_endpoint_joins_text_parts() -> None:
    assert _content([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "ab"


def test_text_endpoint_keeps_cache_control_parts() -> None:
    parts: list[dict[str, Any]] = [
        {"type": "text", "text": "long document", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "question"},
    ]
    assert _content(parts) == parts


def test_text_endpoint_never_drops_media() -> None:
    parts: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": "u"}},
        {"type": "text", "text": "t"},
    ]
    assert _content(parts) == [{"image": "u"}, {"text": "t"}]


def test_encode_options() -> None:
    request = decode_request(BODY).request
    body = encode_request(request, result_format="text", incremental_output=None)
    assert body["parameters"] == {"result_format": "text", "enable_thinking": False}


COMPAT_BODY: dict[str, Any] = {
    "model": "qwen3-max",
    "messages": [
        {"role": "user", "content": "Weather in Hangzhou?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"杭州"}'},
                }
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
    ],
    "stream": True,
    "stream_options": {"include_usage": True},
    "enable_thinking": True,
    "thinking_budget": 512,
    "enable_search": True,
    "search_options": {"forced_search": True},
    "top_k": 20,
    "repetition_penalty": 1.05,
    "max_tokens": 800,
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "x_vendor_flag": "kept",
}


def _check_translation(body: dict[str, Any]) -> None:
    assert set(body) == {"model", "input", "parameters"}
    params = body["parameters"]
    for key in (
        "enable_thinking",
        "thinking_budget",
        "enable_search",
        "search_options",
        "top_k",
        "repetition_penalty",
        "max_tokens",
        "tools",
        "tool_choice",
        "x_vendor_flag",
    ):
        assert params[key] == COMPAT_BODY[key], key
    assert "stream" not in params
    assert "stream_options" not in params
    assert body["input"]["messages"] == COMPAT_BODY["messages"]


def test_compat_to_native_through_the_canonical_request() -> None:
    _check_translation(encode_request(ChatRequest.model_validate(COMPAT_BODY)))


def test_compat_to_native_with_the_compat_codec() -> None:
    compat: Any = pytest.importorskip("qwenkit.wire.compat")
    decoded = compat.decode_request(copy.deepcopy(COMPAT_BODY))
    _check_translation(encode_request(getattr(decoded, "request", decoded)))


def test_native_to_native_through_headers() -> None:
    decoded = decode_request(BODY, request_headers(stream=True))
    assert decoded.stream
    assert not decode_request(BODY, request_headers(stream=False)).stream


def test_request_headers() -> None:
    assert request_headers(stream=True) == {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        "X-DashScope-SSE": "enable",
        "X-Accel-Buffering": "no",
    }
    assert request_headers(stream=False) == {
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    assert request_headers(stream=False, async_task=True)["X-DashScope-Async"] == "enable"
    with pytest.raises(ValueError, match="asynchronous"):
        request_headers(stream=True, async_task=True)
