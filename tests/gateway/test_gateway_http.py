"""The gateway over real HTTP, in front of the emulator (also over real HTTP), called with the
official ``openai`` and ``dashscope`` SDKs and with raw requests: answers, streams, errors in
the caller's format, the reasoning kept from the client, budgets per key, and a ledger record
for every request, rejected ones included.

One emulator and one gateway (uvicorn in threads) per module; the gateway's store is a SQLite
file of the module's tmp dir; each test makes its own keys."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import dashscope
import httpx
import openai
import pytest
from dashscope import Generation
from dashscope.api_entities.http_request import close_shared_sync_session
from emulator_server import free_port, restored_config, serve
from gateway_site import GatewaySite
from openai.types.chat import ChatCompletionMessageParam

from qwenkit import ConfigError, RetryPolicy, Settings, Timeout
from qwenkit.catalog import estimate_max_cost
from qwenkit.emulator import create_app as emulator_app
from qwenkit.gateway import Gateway, GatewayConfig, create_app
from qwenkit.storage import Limits, recent_records
from qwenkit.tokens import count_messages

MASTER = "qk-master-test-0123456789"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Say hello to the gateway."}
]


def generation(**options: Any) -> Any:
    """``dashscope.Generation.call`` (its stubs type neither dict messages nor streams)."""
    return Generation.call(**options)


class Served(GatewaySite):
    def openai(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(api_key=key, base_url=self.url + "/compatible-mode/v1", max_retries=0)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder: Path = tmp_path_factory.mktemp("gateway")
    store_url = f"sqlite:///{folder / 'store.db'}"
    with serve(emulator_app()) as upstream:
        settings = Settings(api_key="sk-emulator-upstream", base_url=upstream)
        config = GatewayConfig(store_url=store_url, master_key=MASTER)
        gateway = Gateway(config, settings=settings)
        with serve(create_app(gateway)) as url:
            yield Served(url, store_url, gateway, upstream)


# -- the OpenAI-compatible routes -----------------------------------------------------------------


def test_a_chat_through_the_openai_sdk_is_answered_and_recorded_for_its_key(
    served: Served,
) -> None:
    key, key_id = served.key(environment="prod")
    with served.openai(key) as client:
        answer = client.chat.completions.create(model="qwen-plus", messages=MESSAGES)
    assert answer.choices[0].message.content
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 0
    [record] = served.records(key_id)
    assert (record.status, record.model, record.environment) == ("ok", "qwen-plus", "prod")
    assert record.prompt_tokens == answer.usage.prompt_tokens
    assert record.cost is not None
    assert record.cost > 0


def test_a_stream_through_the_openai_sdk_arrives_in_pieces_with_its_usage(
    served: Served,
) -> None:
    key, key_id = served.key()
    with served.openai(key) as client:
        chunks = list(
            client.chat.completions.create(
                model="qwen-plus",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 2
    assert text
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    [record] = served.records(key_id)
    assert record.stream
    assert record.completion_tokens == chunks[-1].usage.completion_tokens


def test_the_reasoning_never_reaches_the_client_by_default(served: Served) -> None:
    key, _ = served.key()
    with served.openai(key) as client:
        whole = client.chat.completions.create(
            model="qwen-plus",
            messages=MESSAGES,
            extra_body={"enable_thinking": True},
        )
        streamed = list(
            client.chat.completions.create(
                model="qwen-plus",
                messages=MESSAGES,
                stream=True,
                extra_body={"enable_thinking": True},
            )
        )
    assert whole.choices[0].message.content
    assert "reasoning_content" not in whole.choices[0].message.model_dump(exclude_none=True)
    deltas = [c.choices[0].delta.model_dump(exclude_none=True) for c in streamed if c.choices]
    assert any(d.get("content") for d in deltas)
    assert not any(d.get("reasoning_content") for d in deltas)


def test_a_key_with_reasoning_pass_gets_the_reasoning(served: Served) -> None:
    key, _ = served.key(reasoning="pass")
    with served.openai(key) as client:
        whole = client.chat.completions.create(
            model="qwen-plus", messages=MESSAGES, extra_body={"enable_thinking": True}
        )
        streamed = list(
            client.chat.completions.create(
                model="qwen-plus", messages=MESSAGES, stream=True,
                extra_body={"enable_thinking": True},
            )
        )  # fmt: skip
    assert whole.choices[0].message.model_dump().get("reasoning_content")
    deltas = [c.choices[0].delta.model_dump() for c in streamed if c.choices]
    assert any(d.get("reasoning_content") for d in deltas)
    assert any(d.get("content") for d in deltas)


def test_a_missing_or_unknown_key_is_a_401_in_the_openai_envelope_and_is_recorded(
    served: Served,
) -> None:
    before = len(served.records())
    with (
        served.openai("qk-000000000000-wrong") as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.chat.completions.create(model="qwen-plus", messages=MESSAGES)
    raw = httpx.post(served.url + "/v1/chat/completions", json={"model": "qwen-plus"})
    assert raw.status_code == 401
    assert raw.json()["error"]["code"] == "invalid_api_key"
    assert "x-request-id" in raw.headers
    assert len(served.records()) == before + 2
    assert all(r.http_status == 401 for r in served.records()[:2])
    assert served.records()[0].request_id == raw.headers["x-request-id"]  # the log finds it


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"model": "qwen-plus"}', 400, "missing"),
        (b'{"model": "qwen-plus", "messages": "hi"}', 400, "messages"),
        (b'{"model": "qwen-plus", "messages": ' + b"[" * 500 + b"]" * 500 + b"}", 400, "deeper"),
        (b'{"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], '
         b'"temperature": "hot"}', 400, "temperature"),
        (b'{"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], '
         b'"temperature": NaN}', 400, "NaN is not a JSON value"),
        (b'{"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], '
         b'"top_p": 1e999}', 400, "out of range"),
    ],
)  # fmt: skip
def test_bad_input_is_a_4xx_in_the_callers_format_never_a_500(
    served: Served, body: bytes, status: int, needle: str
) -> None:
    key, key_id = served.key()
    response = httpx.post(
        served.url + "/compatible-mode/v1/chat/completions",
        content=body,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert needle.lower() in error["message"].lower()
    [record] = served.records(key_id)
    assert (record.status, record.http_status) == ("error", status)


def test_a_body_over_the_limit_is_a_413(served: Served) -> None:
    key, _ = served.key()
    response = httpx.post(
        served.url + "/v1/chat/completions",
        content=b'{"model": "' + b"x" * (5 * 1024 * 1024) + b'"}',
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 413


def test_a_key_over_its_daily_budget_gets_a_429_naming_the_budget(served: Served) -> None:
    key, key_id = served.key(limits=Limits(daily_cost=Decimal("0.0000001")))
    with served.openai(key) as client, pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="qwen-plus", messages=MESSAGES)
    assert caught.value.status_code == 429
    assert f"key:{key_id}" in str(caught.value)
    [record] = served.records(key_id)
    assert (record.status, record.http_status, record.attempts) == ("error", 429, 0)
    assert record.request_id == caught.value.response.headers["x-request-id"]


def test_a_keys_max_tokens_caps_every_call_and_what_its_budget_reserves(served: Served) -> None:
    cap = 6
    prompt = count_messages(list(MESSAGES), model="qwen-plus").total
    fits_the_cap = estimate_max_cost(prompt, cap, "qwen-plus").total * 3 / 2
    assert estimate_max_cost(prompt, 1000, "qwen-plus").total > fits_the_cap
    key, key_id = served.key(max_tokens=cap, limits=Limits(daily_cost=fits_the_cap))
    with served.openai(key) as client:
        # asked for 1000: clamped to the key's cap, so the reservation fits the budget
        whole = client.chat.completions.create(
            model="qwen-plus", messages=MESSAGES, max_tokens=1000
        )
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage is not None
    assert whole.usage.completion_tokens == cap
    [record] = served.records(key_id)
    assert (record.status, record.completion_tokens) == ("ok", cap)
    other, _ = served.key()
    with served.openai(other) as client:  # another key is not capped
        free = client.chat.completions.create(model="qwen-plus", messages=MESSAGES, max_tokens=40)
    assert free.usage is not None
    assert free.usage.completion_tokens > cap


def test_a_key_limited_to_some_models_may_not_call_others(served: Served) -> None:
    key, _ = served.key(models=["qwen-flash"])
    with served.openai(key) as client, pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="qwen-plus", messages=MESSAGES)


def test_the_models_route_lists_the_catalog(served: Served) -> None:
    key, _ = served.key()
    with served.openai(key) as client:
        names = {model.id for model in client.models.list()}
    assert {"qwen-plus", "qwen-flash", "qwen-max"} <= names


def test_a_client_that_disconnects_mid_stream_ends_the_call_as_cancelled(served: Served) -> None:
    key, key_id = served.key()
    pacing = {"pacing": {"tokens_per_second": 200, "chunk_tokens": 2}}
    with httpx.Client(base_url=served.upstream) as control, restored_config(control, pacing):
        with (
            httpx.Client(base_url=served.url, timeout=10) as client,
            client.stream(
                "POST",
                "/v1/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                json={"model": "qwen-plus", "messages": MESSAGES, "stream": True,
                      "max_tokens": 2000},
            ) as response,
        ):  # fmt: skip
            assert response.status_code == 200
            lines = response.iter_lines()
            received = [next(lines) for _ in range(6)]
        left = time.time()
        assert any(line.startswith("data: ") for line in received)
        deadline = time.monotonic() + 5
        while not served.records(key_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        [upstream] = control.get("/_emulator/requests", params={"limit": 1}).json()["requests"]
    [record] = served.records(key_id)
    assert record.status == "cancelled"
    assert record.latency_s < 5  # the call ended with the client, not with the answer
    assert 0 < record.completion_tokens < 2000  # only what was relayed is settled
    assert record.cost is not None
    assert record.cost > 0
    # the upstream request was closed with the client's (bench/gateway_bench.py measures how fast)
    assert upstream["request_id"] == record.request_id
    assert upstream["disconnected"] is True
    assert upstream["ended"] < left + 2


def test_an_upstream_that_drops_mid_stream_ends_the_stream_with_an_error_event(
    served: Served,
) -> None:
    key, key_id = served.key()
    with (
        httpx.Client(base_url=served.upstream) as control,
        restored_config(control, {"faults": {"drop_after_chunks": 3}}),
        httpx.Client(base_url=served.url, timeout=10) as client,
        client.stream(
            "POST", "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
            json={"model": "qwen-plus", "messages": MESSAGES, "stream": True},
        ) as response,
    ):  # fmt: skip
        assert response.status_code == 200
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    chunks = [json.loads(event) for event in events if event != "[DONE]"]
    assert chunks[0]["object"] == "chat.completion.chunk"
    assert "error" in chunks[-1], chunks[-1]
    assert chunks[-1]["error"]["message"]
    assert "sk-emulator-upstream" not in "".join(events)
    [record] = served.records(key_id)
    assert record.status == "error"
    assert record.completion_tokens > 0  # what went through is recorded


def test_an_unreachable_or_slow_upstream_is_a_502_or_504_in_the_openai_envelope(
    tmp_path: Path,
) -> None:
    config = GatewayConfig(store_url=f"sqlite:///{tmp_path / 'down.db'}", master_key=MASTER)
    down = Settings(api_key="sk-emulator-upstream", base_url=f"http://127.0.0.1:{free_port()}")
    fast = RetryPolicy(max_attempts=2, initial_delay=0.0, max_delay=0.0)
    with serve(create_app(Gateway(config, settings=down, retry=fast))) as url:
        answer = httpx.post(
            url + "/v1/chat/completions", headers={"authorization": f"Bearer {MASTER}"},
            json={"model": "qwen-plus", "messages": MESSAGES},
        )  # fmt: skip
    assert answer.status_code == 502
    assert answer.json()["error"]["message"] == "The upstream cannot be reached."
    slow_config = GatewayConfig(store_url=f"sqlite:///{tmp_path / 'slow.db'}", master_key=MASTER)
    with serve(emulator_app()) as upstream, httpx.Client(base_url=upstream) as control:
        control.patch("/_emulator/config", json={"pacing": {"ttft_ms": 3000}})
        settings = Settings(api_key="sk-emulator-upstream", base_url=upstream)
        gateway = Gateway(slow_config, settings=settings, retry=fast, timeout=Timeout(read=0.3))
        with serve(create_app(gateway)) as url:
            started = time.monotonic()
            answer = httpx.post(
                url + "/v1/chat/completions", headers={"authorization": f"Bearer {MASTER}"},
                json={"model": "qwen-plus", "messages": MESSAGES}, timeout=10,
            )  # fmt: skip
            took = time.monotonic() - started
    assert answer.status_code == 504
    assert answer.json()["error"]["message"] == "The upstream did not answer in time."
    assert took < 2.5  # two attempts of 0.3 s, not the upstream's 3 s


def test_each_wire_is_served_by_an_upstream_of_the_other(served: Served, tmp_path: Path) -> None:
    """The openai SDK through a gateway whose upstream speaks native; the dashscope SDK (below,
    ``test_a_chat_through_the_dashscope_sdk...``) through one whose upstream speaks compat."""
    settings = Settings(api_key="sk-emulator-upstream", base_url=served.upstream, mode="native")
    config = GatewayConfig(store_url=f"sqlite:///{tmp_path / 'native.db'}", master_key=MASTER)
    with serve(create_app(Gateway(config, settings=settings))) as url:
        client = openai.OpenAI(api_key=MASTER, base_url=url + "/v1", max_retries=0)
        with client:
            whole = client.chat.completions.create(model="qwen-plus", messages=MESSAGES)
            chunks = list(
                client.chat.completions.create(model="qwen-plus", messages=MESSAGES, stream=True)
            )
    assert whole.choices[0].message.content
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    log = httpx.get(served.upstream + "/_emulator/requests", params={"limit": 2}).json()
    entries = log["requests"] if isinstance(log, dict) else log
    assert [entry["wire"] for entry in entries] == ["native", "native"]


def test_a_configured_fallback_answers_when_a_model_keeps_failing(
    served: Served, tmp_path: Path
) -> None:
    settings = Settings(api_key="sk-emulator-upstream", base_url=served.upstream)
    config = GatewayConfig(
        store_url=f"sqlite:///{tmp_path / 'fallback.db'}", master_key=MASTER,
        fallbacks={"qwen-max": ["qwen-plus"]},
    )  # fmt: skip
    rule = {"match": {"model": "qwen-max"},
            "error": {"status": 503, "code": "ServiceUnavailable", "message": "busy"}}  # fmt: skip
    with httpx.Client(base_url=served.upstream) as control:
        control.post("/_emulator/scenarios", json=[rule]).raise_for_status()
        try:
            with serve(create_app(Gateway(config, settings=settings))) as url:
                client = openai.OpenAI(api_key=MASTER, base_url=url + "/v1", max_retries=0)
                with client:
                    answer = client.chat.completions.create(model="qwen-max", messages=MESSAGES)
        finally:
            control.post("/_emulator/scenarios", json=[]).raise_for_status()
    assert answer.model == "qwen-plus"
    assert answer.choices[0].message.content


def test_a_fallback_to_another_region_from_the_config_file(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[gateway.upstreams.virginia]`` (its key from the variable it names) and a fallback
    ``qwen-max@virginia``: the model failing in this region is answered by the other, and the
    ledger prices the call there."""
    settings = Settings(api_key="sk-emulator-upstream", base_url=served.upstream)
    rule = {"match": {"model": "qwen-max"},
            "error": {"status": 503, "code": "ServiceUnavailable", "message": "busy"}}  # fmt: skip
    with serve(emulator_app()) as virginia, httpx.Client(base_url=served.upstream) as control:
        file = tmp_path / "gateway.toml"
        file.write_text(
            f"""[gateway]
store_url = "sqlite:///{tmp_path / "regions.db"}"
[gateway.upstreams.virginia]
region = "us-east-1"
base_url = "{virginia}"
api_key_env = "QWENKIT_TEST_VIRGINIA_KEY"
[gateway.fallbacks]
"qwen-max" = ["qwen-max@virginia"]
"""
        )
        with pytest.raises(ConfigError, match="QWENKIT_TEST_VIRGINIA_KEY"):
            Gateway(GatewayConfig.load(file, master_key=MASTER), settings=settings)
        monkeypatch.setenv("QWENKIT_TEST_VIRGINIA_KEY", "sk-virginia")
        gateway = Gateway(GatewayConfig.load(file, master_key=MASTER), settings=settings)
        control.post("/_emulator/scenarios", json=[rule]).raise_for_status()
        try:
            with serve(create_app(gateway)) as url:
                client = openai.OpenAI(api_key=MASTER, base_url=url + "/v1", max_retries=0)
                with client:
                    answer = client.chat.completions.create(model="qwen-max", messages=MESSAGES)
                ledger = gateway.store.ledger
                assert ledger is not None
                assert ledger.flush(timeout=10)
        finally:
            control.post("/_emulator/scenarios", json=[]).raise_for_status()
        [there] = httpx.get(virginia + "/_emulator/requests").json()["requests"]
    assert answer.model == "qwen-max"
    assert answer.choices[0].message.content
    assert there["model"] == "qwen-max"
    [record] = recent_records(f"sqlite:///{tmp_path / 'regions.db'}", limit=10)
    assert (record.status, record.region) == ("ok", "us-east-1")


