"""``AsyncQwen``/``Qwen`` with OpenTelemetry: one ``chat {model}`` CLIENT span per call, after the
GenAI conventions, against the emulator over real HTTP, exported through the SDK's in-memory
exporter. Token counts equal the answer's usage, a failed call has an error span, the caller's
current span is the parent, and no message text reaches any attribute."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emulator_server import restored_config, serve
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from qwenkit._core.retries import RetryPolicy
from qwenkit._core.telemetry import exporter_configured, resolve_provider
from qwenkit._core.usage import ListSink
from qwenkit._exceptions import APIError
from qwenkit._settings import Mode
from qwenkit.client._async import AsyncQwen
from qwenkit.client._sync import Qwen
from qwenkit.emulator import create_app

KEY = "sk-test-tracing"
PROMPT = "Tell me about the violet heron of Lake Tracewell."
NO_RETRY = RetryPolicy(max_attempts=2, initial_delay=0.0, max_delay=0.0)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve(create_app()) as url:
        yield url


@pytest.fixture
def control(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server) as client:
        yield client


@pytest.fixture
def exported() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def texts(span: ReadableSpan) -> list[str]:
    """Every string in the span's attributes, its status and its events."""
    found: list[str] = [span.name, span.status.description or ""]
    values: list[Any] = list((span.attributes or {}).values())
    for event in span.events:
        values += list((event.attributes or {}).values())
    for value in values:
        found += [str(item) for item in value] if isinstance(value, tuple) else [str(value)]
    return found


