"""The OpenAI-compatible route of the emulator, over HTTP in process (httpx ASGI transport)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.tokens import count_messages, get_tokenizer
from qwenkit.wire.sse import SSEDecoder

URL = "/compatible-mode/v1/chat/completions"
KEY = {"Authorization": "Bearer sk-test-compat"}
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Who are you?"},
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as c:
        yield c


def sse_data(body: bytes) -> list[str]:
    decoder = SSEDecoder()
    return [event.data for event in decoder.feed(body) + decoder.close()]


def chunks(body: bytes) -> list[dict[str, Any]]:
    data = sse_data(body)
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]


@pytest.mark.anyio
async def test_non_stream_answer_has_the_compat_shape_and_exact_usage(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(URL, json={"model": "qwen-plus", "messages": MESSAGES}, headers=KEY)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["id"] == "chatcmpl-" + r.headers["x-request-id"]
    assert body["model"] == "qwen-plus"
    assert body["system_fingerprint"] is None
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert content
    usage = body["usage"]
    assert usage["prompt_tokens"] == count_messages(MESSAGES, "qwen-plus").total == 23
    assert usage["completion_tokens"] == get_tokenizer("qwen").count(content)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}


@pytest.mark.anyio
async def test_same_request_same_answer_stream_or_not(client: httpx.AsyncClient) -> None:
    plain = await client.post(URL, json={"model": "qwen-plus", "messages": MESSAGES}, headers=KEY)
    again = await client.post(URL, json={"model": "qwen-plus", "messages": MESSAGES}, headers=KEY)
    content = plain.json()["choices"][0]["message"]["content"]
    assert again.json()["choices"][0]["message"]["content"] == content
    streamed = await client.post(
        URL, json={"model": "qwen-plus", "messages": MESSAGES, "stream": True}, headers=KEY
    )
    parts = [c["choices"][0]["delta"].get("content") or "" for c in chunks(streamed.content)]
    assert "".join(parts) == content


@pytest.mark.anyio
async def test_stream_framing_with_include_usage(client: httpx.AsyncClient) -> None:
    body = {
        "model": "qwen-plus",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    r = await client.post(URL, json=body, headers=KEY)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.content.startswith(b"data: {")  # a space after "data:" on this wire
    assert r.content.endswith(b"data: [DONE]\n\n")
    items = chunks(r.content)
    ids = {c["id"] for c in items}
    assert ids == {"chatcmpl-" + r.headers["x-request-id"]}
    first, finish, usage_chunk = items[0], items[-2], items[-1]
    assert first["choices"][0]["delta"] == {"content": "", "role": "assistant"}
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert finish["choices"][0]["delta"] == {"content": ""}
    assert all(c["usage"] is None for c in items[:-1])
    assert usage_chunk["choices"] == []
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in items[:-1])
    usage = usage_chunk["usage"]
    assert usage["completion_tokens"] == get_tokenizer("qwen").count(text)
    assert usage["prompt_tokens"] == 23
    # one token per chunk by default: every content chunk carries exactly one token
    content_chunks = [c for c in items[1:-2] if c["choices"][0]["delta"].get("content")]
    assert len(content_chunks) == usage["completion_tokens"]


@pytest.mark.anyio
async def test_stream_without_include_usage_has_no_usage_chunk(client: httpx.AsyncClient) -> None:
    body = {"model": "qwen-plus", "messages": MESSAGES, "stream": True}
    r = await client.post(URL, json=body, headers=KEY)
    items = chunks(r.content)
    assert items[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["usage"] is None for c in items)


@pytest.mark.anyio
async def test_chunk_tokens_groups_tokens_and_keeps_characters_whole() -> None:
    config = EmulatorConfig.model_validate({"pacing": {"chunk_tokens": 3}})
    transport = httpx.ASGITransport(create_app(config))
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
        messages = [{"role": "user", "content": "请用中文介绍一下杭州的天气 🌧️"}]
        body = {"model": "qwen-plus", "messages": messages, "stream": True}
        r = await c.post(URL, json=body, headers=KEY)
    items = chunks(r.content)
    pieces = [c["choices"][0]["delta"].get("content") for c in items[1:-1]]
    assert all(pieces)
    assert "\ufffd" not in "".join(pieces)
    tokenizer = get_tokenizer("qwen")
    assert all(tokenizer.count(p) <= 4 for p in pieces)  # 3 tokens, one more at a character cut
    assert sum(tokenizer.count(p) for p in pieces) >= tokenizer.count("".join(pieces)) - 1


@pytest.mark.anyio
async def test_thinking_stream_sends_reasoning_before_content(client: httpx.AsyncClient) -> None:
    body = {
        "model": "qwen-plus",
        "messages": MESSAGES,
        "stream": True,
        "enable_thinking": True,
        "stream_options": {"include_usage": True},
    }
    r = await client.post(URL, json=body, headers=KEY)
    assert r.status_code == 200
    items = chunks(r.content)
    assert items[0]["choices"][0]["delta"] == {
        "content": None,
        "role": "assistant",
        "reasoning_content": "",
    }
    deltas = [c["choices"][0]["delta"] for c in items[1:-2]]
    kinds = ["reasoning" if d.get("reasoning_content") else "content" for d in deltas]
    assert kinds[0] == "reasoning"
    assert kinds[-1] == "content"
    assert kinds == sorted(kinds, key=lambda k: k != "reasoning")  # no reasoning after content
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    usage = items[-1]["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == get_tokenizer("qwen").count(
        reasoning
    )


@pytest.mark.anyio
async def test_validation_errors_use_the_compat_envelope(client: httpx.AsyncClient) -> None:
    thinking = {"model": "qwen-plus", "messages": MESSAGES, "enable_thinking": True}
    r = await client.post(URL, json=thinking, headers=KEY)
    assert r.status_code == 400
    body = r.json()
    rid = r.headers["x-request-id"]
    assert body == {
        "error": {
            "message": "parameter.enable_thinking must be set to false for non-streaming calls",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_parameter_error",
        },
        "id": "chatcmpl-" + rid,
        "request_id": rid,
    }
    r = await client.post(URL, json={"model": "qwen9", "messages": MESSAGES}, headers=KEY)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"
    r = await client.post(URL, content=b"{not json", headers=KEY)
    assert r.status_code == 400
    assert "body invalid" in r.json()["error"]["message"]
    r = await client.post(URL, json={"messages": MESSAGES}, headers=KEY)
    assert r.status_code == 400


@pytest.mark.anyio
async def test_a_rejected_stream_is_answered_with_json(client: httpx.AsyncClient) -> None:
    body = {"model": "qwen-plus", "messages": [], "stream": True}
    r = await client.post(URL, json=body, headers=KEY)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["message"] == "[] is too short"


@pytest.mark.anyio
async def test_models_list(client: httpx.AsyncClient) -> None:
    r = await client.get("/compatible-mode/v1/models", headers=KEY)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list"
    names = {m["id"] for m in body["data"]}
    assert {"qwen-plus", "qwen3-max", "qwen3-vl-plus"} <= names
    assert all(m["object"] == "model" for m in body["data"])


@pytest.mark.anyio
async def test_openai_sdk_smoke() -> None:
    import httpx2
    from openai import AsyncOpenAI

    transport = httpx2.ASGITransport(create_app())
    async with httpx2.AsyncClient(transport=transport) as http:
        client = AsyncOpenAI(
            api_key="sk-openai-smoke",
            base_url="http://emulator/compatible-mode/v1",
            http_client=http,
        )
        reply = await client.chat.completions.create(
            model="qwen-plus",
            messages=[{"role": "user", "content": "Who are you?"}],
        )
        assert reply.choices[0].message.content
        assert reply.usage is not None
        assert reply.usage.prompt_tokens == 12
        stream = await client.chat.completions.create(
            model="qwen-plus",
            messages=[{"role": "user", "content": "Who are you?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text = ""
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
        assert text == reply.choices[0].message.content