# -- the DashScope-native routes ------------------------------------------------------------------


@pytest.fixture
def dashscope_base(served: Served) -> Iterator[str]:
    previous = dashscope.base_http_api_url
    dashscope.base_http_api_url = served.url + "/api/v1"
    try:
        yield served.url
    finally:
        dashscope.base_http_api_url = previous
        close_shared_sync_session()


def test_a_chat_through_the_dashscope_sdk_is_answered_natively(
    served: Served, dashscope_base: str
) -> None:
    key, key_id = served.key()
    response = generation(
        model="qwen-plus", messages=MESSAGES, result_format="message", api_key=key
    )
    assert response.status_code == 200, response
    assert response.output.choices[0].message.content
    assert response.usage.input_tokens > 0
    [record] = served.records(key_id)
    assert record.status == "ok"


def test_a_native_stream_through_the_dashscope_sdk(served: Served, dashscope_base: str) -> None:
    key, _ = served.key()
    responses = list(
        generation(
            model="qwen-plus",
            messages=MESSAGES,
            result_format="message",
            stream=True,
            incremental_output=True,
            api_key=key,
        )
    )
    assert all(r.status_code == 200 for r in responses)
    text = "".join(r.output.choices[0].message.content for r in responses if r.output)
    assert len(responses) > 2
    assert text


