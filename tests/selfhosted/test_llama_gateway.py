"""The gateway with a self-hosted upstream: ``[gateway] upstream = "openai-compatible"`` in front
of llama.cpp's ``llama-server`` (tests/support/llama_server.py), called with the official
``openai`` SDK and a virtual key, over real HTTP: answers, streams, limits, JSON, tool calls,
the thinking switch, reasoning kept from the client, the ledger, and a client that leaves.

One gateway (uvicorn in a thread) per module over the session's llama-server; the store is a
SQLite file of the module's tmp dir. The model name is ours (``qwen3-0.6b``, a hybrid-thinking
Qwen3); llama.cpp serves its one model whatever the name."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import openai
import pytest
from emulator_server import serve
from gateway_process import gateway_processes
from gateway_site import GatewaySite
from llama_server import THINK_GRAMMAR, WEATHER_TOOL, LlamaServer
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from qwenkit import Settings
from qwenkit.gateway import Gateway, GatewayConfig, create_app

pytestmark = pytest.mark.llama

MASTER = "qk-master-llama-0123456789"
MODEL = "qwen3-0.6b"
CAPITAL: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the capital of France?"}
]


class Site(GatewaySite):
    def openai(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(api_key=key, base_url=self.url + "/v1", max_retries=0)


@pytest.fixture(scope="module")
def site(llama: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder: Path = tmp_path_factory.mktemp("llama-gateway")
    store_url = f"sqlite:///{folder / 'store.db'}"
    config = GatewayConfig(store_url=store_url, master_key=MASTER, upstream="openai-compatible")
    gateway = Gateway(config, settings=Settings(base_url=llama.base_url))
    with serve(create_app(gateway)) as url:
        yield Site(url, store_url, gateway, llama.base_url)


def test_a_chat_is_answered_and_recorded_with_the_servers_counts(site: Site) -> None:
    key, key_id = site.key(environment="dev")
    with site.openai(key) as client:
        answer = client.chat.completions.create(
            model=MODEL, messages=CAPITAL, max_tokens=32, temperature=0
        )
    assert "Paris" in (answer.choices[0].message.content or "")
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    [record] = site.records(key_id)
    assert record.status == "ok"
    assert (record.prompt_tokens, record.completion_tokens) == (
        answer.usage.prompt_tokens,
        answer.usage.completion_tokens,
    )
    assert not record.cost  # a self-hosted model is not priced


def test_a_stream_relays_the_same_answer_with_its_usage(site: Site) -> None:
    key, _ = site.key()
    with site.openai(key) as client:
        whole = client.chat.completions.create(
            model=MODEL, messages=CAPITAL, max_tokens=32, temperature=0
        )
        chunks = list(
            client.chat.completions.create(
                model=MODEL,
                messages=CAPITAL,
                max_tokens=32,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    [usage] = [c.usage for c in chunks if c.usage is not None]
    assert whole.usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens


def test_max_tokens_ends_the_answer_with_length(site: Site) -> None:
    key, _ = site.key()
    with site.openai(key) as client:
        answer = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Tell me a long story about a dragon."}],
            max_tokens=6,
        )
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 6


def test_json_schema_is_held_by_the_servers_grammar(site: Site) -> None:
    key, _ = site.key()
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    with site.openai(key) as client:
        answer = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Name a city and its country, as JSON."}],
            max_tokens=64,
            temperature=0,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "place", "schema": schema},
            },
        )
    place = json.loads(answer.choices[0].message.content or "")
    assert set(place) == {"city", "country"}


def test_a_call_forced_by_name_reaches_the_client_as_tool_calls(site: Site) -> None:
    """The answer is begun with the tool-call tag (the tiny model would talk instead); the named
    choice goes to llama.cpp as ``required`` with only that tool (it ignores a named one)."""
    key, _ = site.key()
    messages: Any = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": "<tool_call>\n"},
    ]
    with site.openai(key) as client:
        answer = client.chat.completions.create(
            model=MODEL,
            messages=messages,
            tools=[cast("ChatCompletionToolParam", WEATHER_TOOL)],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            max_tokens=40,
            temperature=0,
        )
    calls = answer.choices[0].message.tool_calls or []
    assert calls
    call: Any = calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_the_callers_thinking_switch_reaches_the_servers_template(
    site: Site, llama: LlamaServer
) -> None:
    key, _ = site.key()
    with site.openai(key) as client:
        counts = {
            flag: client.chat.completions.create(
                model=MODEL, messages=CAPITAL, max_tokens=4, extra_body={"enable_thinking": flag}
            ).usage
            for flag in (False, True)
        }
    off, on = counts[False], counts[True]
    assert off is not None
    assert on is not None
    assert off.prompt_tokens - on.prompt_tokens == llama.tokens("<think>\n\n</think>\n\n")


@pytest.mark.parametrize("reasoning_format", ["deepseek", "none"])
def test_reasoning_is_stripped_before_the_client(site: Site, reasoning_format: str) -> None:
    """The grammar makes the model open with a ``<think>`` block; parsed by the server or left
    inline, the client gets the answer only (the gateway's default ``reasoning = "strip"``)."""
    key, _ = site.key()
    extra: dict[str, Any] = {"grammar": THINK_GRAMMAR, "enable_thinking": True}
    if reasoning_format == "none":
        extra["reasoning_format"] = "none"
    with site.openai(key) as client:
        whole = client.chat.completions.create(
            model=MODEL, messages=CAPITAL, max_tokens=90, temperature=0, extra_body=extra
        )
        chunks = list(
            client.chat.completions.create(
                model=MODEL,
                messages=CAPITAL,
                max_tokens=90,
                temperature=0,
                stream=True,
                extra_body=extra,
            )
        )
    content = whole.choices[0].message.content or ""
    assert content
    assert "think" not in content
    assert "reasoning_content" not in whole.choices[0].message.model_dump(exclude_none=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == content
    for chunk in chunks:
        assert "reasoning_content" not in chunk.model_dump_json(exclude_none=True)


def test_a_client_that_leaves_a_stream_stops_the_generation(site: Site, llama: LlamaServer) -> None:
    key, _ = site.key()
    with site.openai(key) as client:
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Write a very long essay."}],
            max_tokens=2000,
            stream=True,
        )
        seen = 0
        for chunk in stream:
            seen += bool(chunk.choices and chunk.choices[0].delta.content)
            if seen == 3:
                break
        assert llama.busy_slots() == 1
        stream.close()
    assert llama.wait_idle(timeout=5) < 2.0


def test_qwenkit_serve_fronts_the_server_from_its_environment(
    llama: LlamaServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "QWENKIT_GATEWAY_UPSTREAM": "openai-compatible",
        "QWENKIT_BASE_URL": llama.base_url,
        "QWENKIT_STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "QWENKIT_MASTER_KEY": MASTER,
        "QWENKIT_HOME": str(tmp_path),
    }
    env.pop("DASHSCOPE_API_KEY", None)
    with gateway_processes(env, tmp_path, [[]]) as [url]:
        client = openai.OpenAI(api_key=MASTER, base_url=url + "/v1", max_retries=0)
        with client:
            answer = client.chat.completions.create(
                model=MODEL, messages=CAPITAL, max_tokens=16, temperature=0
            )
    assert "Paris" in (answer.choices[0].message.content or "")
    banner = "\n".join(log.read_text() for log in tmp_path.glob("gateway-*.log"))
    assert f"OpenAI-compatible server ({llama.base_url})" in banner
