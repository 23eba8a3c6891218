"""``upstreams=`` with ``fallbacks=``: a call whose model keeps failing on the client's own
upstream goes to the same model in another region (``"qwen-plus@virginia"``), then to a
self-hosted server (``"qwen3-8b@local"``), each a real emulator over HTTP. The record is priced
in the region that answered (not at all on the self-hosted server), and a chain naming an
upstream that does not exist is refused when the client is made."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emulator_server import serve

from qwenkit import (
    AsyncQwen,
    ListSink,
    RetryPolicy,
    Settings,
    UpstreamSpec,
    UsageError,
)
from qwenkit.catalog import cost, default_catalog
from qwenkit.emulator import create_app

FAST = RetryPolicy(max_attempts=2, initial_delay=0.0, max_delay=0.0)
KEY = "sk-upstream-test"


def failing(model: str) -> list[dict[str, Any]]:
    error = {"status": 503, "code": "ServiceUnavailable", "message": "overloaded"}
    return [{"match": {"model": model}, "error": error}]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    """Singapore (qwen-plus overloaded), Virginia (qwen-plus overloaded or not, per test) and a
    self-hosted server; their base URLs."""
    with (
        serve(create_app(scenarios=failing("qwen-plus"))) as singapore,
        serve(create_app()) as virginia,
        serve(create_app()) as local,
    ):
        yield {"singapore": singapore, "virginia": virginia, "local": local}


def client(servers: dict[str, str], sink: ListSink) -> AsyncQwen:
    return AsyncQwen(
        api_key=KEY,
        base_url=servers["singapore"],
        retry=FAST,
        usage_sinks=[sink],
        upstreams={
            "virginia": Settings(api_key=KEY, base_url=servers["virginia"], region="us-east-1"),
            "local": UpstreamSpec(
                Settings(api_key=KEY, base_url=servers["local"] + "/compatible-mode/v1"),
                flavour="openai-compatible",
            ),
        },
        fallbacks={"qwen-plus": ["qwen-plus@virginia", "qwen3-8b@local"]},
    )


def served(url: str) -> list[str]:
    log = httpx.get(url + "/_emulator/requests").json()["requests"]
    return [entry["model"] for entry in log]


def reset(servers: dict[str, str]) -> None:
    for url in servers.values():
        httpx.post(url + "/_emulator/reset").raise_for_status()


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_a_failing_region_falls_back_to_the_same_model_in_another(
    servers: dict[str, str], stream: bool
) -> None:
    reset(servers)
    sink = ListSink()
    async with client(servers, sink) as qwen:
        if stream:
            async with qwen.stream("Hi", model="qwen-plus") as events:
                result = await events.get_result()
        else:
            result = await qwen.chat("Hi", model="qwen-plus")
    assert result.content
    assert result.model == "qwen-plus"
    assert "fallback: qwen-plus failed (503 ServiceUnavailable), trying qwen-plus@virginia" in (
        result.notes
    )
    assert served(servers["singapore"]) == ["qwen-plus", "qwen-plus"]  # two attempts
    assert served(servers["virginia"]) == ["qwen-plus"]
    assert served(servers["local"]) == []
    [record] = sink.records
    assert (record.status, record.model, record.region) == ("ok", "qwen-plus", "us-east-1")
    assert result.usage is not None
    expected = cost(result.usage, "qwen-plus", "us-east-1", catalog=default_catalog())
    assert record.cost == expected.total


@pytest.mark.anyio
async def test_then_a_self_hosted_server_which_is_not_priced(servers: dict[str, str]) -> None:
    reset(servers)
    sink = ListSink()
    httpx.post(servers["virginia"] + "/_emulator/scenarios", json=failing("qwen-plus"))
    try:
        async with client(servers, sink) as qwen:
            result = await qwen.chat("Hi", model="qwen-plus")
    finally:
        httpx.post(servers["virginia"] + "/_emulator/scenarios", json=[])
    assert result.content
    assert result.model == "qwen3-8b"
    assert served(servers["local"]) == ["qwen3-8b"]
    [request] = httpx.get(servers["local"] + "/_emulator/requests").json()["requests"]
    assert request["wire"] == "compat"
    [record] = sink.records
    assert (record.status, record.model, record.region, record.cost) == (
        "ok",
        "qwen3-8b",
        None,
        None,
    )


def test_a_chain_naming_an_unknown_upstream_is_refused(servers: dict[str, str]) -> None:
    with pytest.raises(UsageError, match="unknown upstream 'tokyo'"):
        AsyncQwen(
            api_key=KEY,
            base_url=servers["singapore"],
            fallbacks={"qwen-plus": ["qwen-plus@tokyo"]},
        )
    with pytest.raises(UsageError, match="MODEL@UPSTREAM"):
        AsyncQwen(api_key=KEY, base_url=servers["singapore"], fallbacks={"qwen-plus": ["@x"]})
