"""Throttling, faults, the context cache and pacing, seen from a client."""

from __future__ import annotations

import json
import time
from collections.abc import MutableMapping
from typing import Any

import anyio
import httpx
import pytest

from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator.streaming import ConnectionDropped
from qwenkit.wire.sse import SSEDecoder

COMPAT = "/compatible-mode/v1/chat/completions"
TEXT = "/api/v1/services/aigc/text-generation/generation"
KEY = {"Authorization": "Bearer sk-test-limits"}
SSE = {**KEY, "X-DashScope-SSE": "enable"}
MESSAGES = [{"role": "user", "content": "Tell me about umbrellas."}]
STREAM = {"model": "qwen-plus", "messages": MESSAGES, "stream": True}
NATIVE = {
    "model": "qwen-plus",
    "input": {"messages": MESSAGES},
    "parameters": {"result_format": "message"},
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def client_for(
    config: dict[str, Any] | None = None, *, raise_errors: bool = True
) -> httpx.AsyncClient:
    app = create_app(EmulatorConfig.model_validate(config or {}))
    transport = httpx.ASGITransport(app, raise_app_exceptions=raise_errors)
    return httpx.AsyncClient(transport=transport, base_url="http://e")


def sse(raw: bytes) -> list[Any]:
    decoder = SSEDecoder()
    return decoder.feed(raw) + decoder.close()


@pytest.mark.anyio
async def test_after_requests_throttles_in_each_wire_format() -> None:
    async with client_for({"throttle": {"after_requests": 1}}) as c:
        assert (
            await c.post(COMPAT, json={**STREAM, "stream": False}, headers=KEY)
        ).status_code == 200
        compat = await c.post(COMPAT, json={**STREAM, "stream": False}, headers=KEY)
        native = await c.post(TEXT, json=NATIVE, headers=KEY)
        stream = await c.post(TEXT, json=NATIVE, headers=SSE)
    assert compat.status_code == 429
    assert compat.json()["error"]["code"] == "limit_requests"
    assert "retry-after" not in compat.headers  # the real service sends none
    assert native.status_code == 429
    assert native.json()["code"] == "Throttling.RateQuota"
    assert stream.status_code == 429
    assert stream.text.startswith("id:1\nevent:error\n:HTTP_STATUS/429\n")


@pytest.mark.anyio
async def test_tokens_per_minute_and_retry_after_quirk() -> None:
    config = {"throttle": {"tokens_per_minute": 40}, "quirks": {"retry_after_seconds": 1.5}}
    async with client_for(config) as c:
        first = await c.post(TEXT, json=NATIVE, headers=KEY)
        second = await c.post(TEXT, json=NATIVE, headers=KEY)
    assert first.status_code == 200  # the prompt fits; its answer then fills the minute
    assert second.status_code == 429
    assert second.json()["code"] == "Throttling.AllocationQuota"
    assert second.headers["retry-after"] == "2"


@pytest.mark.anyio
async def test_config_patch_throttles_later_requests() -> None:
    async with client_for() as c:
        assert (await c.post(TEXT, json=NATIVE, headers=KEY)).status_code == 200
        patch = await c.patch("/_emulator/config", json={"throttle": {"requests_per_minute": 1}})
        assert patch.status_code == 200
        assert (await c.post(TEXT, json=NATIVE, headers=KEY)).status_code == 200
        assert (await c.post(TEXT, json=NATIVE, headers=KEY)).status_code == 429


@pytest.mark.anyio
async def test_drop_truncates_the_compat_stream() -> None:
    async with client_for({"faults": {"drop_after_chunks": 3}}, raise_errors=False) as c:
        r = await c.post(COMPAT, json=STREAM, headers=KEY)
    events = sse(r.content)
    assert r.status_code == 200
    assert len(events) == 3
    assert b"[DONE]" not in r.content
    assert all(json.loads(e.data)["choices"][0]["finish_reason"] is None for e in events)


@pytest.mark.anyio
async def test_drop_raises_in_process_and_cuts_native_streams() -> None:
    async with client_for({"faults": {"drop_after_chunks": 2}}) as c:
        with pytest.raises(ConnectionDropped):
            await c.post(TEXT, json=NATIVE, headers=SSE)
    async with client_for({"faults": {"drop_after_chunks": 2}}, raise_errors=False) as c:
        r = await c.post(TEXT, json=NATIVE, headers=SSE)
        plain = await c.post(TEXT, json=NATIVE, headers=KEY)
    assert [e.id for e in sse(r.content)] == ["1", "2"]
    assert plain.json()["output"]["choices"]  # the configured drop is a streaming fault only


@pytest.mark.anyio
async def test_scripted_drop_cuts_a_json_answer() -> None:
    rule = {"match": {}, "text": "A whole answer.", "fault": {"kind": "drop"}}
    async with client_for({"scenarios": [rule]}, raise_errors=False) as c:
        plain = await c.post(TEXT, json=NATIVE, headers=KEY)
    assert plain.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(plain.content)
    assert 0 < len(plain.content) < int(plain.headers["content-length"])


@pytest.mark.anyio
async def test_fail_first_then_recover() -> None:
    async with client_for({"faults": {"fail_first": 1, "error_status": 503}}) as c:
        first = await c.post(TEXT, json=NATIVE, headers=KEY)
        second = await c.post(TEXT, json=NATIVE, headers=KEY)
    assert first.status_code == 503
    assert first.json()["code"] == "ModelUnavailable"
    assert second.status_code == 200


@pytest.mark.anyio
async def test_scripted_error_mid_stream_on_both_wires() -> None:
    rule = {
        "match": {"last_user": "umbrella"},
        "text": "Take an umbrella, it will rain all day in Hangzhou.",
        "fault": {
            "kind": "error_mid_stream",
            "after_chunks": 2,
            "error": {
                "status": 400,
                "code": "DataInspectionFailed",
                "message": "Output data may contain inappropriate content.",
            },
        },
    }
    async with client_for({"scenarios": [rule]}) as c:
        native = await c.post(TEXT, json=NATIVE, headers=SSE)
        compat = await c.post(COMPAT, json=STREAM, headers=KEY)
    events = sse(native.content)
    assert native.status_code == 200
    assert [e.event for e in events] == ["result", "result", "error"]
    assert events[-1].status == 400
    assert events[-1].id == "3"
    assert json.loads(events[-1].data)["code"] == "DataInspectionFailed"
    data = [e.data for e in sse(compat.content)]
    assert len(data) == 3
    assert "[DONE]" not in data
    assert json.loads(data[-1])["error"]["code"] == "data_inspection_failed"


@pytest.mark.anyio
async def test_stall_pauses_the_stream() -> None:
    config = {"faults": {"stall_after_chunks": 1, "stall_seconds": 0.3}}
    async with client_for(config) as c:
        start = time.perf_counter()
        r = await c.post(COMPAT, json=STREAM, headers=KEY)
        elapsed = time.perf_counter() - start
    assert elapsed >= 0.3
    assert r.content.endswith(b"data: [DONE]\n\n")  # a stall delays, it does not cut


@pytest.mark.anyio
async def test_pacing_delays_streams_and_answers() -> None:
    async with client_for({"pacing": {"ttft_ms": 150, "tokens_per_second": 2000}}) as c:
        start = time.perf_counter()
        r = await c.post(COMPAT, json=STREAM, headers=KEY)
        streamed = time.perf_counter() - start
        start = time.perf_counter()
        await c.post(TEXT, json=NATIVE, headers=KEY)
        answered = time.perf_counter() - start
    assert r.content.endswith(b"[DONE]\n\n")
    assert streamed >= 0.15
    assert answered >= 0.15


@pytest.mark.anyio
async def test_repeated_long_prompt_reports_cached_tokens() -> None:
    long_text = " ".join(f"Clause {i}: the tenant keeps the garden tidy." for i in range(120))
    messages = [{"role": "system", "content": long_text}, {"role": "user", "content": "Summarise."}]
    body = {"model": "qwen-plus", "messages": messages}
    native = {"model": "qwen-plus", "input": {"messages": messages}}
    async with client_for() as c:
        first = (await c.post(COMPAT, json=body, headers=KEY)).json()["usage"]
        second = (await c.post(COMPAT, json=body, headers=KEY)).json()["usage"]
        third = (await c.post(TEXT, json=native, headers=KEY)).json()["usage"]
        other_key = {"Authorization": "Bearer sk-another-key"}
        fourth = (await c.post(COMPAT, json=body, headers=other_key)).json()["usage"]
        await c.post("/_emulator/reset")
        fifth = (await c.post(COMPAT, json=body, headers=KEY)).json()["usage"]
    assert first["prompt_tokens"] > 1000
    assert first["prompt_tokens_details"]["cached_tokens"] == 0
    cached = second["prompt_tokens_details"]["cached_tokens"]
    assert cached > 0
    assert cached % 256 == 0
    assert cached < second["prompt_tokens"]
    assert third["prompt_tokens_details"]["cached_tokens"] == cached  # native wire, same cache
    assert fourth["prompt_tokens_details"]["cached_tokens"] == 0  # per key
    assert fifth["prompt_tokens_details"]["cached_tokens"] == 0  # reset forgets


@pytest.mark.anyio
async def test_client_disconnect_stops_a_paced_stream() -> None:
    """Raw ASGI: the client goes away after the first chunk; the response ends at once instead
    of pacing out the whole answer (about 3 s at 20 tokens per second)."""
    config = EmulatorConfig.model_validate({"pacing": {"tokens_per_second": 20}})
    app = create_app(config)
    body = json.dumps(STREAM).encode()
    sent: list[MutableMapping[str, Any]] = []
    first_chunk = anyio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": body, "more_body": False}
        await first_chunk.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            first_chunk.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": COMPAT,
        "raw_path": COMPAT.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"authorization", b"Bearer sk-test-limits"),
            (b"content-type", b"application/json"),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("emulator", 80),
    }
    start = time.perf_counter()
    with anyio.fail_after(2):
        await app(scope, receive, send)
    assert time.perf_counter() - start < 1
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert 1 <= len(bodies) < 10
    assert all(m.get("more_body") for m in bodies)  # never completed: the client was gone
