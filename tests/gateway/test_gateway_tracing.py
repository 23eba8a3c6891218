"""The gateway's traces over real HTTP, in front of the emulator (also over real HTTP): a SERVER
span per request continuing the caller's ``traceparent``, the model call's ``chat {model}``
CLIENT span as its child with the GenAI attributes, error spans for upstream failures, and no
prompt text or key anywhere in them. Spans go to the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_server import restored_config, serve
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from qwenkit import Settings
from qwenkit._core.retries import RetryPolicy
from qwenkit.emulator import create_app as emulator_app
from qwenkit.gateway import Gateway, GatewayConfig, create_app
from qwenkit.storage import Store

MASTER = "qk-master-tracing-0123456789"
UPSTREAM_KEY = "sk-emulator-upstream-tracing"
PROMPT = "Describe the amber lighthouse of Port Spanwick."
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@dataclass
class Traced:
    url: str
    upstream: str
    exporter: InMemorySpanExporter
    key: str
    key_id: str

    def spans(self, *names: str) -> dict[str, ReadableSpan]:
        """The finished spans by name, once ``names`` are among them (the server span ends
        just after the last byte, which the client may read first)."""
        deadline = time.monotonic() + 5
        while True:
            found = {span.name: span for span in self.exporter.get_finished_spans()}
            if all(name in found for name in names) or time.monotonic() > deadline:
                return found
            time.sleep(0.01)


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    folder: Path = tmp_path_factory.mktemp("gateway-tracing")
    store_url = f"sqlite:///{folder / 'store.db'}"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def create_key() -> tuple[str, str]:
        store = Store.open(store_url, parts=["keys"])
        try:
            assert store.keys is not None
            created = await store.keys.create("traced-app", environment="prod")
            return created.key, created.info.id
        finally:
            await store.aclose()

    key, key_id = asyncio.run(create_key())
    with serve(emulator_app()) as upstream:
        settings = Settings(api_key=UPSTREAM_KEY, base_url=upstream)
        gateway = Gateway(
            GatewayConfig(store_url=store_url, master_key=MASTER),
            settings=settings,
            tracer_provider=provider,
            retry=RetryPolicy(max_attempts=2, initial_delay=0.0, max_delay=0.0),
        )
        with serve(create_app(gateway)) as url:
            yield Traced(url, upstream, exporter, key, key_id)


@pytest.fixture
def fresh(traced: Traced) -> Traced:
    traced.exporter.clear()
    return traced


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def strings(span: ReadableSpan) -> list[str]:
    values: list[Any] = [span.name, span.status.description or ""]
    values += list((span.attributes or {}).values())
    for event in span.events:
        values += list((event.attributes or {}).values())
    return [str(v) for value in values for v in (value if isinstance(value, tuple) else [value])]


def assert_clean(span: ReadableSpan, *secrets: str) -> None:
    for value in strings(span):
        assert "lighthouse" not in value, (span.name, value)
        for secret in secrets:
            assert secret not in value, (span.name, value)


def post(traced: Traced, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {traced.key}", **headers}
    return httpx.post(traced.url + path, json=body, headers=headers, timeout=30)


CHAT = {"model": "qwen-plus", "messages": [{"role": "user", "content": PROMPT}]}


def test_a_request_is_a_server_span_continuing_the_traceparent_with_the_model_call_under_it(
    fresh: Traced,
) -> None:
    answer = post(
        fresh,
        "/v1/chat/completions",
        {**CHAT, "temperature": 0.5},
        traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01",
        **{"x-qwenkit-endpoint": "support-bot"},
    )
    assert answer.status_code == 200, answer.text
    usage = answer.json()["usage"]
    spans = fresh.spans("POST /v1/chat/completions", "chat qwen-plus")
    server, model = spans["POST /v1/chat/completions"], spans["chat qwen-plus"]

    assert server.kind is trace.SpanKind.SERVER
    assert server.context is not None
    assert f"{server.context.trace_id:032x}" == TRACE_ID
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == PARENT_ID
    assert server.parent.is_remote
    attributes = attrs(server)
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.route"] == "/v1/chat/completions"
    assert attributes["http.response.status_code"] == 200
    assert attributes["qwenkit.request_id"]
    assert server.status.status_code is trace.StatusCode.UNSET

    assert model.kind is trace.SpanKind.CLIENT
    assert model.parent is not None
    assert model.parent.span_id == server.context.span_id
    assert model.context is not None
    assert model.context.trace_id == server.context.trace_id
    genai = attrs(model)
    assert genai["gen_ai.operation.name"] == "chat"
    assert genai["gen_ai.provider.name"] == "dashscope"
    assert genai["gen_ai.request.model"] == genai["gen_ai.response.model"] == "qwen-plus"
    assert genai["gen_ai.request.temperature"] == 0.5
    assert genai["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert genai["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert genai["gen_ai.response.finish_reasons"] == ("stop",)
    assert genai["server.address"] == "127.0.0.1"
    assert genai["qwenkit.key_id"] == fresh.key_id
    assert genai["qwenkit.environment"] == "prod"
    assert genai["qwenkit.endpoint"] == "support-bot"
    assert genai["qwenkit.cost"] > 0
    assert model.start_time is not None
    assert server.start_time is not None
    assert model.end_time is not None
    assert server.end_time is not None
    assert server.start_time <= model.start_time <= model.end_time <= server.end_time
    content = answer.json()["choices"][0]["message"]["content"]
    for span in (server, model):
        assert_clean(span, fresh.key, UPSTREAM_KEY, MASTER, content[:40])


def test_a_native_stream_keeps_both_spans_open_until_its_last_event(fresh: Traced) -> None:
    body = {"model": "qwen-plus", "input": {"messages": CHAT["messages"]},
            "parameters": {"incremental_output": True}}  # fmt: skip
    with httpx.stream(
        "POST",
        fresh.url + "/api/v1/services/aigc/text-generation/generation",
        json=body,
        headers={"authorization": f"Bearer {fresh.key}", "x-dashscope-sse": "enable"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())
    assert any(line.startswith("data:") for line in lines)
    native = "POST /api/v1/services/aigc/text-generation/generation"
    spans = fresh.spans(native, "chat qwen-plus")
    server = spans[native]
    model = spans["chat qwen-plus"]
    assert model.parent is not None
    assert server.context is not None
    assert model.parent.span_id == server.context.span_id
    genai = attrs(model)
    assert genai["gen_ai.request.stream"] is True
    assert genai["gen_ai.usage.output_tokens"] > 0
    assert genai["gen_ai.response.time_to_first_chunk"] > 0
    assert model.end_time is not None
    assert server.end_time is not None
    assert model.end_time <= server.end_time
    assert_clean(model, fresh.key)


def test_an_upstream_5xx_is_an_error_on_both_spans(fresh: Traced) -> None:
    with (
        httpx.Client(base_url=fresh.upstream) as control,
        restored_config(control, {"faults": {"error_rate": 1.0, "error_status": 500}}),
    ):
        answer = post(fresh, "/v1/chat/completions", CHAT)
    assert answer.status_code >= 500
    spans = fresh.spans("POST /v1/chat/completions", "chat qwen-plus")
    server, model = spans["POST /v1/chat/completions"], spans["chat qwen-plus"]
    assert model.status.status_code is trace.StatusCode.ERROR
    genai = attrs(model)
    assert genai["error.type"]
    assert genai["qwenkit.http_status"] == 500
    assert genai["qwenkit.attempts"] >= 2
    assert server.status.status_code is trace.StatusCode.ERROR
    assert attrs(server)["error.type"] == str(answer.status_code)
    assert_clean(model, fresh.key)


def test_an_upstream_4xx_is_an_error_span_without_the_services_message(fresh: Traced) -> None:
    refusal = {
        "match": {"last_user": "lighthouse"},
        "error": {"status": 400, "code": "DataInspectionFailed", "message": f"no: {PROMPT}"},
    }
    with (
        httpx.Client(base_url=fresh.upstream) as control,
        restored_config(control, {"scenarios": [refusal]}),
    ):
        answer = post(fresh, "/v1/chat/completions", CHAT)
    assert answer.status_code == 400
    spans = fresh.spans("POST /v1/chat/completions", "chat qwen-plus")
    model, server = spans["chat qwen-plus"], spans["POST /v1/chat/completions"]
    assert model.status.status_code is trace.StatusCode.ERROR
    assert attrs(model)["error.type"] == "DataInspectionFailed"
    assert server.status.status_code is trace.StatusCode.UNSET  # the caller's error, not ours
    assert attrs(server)["http.response.status_code"] == 400
    assert_clean(model, fresh.key)
    assert_clean(server, fresh.key)


def test_a_refused_key_is_a_server_span_only_and_probes_are_not_traced(fresh: Traced) -> None:
    refused = httpx.post(
        fresh.url + "/v1/chat/completions",
        json=CHAT,
        headers={"authorization": "Bearer qk-not-a-key"},
        timeout=30,
    )
    assert refused.status_code == 401
    assert httpx.get(fresh.url + "/healthz", timeout=5).status_code == 200
    fresh.spans("POST /v1/chat/completions")
    [server] = fresh.exporter.get_finished_spans()
    assert server.name == "POST /v1/chat/completions"
    assert attrs(server)["http.response.status_code"] == 401
    assert_clean(server, "qk-not-a-key")