def test_an_async_task_is_submitted_followed_by_its_key_only_and_recorded(served: Served) -> None:
    key, key_id = served.key()
    other, _ = served.key()
    limited, _ = served.key(limits=Limits(requests_per_minute=100))
    route = served.url + "/api/v1/services/aigc/text-generation/generation"
    body = {"model": "qwen-plus", "input": {"messages": MESSAGES},
            "parameters": {"result_format": "message"}}  # fmt: skip
    tasks = {"tasks": {"text_generation_async": True, "pending_seconds": 0.05,
                       "running_seconds": 0.05}}  # fmt: skip
    with httpx.Client(base_url=served.upstream) as control, restored_config(control, tasks):
        submitted = httpx.post(
            route, json=body,
            headers={"authorization": f"Bearer {key}", "x-dashscope-async": "enable"},
        )  # fmt: skip
        assert submitted.status_code == 200, submitted.text
        task_id = submitted.json()["output"]["task_id"]
        assert submitted.json()["output"]["task_status"] == "PENDING"
        url = f"{served.url}/api/v1/tasks/{task_id}"
        deadline = time.monotonic() + 10
        while True:
            polled = httpx.get(url, headers={"authorization": f"Bearer {key}"}).json()
            if (
                polled["output"]["task_status"] in ("SUCCEEDED", "FAILED")
                or time.monotonic() > deadline
            ):
                break
            time.sleep(0.05)
        hidden = httpx.get(url, headers={"authorization": f"Bearer {other}"})
        refused = httpx.post(
            route, json=body,
            headers={"authorization": f"Bearer {limited}", "x-dashscope-async": "enable"},
        )  # fmt: skip
    assert polled["output"]["task_status"] == "SUCCEEDED"
    assert polled["output"]["choices"][0]["message"]["content"]
    assert hidden.status_code == 404
    assert refused.status_code == 400
    assert "budget or rate" in refused.json()["message"]
    [record] = served.records(key_id)
    assert (record.status, record.model) == ("ok", "qwen-plus")
    assert record.completion_tokens > 0