def assert_no_text(span: ReadableSpan, *texts_to_hide: str) -> None:
    for value in texts(span):
        for hidden in texts_to_hide:
            assert hidden not in value, (span.name, value)
        assert "heron" not in value


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["compat", "native"])
async def test_a_call_is_one_client_span_with_the_genai_attributes(
    server: str, exported: tuple[TracerProvider, InMemorySpanExporter], mode: Mode
) -> None:
    provider, exporter = exported
    async with AsyncQwen(
        api_key=KEY, base_url=server, mode=mode, tracer_provider=provider, usage_sinks=[]
    ) as client:
        result = await client.chat(PROMPT, model="qwen-plus", temperature=0.3, top_p=0.9)
    assert result.usage is not None
    [span] = exporter.get_finished_spans()
    attributes = attrs(span)
    assert span.name == "chat qwen-plus"
    assert span.kind is trace.SpanKind.CLIENT
    assert span.status.status_code is trace.StatusCode.UNSET
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == attributes["gen_ai.system"] == "dashscope"
    assert attributes["gen_ai.request.model"] == "qwen-plus"
    assert attributes["gen_ai.response.model"] == "qwen-plus"
    assert attributes["gen_ai.request.temperature"] == 0.3
    assert attributes["gen_ai.request.top_p"] == 0.9
    assert isinstance(attributes["gen_ai.request.max_tokens"], int)  # always set by the pipeline
    assert attributes["gen_ai.request.max_tokens"] > 0
    assert attributes["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens > 0
    assert attributes["gen_ai.usage.output_tokens"] == result.usage.completion_tokens > 0
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == result.usage.cached_tokens
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.response.id"] == result.request_id
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == int(server.rsplit(":", 1)[1])
    assert attributes["qwenkit.status"] == "ok"
    assert attributes["qwenkit.attempts"] == 1
    assert attributes["qwenkit.cache_hit"] is False
    assert result.cost is not None
    assert attributes["qwenkit.cost"] == pytest.approx(float(result.cost.total))
    assert span.end_time is not None
    assert span.start_time is not None
    assert span.end_time > span.start_time
    assert_no_text(span, PROMPT, result.content[:40])


@pytest.mark.anyio
async def test_a_stream_ends_its_span_with_the_streamed_usage_and_the_tags(
    server: str, exported: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = exported
    async with AsyncQwen(
        api_key=KEY, base_url=server, tracer_provider=provider, usage_sinks=[]
    ) as client:
        tagged = client.with_tags(endpoint="summaries", key_id="k-123")
        async with tagged.stream(PROMPT, thinking=True) as stream:
            async for _ in stream:
                assert not exporter.get_finished_spans()  # open while the answer streams
            result = await stream.get_result()
    assert result.usage is not None
    assert result.reasoning is not None
    [span] = exporter.get_finished_spans()
    attributes = attrs(span)
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.usage.output_tokens"] == result.usage.completion_tokens
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == result.usage.reasoning_tokens > 0
    assert attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert (attributes["qwenkit.endpoint"], attributes["qwenkit.key_id"]) == ("summaries", "k-123")
    assert_no_text(span, PROMPT, result.reasoning[:30])


@pytest.mark.anyio
async def test_an_upstream_4xx_is_an_error_span_without_its_message(
    server: str, control: httpx.Client, exported: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = exported
    refusal = {
        "match": {"last_user": "heron"},
        "error": {"status": 400, "code": "DataInspectionFailed", "message": f"bad: {PROMPT}"},
    }
    with restored_config(control, {"scenarios": [refusal]}):
        async with AsyncQwen(
            api_key=KEY, base_url=server, tracer_provider=provider, usage_sinks=[]
        ) as client:
            with pytest.raises(APIError) as raised:
                await client.chat(PROMPT)
    assert raised.value.status == 400
    [span] = exporter.get_finished_spans()
    attributes = attrs(span)
    assert span.status.status_code is trace.StatusCode.ERROR
    assert attributes["error.type"] == "DataInspectionFailed"
    assert attributes["qwenkit.http_status"] == 400
    assert attributes["qwenkit.status"] == "error"
    assert_no_text(span, PROMPT)


@pytest.mark.anyio
async def test_a_5xx_after_its_retries_is_an_error_span_counting_the_attempts(
    server: str, control: httpx.Client, exported: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = exported
    sink = ListSink()
    with restored_config(control, {"faults": {"error_rate": 1.0, "error_status": 503}}):
        async with AsyncQwen(
            api_key=KEY, base_url=server, tracer_provider=provider, retry=NO_RETRY,
            usage_sinks=[sink],
        ) as client:  # fmt: skip
            with pytest.raises(APIError) as raised:
                await client.chat(PROMPT)
    assert len(raised.value.attempts) == 2
    [span] = exporter.get_finished_spans()
    [record] = sink.records
    attributes = attrs(span)
    assert span.status.status_code is trace.StatusCode.ERROR
    assert attributes["qwenkit.http_status"] == 503
    assert attributes["qwenkit.attempts"] == record.attempts >= 2  # the record's count, as logged
    assert attributes["error.type"] == record.error_code


@pytest.mark.anyio
async def test_the_callers_current_span_is_the_parent(
    server: str, exported: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = exported
    async with AsyncQwen(
        api_key=KEY, base_url=server, tracer_provider=provider, usage_sinks=[]
    ) as client:
        with provider.get_tracer("app").start_as_current_span("handle request") as outer:
            await client.chat(PROMPT)
    spans = {span.name: span for span in exporter.get_finished_spans()}
    child = spans["chat qwen-plus"]
    assert child.parent is not None
    assert child.parent.span_id == outer.get_span_context().span_id
    assert child.context is not None
    assert child.context.trace_id == outer.get_span_context().trace_id


def test_the_sync_client_traces_under_the_callers_span_too(
    server: str, exported: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = exported
    with (
        Qwen(api_key=KEY, base_url=server, tracer_provider=provider, usage_sinks=[]) as client,
        provider.get_tracer("app").start_as_current_span("job") as outer,
    ):
        client.chat(PROMPT)
    spans = {span.name: span for span in exporter.get_finished_spans()}
    parent = spans["chat qwen-plus"].parent
    assert parent is not None
    assert parent.span_id == outer.get_span_context().span_id


def test_without_a_provider_and_no_global_one_nothing_is_traced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve_provider(False) is None
    given = TracerProvider()
    assert resolve_provider(given) is given
    # the global provider is the API's proxy until an application sets one: no tracing
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    assert resolve_provider(None) is None
    client = AsyncQwen(api_key=KEY, base_url="http://127.0.0.1:9", usage_sinks=[])
    assert not any(type(p).__name__ == "TracingPolicy" for p in client.pipeline.policies)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", given)  # as set_tracer_provider does
    assert resolve_provider(None) is given


@pytest.mark.parametrize(
    ("environ", "configured"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_an_exporter_is_configured_by_the_standard_variables(
    environ: dict[str, str], configured: bool
) -> None:
    assert exporter_configured(environ) is configured
