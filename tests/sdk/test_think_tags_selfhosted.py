"""Inline ``<think>`` reasoning on the self-hosted path, end to end through ``AsyncQwen``.

Over real HTTP: two emulators served by uvicorn, one plain and one with the ``think_in_content``
quirk (reasoning inline in ``content``, the tags streamed in 1-3 character pieces, as llama.cpp
with ``reasoning_format: none`` sends them). The same request gets the same answer from both, so
the ``openai-compatible`` flavour must give the quirky one exactly the result the plain one
gives; the ``dashscope`` flavour leaves the quirky content as it came.

The emulator refuses thinking on a non-streaming call (so does the service), so a thinking call
always streams upstream; the non-streaming body path (``response_events``) is covered with llama.cpp
and vLLM bodies served by an ``httpx.MockTransport``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emulator_server import serve

from qwenkit._core.transport import Flavour
from qwenkit._settings import Settings
from qwenkit.client._async import AsyncQwen
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.types import ContentDelta, ReasoningDelta

KEY = "sk-test-think-tags"
QUESTION = "Why is the sky blue?"
MODEL = "qwen3-32b"  # thinks by default; the emulator reads no chat_template_kwargs


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    quirky = EmulatorConfig(quirks={"think_in_content": True})
    with serve(create_app(EmulatorConfig())) as plain, serve(create_app(quirky)) as inline:
        yield plain, inline


def selfhosted(url: str) -> AsyncQwen:
    """The emulator wants a key; a self-hosted server may not (the key is optional there)."""
    return AsyncQwen(
        api_key=KEY, base_url=f"{url}/compatible-mode/v1", upstream="openai-compatible"
    )


@pytest.mark.anyio
@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "chat"])
async def test_inline_reasoning_comes_out_as_reasoning(
    servers: tuple[str, str], streamed: bool
) -> None:
    plain, inline = servers
    async with selfhosted(plain) as reference:
        expected = await reference.chat(QUESTION, model=MODEL, thinking=True)
    assert expected.reasoning
    assert expected.content
    async with selfhosted(inline) as client:
        if streamed:
            async with client.stream(QUESTION, model=MODEL, thinking=True) as stream:
                events = [event async for event in stream]
            result = stream.result()
            content = "".join(e.text for e in events if isinstance(e, ContentDelta))
            reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
            assert (reasoning, content) == (expected.reasoning, expected.content)
            kinds = [type(e) for e in events if isinstance(e, ContentDelta | ReasoningDelta)]
            assert kinds.index(ContentDelta) > len(kinds) - 1 - kinds[::-1].index(ReasoningDelta)
        else:
            result = await client.chat(QUESTION, model=MODEL, thinking=True)
    assert result.reasoning == expected.reasoning
    assert result.content == expected.content
    assert "<think" not in result.content
    assert "think>" not in result.content


@pytest.mark.anyio
async def test_the_quirk_really_sends_the_tags_in_pieces(servers: tuple[str, str]) -> None:
    _, inline = servers
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": True,
    }
    async with httpx.AsyncClient(base_url=inline) as http:
        response = await http.post(
            "/compatible-mode/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {KEY}"},
        )
        log = (await http.get("/_emulator/requests")).json()["requests"]
    deltas = [
        choice["delta"]
        for line in response.text.splitlines()
        if line.startswith("data: {")
        for choice in json.loads(line[len("data: ") :])["choices"]
    ]
    pieces = [d["content"] for d in deltas if d.get("content")]
    assert not any(d.get("reasoning_content") for d in deltas)
    assert pieces[:4] == ["<", "th", "ink", ">"]
    assert "".join(pieces).startswith("<think>\n")
    assert "\n</think>\n\n" in "".join(pieces)
    assert all(len(p) <= 3 for p in pieces if "<" in p or ">" in p)
    assert "think_in_content" in log[-1]["notes"]


@pytest.mark.anyio
async def test_the_dashscope_flavour_leaves_the_content_alone(servers: tuple[str, str]) -> None:
    plain, inline = servers
    async with AsyncQwen(api_key=KEY, base_url=f"{plain}/compatible-mode/v1") as reference:
        expected = await reference.chat(QUESTION, model=MODEL, thinking=True)
    async with AsyncQwen(api_key=KEY, base_url=f"{inline}/compatible-mode/v1") as client:
        result = await client.chat(QUESTION, model=MODEL, thinking=True)
    assert expected.reasoning
    assert result.reasoning is None
    assert result.content == f"<think>\n{expected.reasoning}\n</think>\n\n{expected.content}"


# -- non-streaming bodies (MockTransport) ------------------------------------------------------------


def _body(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "local-qwen",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
    }


async def _chat_against(
    message: dict[str, Any], *, upstream: Flavour, thinking: bool | None
) -> Any:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json=_body(message))

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        AsyncQwen(
            api_key=KEY, base_url="http://llama:8080/v1", upstream=upstream, http_client=http
        ) as client,
    ):
        result = await client.chat(QUESTION, model="local-qwen", thinking=thinking)
    assert "stream" not in sent[0]  # the non-streaming body path
    return result


@pytest.mark.anyio
@pytest.mark.parametrize("thinking", [False, None])
async def test_a_llama_cpp_body_with_inline_reasoning(thinking: bool | None) -> None:
    message = {"content": "<think>\nsome reasoning \n</think>\n\nThe answer."}
    result = await _chat_against(message, upstream="openai-compatible", thinking=thinking)
    assert (result.reasoning, result.content) == ("some reasoning ", "The answer.")
    unclosed = {"content": "<think>\nLet me add a thought"}
    result = await _chat_against(unclosed, upstream="openai-compatible", thinking=thinking)
    assert (result.reasoning, result.content) == ("Let me add a thought", "")


@pytest.mark.anyio
async def test_a_vllm_body_with_the_answer_in_reasoning_content() -> None:
    """vLLM #17609: thinking off, the answer in ``reasoning_content``, ``content`` null."""
    message = {"content": None, "reasoning_content": "The answer is 4."}
    result = await _chat_against(message, upstream="openai-compatible", thinking=False)
    assert (result.reasoning, result.content) == (None, "The answer is 4.")
    dashscope = await _chat_against(message, upstream="dashscope", thinking=False)
    assert (dashscope.reasoning, dashscope.content) == ("The answer is 4.", "")