def test_a_native_error_is_the_dashscope_envelope(served: Served, dashscope_base: str) -> None:
    response = generation(model="qwen-plus", messages=MESSAGES, api_key="qk-bad-key")
    assert response.status_code == 401
    assert response.code == "InvalidApiKey"
    raw = httpx.post(
        served.url + "/api/v1/services/aigc/text-generation/generation",
        content=json.dumps({"model": "qwen-plus", "input": {}}),
        headers={"authorization": f"Bearer {served.key()[0]}"},
    )
    assert raw.status_code == 400
    assert set(raw.json()) >= {"code", "message", "request_id"}


# -- operations -----------------------------------------------------------------------------------


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def test_metrics_count_requests_tokens_and_errors_behind_the_master_key(served: Served) -> None:
    key, _ = served.key()
    assert httpx.get(served.url + "/metrics").status_code == 401
    assert (
        httpx.get(served.url + "/metrics", headers={"authorization": f"Bearer {key}"}).status_code
        == 401
    )
    master = {"authorization": f"Bearer {MASTER}"}

    def scrape() -> str:
        served.records()  # the ledger flushed: every record went through the sinks
        response = httpx.get(served.url + "/metrics", headers=master)
        assert response.status_code == 200
        return response.text

    before = scrape()
    with served.openai(key) as client:
        client.with_options(
            default_headers={"x-qwenkit-endpoint": "metrics-test"}
        ).chat.completions.create(model="qwen-plus", messages=MESSAGES)
    httpx.post(
        served.url + "/v1/chat/completions",
        content=b"{",
        headers={"authorization": f"Bearer {key}"},
    )
    after = scrape()
    ok = {"endpoint": "metrics-test", "model": "qwen-plus", "status": "ok"}
    assert (
        metric(after, "qwenkit_gateway_requests_total", **ok)
        == metric(before, "qwenkit_gateway_requests_total", **ok) + 1
    )
    assert metric(after, "qwenkit_gateway_tokens_total", endpoint="metrics-test", kind="prompt") > 0
    assert (
        metric(after, "qwenkit_gateway_requests_total", code="400")
        >= metric(before, "qwenkit_gateway_requests_total", code="400") + 1
    )
    assert "qwenkit_ledger_queued" in after
    assert "sk-emulator-upstream" not in after
    assert key not in after


