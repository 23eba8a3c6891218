"""The native DashScope routes of the emulator: JSON answers, SSE framing, errors, URL rules."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.tokens import count_messages
from qwenkit.wire.sse import SSEDecoder

TEXT = "/api/v1/services/aigc/text-generation/generation"
MULTIMODAL = "/api/v1/services/aigc/multimodal-generation/generation"
KEY = {"Authorization": "Bearer sk-test-native"}
SSE = {**KEY, "X-DashScope-SSE": "enable"}
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Who are you?"},
]


def body(model: str = "qwen-plus", **parameters: Any) -> dict[str, Any]:
    return {"model": model, "input": {"messages": MESSAGES}, "parameters": parameters}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as c:
        yield c


def events(raw: bytes) -> list[Any]:
    decoder = SSEDecoder()
    return decoder.feed(raw) + decoder.close()


@pytest.mark.anyio
async def test_non_stream_message_format(client: httpx.AsyncClient) -> None:
    r = await client.post(TEXT, json=body(result_format="message"), headers=KEY)
    assert r.status_code == 200
    data = r.json()
    assert set(data) == {"output", "usage", "request_id"}  # no status_code/code/message wrapper
    assert data["request_id"] == r.headers["x-request-id"]
    choice = data["output"]["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    usage = data["usage"]
    assert usage["input_tokens"] == count_messages(MESSAGES, "qwen-plus").total
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert "prompt_tokens_details" not in usage  # a cache miss is not reported natively


@pytest.mark.anyio
async def test_non_stream_text_format_is_the_default_for_qwen_plus(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(TEXT, json=body(), headers=KEY)
    output = r.json()["output"]
    assert set(output) == {"text", "finish_reason"}
    assert output["finish_reason"] == "stop"


@pytest.mark.anyio
async def test_stream_framing_is_exact(client: httpx.AsyncClient) -> None:
    r = await client.post(
        TEXT, json=body(result_format="message", incremental_output=True), headers=SSE
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    raw = r.content.decode()
    blocks = raw.split("\n\n")
    assert blocks[-1] == ""  # the stream ends after a complete event, with no [DONE]
    for number, block in enumerate(blocks[:-1], start=1):
        lines = block.split("\n")
        assert lines[:3] == [f"id:{number}", "event:result", ":HTTP_STATUS/200"]
        assert lines[3].startswith("data:{")  # no space after the colon
    parsed = [json.loads(e.data) for e in events(r.content)]
    reasons = [p["output"]["choices"][0]["finish_reason"] for p in parsed]
    assert reasons[:-1] == ["null"] * (len(reasons) - 1)
    assert reasons[-1] == "stop"
    inputs = {p["usage"]["input_tokens"] for p in parsed}
    assert inputs == {count_messages(MESSAGES, "qwen-plus").total}
    outputs = [p["usage"]["output_tokens"] for p in parsed]
    assert outputs == sorted(outputs)
    assert outputs[0] == 1
    assert {p["request_id"] for p in parsed} == {r.headers["x-request-id"]}
    text = "".join(p["output"]["choices"][0]["message"]["content"] for p in parsed)
    plain = await client.post(TEXT, json=body(result_format="message"), headers=KEY)
    assert text == plain.json()["output"]["choices"][0]["message"]["content"]
    assert outputs[-1] == plain.json()["usage"]["output_tokens"]


@pytest.mark.anyio
async def test_stream_cumulative_when_incremental_output_is_false(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        TEXT, json=body(result_format="message", incremental_output=False), headers=SSE
    )
    texts = [
        json.loads(e.data)["output"]["choices"][0]["message"]["content"] for e in events(r.content)
    ]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    assert len(texts[-1]) > len(texts[0])


@pytest.mark.anyio
async def test_accept_header_also_streams(client: httpx.AsyncClient) -> None:
    headers = {**KEY, "Accept": "text/event-stream"}
    r = await client.post(TEXT, json=body(result_format="text"), headers=headers)
    first = json.loads(events(r.content)[0].data)
    assert set(first["output"]) == {"text", "finish_reason"}
    assert first["output"]["finish_reason"] == "null"


@pytest.mark.anyio
async def test_cumulative_quirk_ignores_incremental_output() -> None:
    config = EmulatorConfig.model_validate({"quirks": {"cumulative_native_stream": True}})
    transport = httpx.ASGITransport(create_app(config))
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
        r = await c.post(
            TEXT, json=body(result_format="text", incremental_output=True), headers=SSE
        )
    texts = [json.loads(e.data)["output"]["text"] for e in events(r.content)]
    assert texts[-1] == texts[-2]
    assert texts[-2].startswith(texts[0])


@pytest.mark.anyio
async def test_thinking_stream_reasoning_first_with_reasoning_tokens(
    client: httpx.AsyncClient,
) -> None:
    request = body(result_format="message", incremental_output=True, enable_thinking=True)
    r = await client.post(TEXT, json=request, headers=SSE)
    parsed = [json.loads(e.data) for e in events(r.content)]
    messages = [p["output"]["choices"][0]["message"] for p in parsed]
    assert messages[0]["reasoning_content"]
    assert messages[0]["content"] == ""
    seen_content = False
    for message in messages:
        if message["content"]:
            seen_content = True
        assert not (seen_content and message["reasoning_content"])
    assert seen_content
    last = parsed[-1]["usage"]
    assert last["output_tokens_details"]["reasoning_tokens"] > 0
    assert last["output_tokens"] > last["output_tokens_details"]["reasoning_tokens"]


@pytest.mark.anyio
async def test_streaming_request_rejected_up_front_gets_an_sse_error(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(TEXT, json=body(model="qwen9"), headers=SSE)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/event-stream")
    rid = r.headers["x-request-id"]
    assert r.text == (
        "id:1\nevent:error\n:HTTP_STATUS/404\n"
        f'data:{{"code":"ModelNotFound","message":"Model can not be found.","request_id":"{rid}"}}\n\n'
    )


@pytest.mark.anyio
async def test_non_stream_errors_are_native_json(client: httpx.AsyncClient) -> None:
    r = await client.post(TEXT, json=body(enable_thinking=True), headers=KEY)
    assert r.status_code == 400
    assert r.json() == {
        "code": "InvalidParameter",
        "message": "parameter.enable_thinking must be set to false for non-streaming calls",
        "request_id": r.headers["x-request-id"],
    }
    r = await client.post(TEXT, json={"input": {"messages": MESSAGES}}, headers=KEY)
    assert r.status_code == 400
    assert r.json()["code"] == "BadRequest.EmptyModel"
    r = await client.post(TEXT, json=body(model="qwq-plus"), headers=KEY)
    assert r.status_code == 400
    assert r.json()["message"].startswith("This model only support stream mode")


@pytest.mark.anyio
async def test_endpoint_mismatch_is_an_invalid_url(client: httpx.AsyncClient) -> None:
    r = await client.post(TEXT, json=body(model="qwen3-vl-plus"), headers=KEY)
    assert r.status_code == 400
    assert r.json()["code"] == "InvalidURL"
    assert r.json()["message"] == "Invalid URL provided in your request."
    r = await client.post(MULTIMODAL, json=body(model="qwen-plus"), headers=KEY)
    assert r.json()["code"] == "InvalidURL"


@pytest.mark.anyio
async def test_multimodal_endpoint_answers_with_content_parts(client: httpx.AsyncClient) -> None:
    request = {
        "model": "qwen3-vl-plus",
        "input": {"messages": [{"role": "user", "content": [{"text": "Describe a cat."}]}]},
        "parameters": {"result_format": "message"},
    }
    r = await client.post(MULTIMODAL, json=request, headers=KEY)
    assert r.status_code == 200, r.text
    content = r.json()["output"]["choices"][0]["message"]["content"]
    assert isinstance(content, list)
    assert set(content[0]) == {"text"}
    assert content[0]["text"]


@pytest.mark.anyio
async def test_unknown_paths_are_native_404s(client: httpx.AsyncClient) -> None:
    for method, path in (("GET", "/api/v1/nothing"), ("GET", TEXT), ("POST", "/v1/chat")):
        r = await client.request(method, path, headers=KEY)
        assert r.status_code == 404
        data = r.json()
        assert data["code"] == "InvalidURL"
        assert re.fullmatch(r"[0-9a-f-]{36}", data["request_id"])