@pytest.mark.anyio
async def test_a_dashscope_body_keeps_its_tags() -> None:
    message = {"content": "<think>\nr\n</think>\n\nThe answer."}
    result = await _chat_against(message, upstream="dashscope", thinking=None)
    assert (result.reasoning, result.content) == (None, "<think>\nr\n</think>\n\nThe answer.")


def _sse(pieces: list[str]) -> bytes:
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{"choices": [{"index": 0, "delta": {"content": piece}}]} for piece in pieces]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    common = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    lines = [f"data: {json.dumps({**common, **chunk})}\n\n" for chunk in chunks]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


@pytest.mark.anyio
@pytest.mark.parametrize("in_prompt", [False, True])
async def test_a_template_that_opens_the_block_in_the_prompt(in_prompt: bool) -> None:
    """Only ``</think>`` in the answer (the template wrote ``<think>`` into the prompt, the server
    parses nothing): with ``think_tag_in_prompt`` the text before it is reasoning; without, the
    answer streams as it comes (the rule would hold every answer back until its end)."""
    pieces = ["Let me", " think.\n</", "think>\n\n", "Four", "."]

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, content=_sse(pieces), headers=headers)

    settings = Settings(api_key=KEY, base_url="http://vllm:8000/v1", think_tag_in_prompt=in_prompt)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        AsyncQwen(settings=settings, upstream="openai-compatible", http_client=http) as client,
    ):
        result = await client.chat(QUESTION, model="local-qwen", thinking=True)
    if in_prompt:
        assert (result.reasoning, result.content) == ("Let me think.", "Four.")
    else:
        assert (result.reasoning, result.content) == (None, "".join(pieces))