def test_an_endpoint_tag_per_request_cannot_grow_the_metrics_without_bound(served: Served) -> None:
    metrics = served.gateway.metrics
    for i in range(300):
        metrics.prompt_cache_warning(f"endpoint-{i}")
    text = metrics.render().decode()
    assert text.count("qwenkit_gateway_prompt_cache_warnings_total{") <= 101


def test_a_dynamic_system_prompt_is_reported_in_a_header(served: Served) -> None:
    key, _ = served.key()
    prompt = "You are a support bot. Today is 2026-12-06 19:52:01. " + "Be kind. " * 200
    response = httpx.post(
        served.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "qwen-plus", "messages": [{"role": "system", "content": prompt}, *MESSAGES]},
    )
    assert response.status_code == 200
    assert "dynamic content" in response.headers["x-qwenkit-prompt-cache"]


def test_a_repeated_request_is_answered_from_the_cache_and_says_so(
    served: Served, tmp_path: Path
) -> None:
    settings = Settings(api_key="sk-emulator-upstream", base_url=served.upstream)
    config = GatewayConfig(store_url=f"sqlite:///{tmp_path / 'cached.db'}", cache=True,
                           require_keys=False)  # fmt: skip
    cached = Gateway(config, settings=settings)
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": "Cache me, please."}],
            "temperature": 0, "max_tokens": 16}  # fmt: skip
    with serve(create_app(cached)) as url:
        first, second, streamed = (
            httpx.post(url + "/v1/chat/completions", json=request)
            for request in (body, body, body | {"stream": True})
        )
    assert [r.status_code for r in (first, second, streamed)] == [200, 200, 200]
    assert first.headers["x-qwenkit-cache"] == "miss"
    assert second.headers["x-qwenkit-cache"] == "hit"
    content = first.json()["choices"][0]["message"]["content"]
    assert second.json()["choices"][0]["message"]["content"] == content
    assert streamed.headers["x-qwenkit-cache"] == "hit", streamed.headers
    assert streamed.text.rstrip().endswith("data: [DONE]")  # replayed as a stream
    key, _ = served.key()
    uncached = httpx.post(served.url + "/v1/chat/completions", json=body,
                          headers={"authorization": f"Bearer {key}"})  # fmt: skip
    assert uncached.status_code == 200
    assert "x-qwenkit-cache" not in uncached.headers  # the cache is off by default
