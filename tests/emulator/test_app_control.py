"""The ``/_emulator/...`` control API and scenario rules at run time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from qwenkit.emulator import create_app
from qwenkit.emulator.app import app_state

COMPAT = "/compatible-mode/v1/chat/completions"
TEXT = "/api/v1/services/aigc/text-generation/generation"
KEY = {"Authorization": "Bearer sk-test-control"}
BODY = {
    "model": "qwen-plus",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as c:
        yield c


@pytest.mark.anyio
async def test_health(client: httpx.AsyncClient) -> None:
    r = await client.get("/_emulator/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["models"] > 10
    assert body["requests"] == 0


@pytest.mark.anyio
async def test_get_and_patch_config(client: httpx.AsyncClient) -> None:
    config = (await client.get("/_emulator/config")).json()
    assert config["pacing"]["chunk_tokens"] == 1
    assert config["auth"]["accept_any_sk"] is True
    r = await client.patch("/_emulator/config", json={"pacing": {"chunk_tokens": 4}})
    assert r.status_code == 200
    assert r.json()["pacing"]["chunk_tokens"] == 4
    assert r.json()["pacing"]["ttft_ms"] == 0  # deep merge: the rest of the section stays
    assert (await client.get("/_emulator/config")).json()["pacing"]["chunk_tokens"] == 4
    bad = await client.patch("/_emulator/config", json={"pacing": {"chunk_tokens": 0}})
    assert bad.status_code == 400
    assert "chunk_tokens" in bad.json()["error"]
    unknown = await client.patch("/_emulator/config", json={"no_such_section": {}})
    assert unknown.status_code == 400
    not_json = await client.patch("/_emulator/config", content=b"{oops")
    assert not_json.status_code == 400
    assert (await client.get("/_emulator/config")).json()["pacing"]["chunk_tokens"] == 4


@pytest.mark.anyio
async def test_patch_auth_takes_effect(client: httpx.AsyncClient) -> None:
    r = await client.patch("/_emulator/config", json={"auth": {"keys": [{"key": "sk-only-me"}]}})
    assert r.status_code == 200
    assert (await client.post(COMPAT, json=BODY, headers=KEY)).status_code == 401
    only = {"Authorization": "Bearer sk-only-me"}
    assert (await client.post(COMPAT, json=BODY, headers=only)).status_code == 200


@pytest.mark.anyio
async def test_request_log_records_and_limits(client: httpx.AsyncClient) -> None:
    await client.post(COMPAT, json=BODY, headers=KEY)
    await client.post(COMPAT, json={**BODY, "model": "qwen9"}, headers=KEY)
    native = {"model": "qwen-plus", "input": {"messages": BODY["messages"]}}
    await client.post(TEXT, json=native, headers={**KEY, "X-DashScope-SSE": "enable"})
    log = (await client.get("/_emulator/requests")).json()
    assert log["total"] == 3
    first, second, third = log["requests"]
    assert first["wire"] == "compat"
    assert first["status"] == 200
    assert first["stream"] is False
    assert first["model"] == "qwen-plus"
    assert first["source"] == "default"
    assert first["body"] == BODY
    assert first["usage"]["prompt_tokens"] > 0
    assert second["status"] == 404
    assert second["usage"] is None
    assert third["wire"] == "native"
    assert third["stream"] is True
    assert third["path"] == TEXT
    last = (await client.get("/_emulator/requests", params={"limit": 1})).json()["requests"]
    assert last == [third]
    assert (await client.get("/_emulator/requests", params={"limit": "x"})).status_code == 400


@pytest.mark.anyio
async def test_request_log_is_bounded() -> None:
    app = create_app()
    log = app_state(app).log
    for number in range(1005):
        log.add({"n": number})
    assert len(log) == 1000
    assert log.last(1) == [{"n": 1004}]


@pytest.mark.anyio
async def test_reset_clears_log_and_counters(client: httpx.AsyncClient) -> None:
    await client.patch("/_emulator/config", json={"throttle": {"after_requests": 1}})
    assert (await client.post(COMPAT, json=BODY, headers=KEY)).status_code == 200
    assert (await client.post(COMPAT, json=BODY, headers=KEY)).status_code == 429
    assert (await client.post("/_emulator/reset")).json() == {"reset": True}
    assert (await client.get("/_emulator/requests")).json()["total"] == 0
    assert (await client.post(COMPAT, json=BODY, headers=KEY)).status_code == 200


@pytest.mark.anyio
async def test_replace_scenarios_at_run_time(client: httpx.AsyncClient) -> None:
    rules = {
        "scenarios": [{"name": "paris", "match": {"last_user": "(?i)france"}, "text": "Paris."}]
    }
    r = await client.post("/_emulator/scenarios", json=rules)
    assert r.status_code == 200
    assert r.json() == {"rules": 1}
    answer = (await client.post(COMPAT, json=BODY, headers=KEY)).json()
    assert answer["choices"][0]["message"]["content"] == "Paris."
    entry = (await client.get("/_emulator/requests", params={"limit": 1})).json()["requests"][0]
    assert entry["source"] != "default"
    assert (await client.get("/_emulator/config")).json()["scenarios"][0]["name"] == "paris"
    bad = await client.post("/_emulator/scenarios", json=[{"match": {}, "txt": "typo"}])
    assert bad.status_code == 400
    assert "rule 0" in bad.json()["error"]
    still = (await client.post(COMPAT, json=BODY, headers=KEY)).json()
    assert still["choices"][0]["message"]["content"] == "Paris."  # a bad set changes nothing
    assert (await client.post("/_emulator/scenarios", json=[])).json() == {"rules": 0}
    plain = (await client.post(COMPAT, json=BODY, headers=KEY)).json()
    assert plain["choices"][0]["message"]["content"] != "Paris."


@pytest.mark.anyio
async def test_scenarios_from_a_file_and_tool_call_fragments(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "- match: {tools_offered: [get_weather]}\n"
        "  tool_calls:\n"
        "    - {name: get_weather, arguments: {location: 杭州}, id: call_weather_1}\n",
        encoding="utf-8",
    )
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
    }
    body = {**BODY, "tools": [tool], "stream": True}
    transport = httpx.ASGITransport(create_app(scenarios=path))
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
        r = await c.post(COMPAT, json=body, headers=KEY)
        plain = await c.post(COMPAT, json={**body, "stream": False}, headers=KEY)
    import json

    chunks = [json.loads(line[6:]) for line in r.text.split("\n\n") if line.startswith("data: {")]
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["id"] == "call_weather_1"
    assert calls[0]["function"] == {"name": "get_weather", "arguments": ""}
    assert all(call["id"] == "" for call in calls[1:])
    arguments = "".join(call["function"]["arguments"] for call in calls)
    assert json.loads(arguments) == {"location": "杭州"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    message = plain.json()["choices"][0]["message"]
    assert message["tool_calls"][0]["function"]["arguments"] == arguments
    assert message["tool_calls"][0]["index"] == 0
    assert plain.json()["usage"]["completion_tokens"] > 0


@pytest.mark.anyio
async def test_catalog_file_sets_the_limits_enforced(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    catalog = tmp_path / "models.toml"
    catalog.write_text(
        "[models.qwen-plus]\nmax_input_tokens = 10\nmax_input_tokens_thinking = 10\n"
    )
    missing = await client.patch(
        "/_emulator/config", json={"catalog_file": str(tmp_path / "nope.toml")}
    )
    assert missing.status_code == 400
    assert (await client.get("/_emulator/config")).json()["catalog_file"] is None
    assert (await client.post(COMPAT, json=BODY, headers=KEY)).status_code == 200
    r = await client.patch("/_emulator/config", json={"catalog_file": str(catalog)})
    assert r.status_code == 200
    too_long = await client.post(COMPAT, json=BODY, headers=KEY)
    assert too_long.status_code == 400
    assert too_long.json()["error"]["message"].endswith("Range of input length should be [1, 10]")
