"""OpenTelemetry spans of model calls, after the GenAI semantic conventions; off unless configured.

**When.** ``opentelemetry`` is never imported by qwenkit unless tracing is asked for, so a client
without it costs nothing (no import, no pipeline step). ``resolve_provider`` decides, once, when a
client is built (``AsyncQwen(tracer_provider=...)``):

- a ``TracerProvider``: spans go to it;
- ``None`` (the default): the application's global provider, *if the application has set one*
  (``opentelemetry.trace.set_tracer_provider``, or running under ``opentelemetry-instrument``)
  before the client is built; otherwise no tracing. This is how natively instrumented libraries
  behave (they follow the application's OpenTelemetry setup), checked without importing anything:
  when ``opentelemetry.trace`` is not in ``sys.modules`` nobody configured it;
- ``True``: the global provider whenever it is set, also later (OpenTelemetry's proxy);
- ``False``: never.

The gateway is an application, so it may also build a provider of its own from the standard
``OTEL_*`` variables (``provider_from_environment``, for ``qwenkit serve``).

**The span** (``TracingPolicy``, the outermost pipeline step): one per call of the pipeline,
``chat {model}``, kind ``CLIENT``, current while the call runs (an instrumented HTTP client's
spans nest under it) and ended when the call ends, however it ends. It starts when the call
starts (before routing, admission and retries) and ends after the usage record is written, so it
covers exactly what ``UsageRecord.latency_s`` measures, including retries and model fallbacks
(``qwenkit.attempts``). Attributes:

- GenAI: ``gen_ai.operation.name`` (``chat``), ``gen_ai.provider.name`` and the older
  ``gen_ai.system`` (``dashscope``; the conventions list no value for DashScope/Alibaba Cloud;
  ``openai_compatible`` for a self-hosted server), ``gen_ai.request.model`` (the model sent, after
  routing and fallback), ``gen_ai.request.max_tokens``/``temperature``/``top_p``/``top_k``/
  ``seed``/``presence_penalty``/``frequency_penalty`` when set, ``gen_ai.request.stream``,
  ``gen_ai.output.type`` (``json`` with a JSON response format), ``gen_ai.response.model``,
  ``gen_ai.response.id`` (the service's request id), ``gen_ai.response.finish_reasons``,
  ``gen_ai.response.time_to_first_chunk`` (seconds), ``gen_ai.usage.input_tokens``,
  ``gen_ai.usage.output_tokens``, ``gen_ai.usage.cache_read.input_tokens``,
  ``gen_ai.usage.cache_creation.input_tokens``, ``gen_ai.usage.reasoning.output_tokens``,
  ``server.address``/``server.port`` (the upstream), and on failure ``error.type`` (the service's
  error code, or the exception's class) with the span status ``ERROR``;
- qwenkit's: ``qwenkit.status`` (ok, error, cancelled), ``qwenkit.endpoint``, ``qwenkit.key_id``,
  ``qwenkit.environment``, ``qwenkit.task``, ``qwenkit.region``, ``qwenkit.cost`` and
  ``qwenkit.currency``, ``qwenkit.cache_hit``, ``qwenkit.attempts``, ``qwenkit.http_status``.

Token counts, cost, status and attempts are read from the call's ``UsageRecord`` (``recorded``),
so spans, logs, metrics and the ledger always agree. No prompt, completion, reasoning or tool
argument text is ever put on a span, nor an error *message* (a service's message can quote the
input): the status description is the error code.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from qwenkit._core.pipeline import Call, EventStream, Handler
from qwenkit._core.usage import UsageRecord, recorded
from qwenkit._version import __version__
from qwenkit.types import ResponseStarted

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.trace import Span, TracerProvider

__all__ = [
    "PROVIDER_NAMES",
    "TracingPolicy",
    "exporter_configured",
    "provider_from_environment",
    "resolve_provider",
]

PROVIDER_NAMES = {"dashscope": "dashscope", "openai-compatible": "openai_compatible"}
"""``gen_ai.provider.name`` by upstream flavour."""
_SCHEMA_URL = "https://opentelemetry.io/schemas/1.40.0"
_log = logging.getLogger(__name__)


def resolve_provider(given: TracerProvider | bool | None) -> TracerProvider | None:
    """The provider a client traces to, or ``None`` (no tracing); see the module docstring."""
    if given is False:
        return None
    if given is None:
        trace = sys.modules.get("opentelemetry.trace")
        if trace is None:  # nobody imported OpenTelemetry, so nobody configured it
            return None
        provider: TracerProvider = trace.get_tracer_provider()
        return None if isinstance(provider, trace.ProxyTracerProvider) else provider
    if given is True:
        from opentelemetry import trace as api

        return api.get_tracer_provider()
    return given


def exporter_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the standard variables ask for exported traces: ``OTEL_TRACES_EXPORTER`` set to
    anything but ``none``, or an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def provider_from_environment(service_name: str = "qwenkit-gateway") -> SdkTracerProvider:
    """An SDK ``TracerProvider`` exporting in batches to the exporters of ``OTEL_TRACES_EXPORTER``
    (default ``otlp``: OTLP over HTTP/protobuf to ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, else
    ``http://localhost:4318``; ``console``; or any installed ``opentelemetry_traces_exporter``
    entry point). The resource, sampler and limits follow the SDK's own variables
    (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``...);
    ``service.name`` is ``service_name`` unless they name one. Shut it down to flush."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as Provider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes: dict[str, Any] = {"service.version": __version__}
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    if not named:
        attributes["service.name"] = service_name
    provider = Provider(resource=Resource.create(attributes))
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp") or "otlp"
    for name in (part.strip().lower() for part in names.split(",")):
        if name and name != "none":
            provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    return provider


def _exporter(name: str) -> Any:
    from importlib.metadata import entry_points

    from qwenkit._settings import ConfigError

    if name == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        name = "otlp_proto_grpc" if protocol.strip() == "grpc" else "otlp_proto_http"
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        raise ConfigError(
            f"no OpenTelemetry trace exporter {name!r} is installed (OTEL_TRACES_EXPORTER); "
            "`pip install 'qwenkit[otel]'` brings OTLP over HTTP and the console exporter"
        )
    return next(iter(found)).load()()


class TracingPolicy:
    """One ``CLIENT`` span per call; see the module docstring. Put it first (outermost), before
    the usage policy: it reads the call's usage record when the call ends."""

    def __init__(
        self,
        provider: TracerProvider,
        *,
        flavour: str = "dashscope",
        base_url: str | None = None,
    ) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = provider.get_tracer("qwenkit", __version__, schema_url=_SCHEMA_URL)
        provider_name = PROVIDER_NAMES.get(flavour, flavour)
        self._static: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider_name,
            "gen_ai.system": provider_name,
        }
        if base_url:
            import httpx

            url = httpx.URL(base_url)
            if url.host:
                self._static["server.address"] = url.host
                self._static["server.port"] = url.port or (443 if url.scheme == "https" else 80)

    async def __call__(self, call: Call, call_next: Handler) -> EventStream:
        trace = self._trace
        model = call.request.model
        span = self._tracer.start_span(
            f"chat {model}" if model else "chat",
            kind=trace.SpanKind.CLIENT,
            attributes={**self._static, **({"gen_ai.request.model": model} if model else {})},
        )
        error: BaseException | None = None
        response_model: str | None = None
        stream = call_next(call)
        try:
            while True:
                with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                    try:  # current only while the call runs: never across a yield
                        event = await anext(stream)
                    except StopAsyncIteration:
                        break
                if response_model is None and isinstance(event, ResponseStarted):
                    response_model = event.model or None
                yield event
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                    await _aclose(stream)  # the usage record is written now (its logs traced)
            finally:
                self._end(span, call, error, response_model)

    def _end(
        self, span: Span, call: Call, error: BaseException | None, response_model: str | None
    ) -> None:
        try:
            if span.is_recording():
                model = call.request.model
                if model:
                    span.update_name(f"chat {model}")
                span.set_attributes(_request_attributes(call))
                if response_model or model:
                    span.set_attribute("gen_ai.response.model", response_model or model)
                record = recorded(call)
                if record is not None:
                    span.set_attributes(_record_attributes(record))
                self._status(span, record, error)
        except Exception:  # tracing never breaks a call
            _log.exception("could not finish the span of a call")
        finally:
            span.end()

    def _status(self, span: Span, record: UsageRecord | None, error: BaseException | None) -> None:
        failed = isinstance(error, Exception) or (record is not None and record.status == "error")
        if not failed:
            return
        kind = (record.error_code if record is not None else None) or (
            type(error).__qualname__ if error is not None else "error"
        )
        span.set_attribute("error.type", kind)
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, kind))

    def __repr__(self) -> str:
        return f"TracingPolicy({self._static['gen_ai.provider.name']!r})"


def _request_attributes(call: Call) -> dict[str, Any]:
    request = call.request
    attributes: dict[str, Any] = {
        "gen_ai.request.stream": bool(
            call.stream if call.upstream_stream is None else call.upstream_stream
        )
    }
    if request.model:
        attributes["gen_ai.request.model"] = request.model
    for name in ("max_tokens", "temperature", "top_p", "top_k", "seed", "presence_penalty",
                 "frequency_penalty"):  # fmt: skip
        value = getattr(request, name, None)
        if value is not None:
            attributes[f"gen_ai.request.{name}"] = value
    response_format = getattr(request, "response_format", None)
    if response_format is not None:
        attributes["gen_ai.output.type"] = "text" if response_format.type == "text" else "json"
    return attributes


def _record_attributes(record: UsageRecord) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.usage.input_tokens": record.prompt_tokens,
        "gen_ai.usage.output_tokens": record.completion_tokens,
        "gen_ai.usage.cache_read.input_tokens": record.cached_tokens,
        "gen_ai.usage.cache_creation.input_tokens": record.cache_creation_tokens,
        "gen_ai.usage.reasoning.output_tokens": record.reasoning_tokens,
        "qwenkit.status": record.status,
        "qwenkit.cache_hit": record.cache_hit,
        "qwenkit.attempts": record.attempts,
    }
    optional = {
        "gen_ai.response.id": record.request_id,
        "gen_ai.response.time_to_first_chunk": record.ttft_s,
        "qwenkit.endpoint": record.endpoint,
        "qwenkit.key_id": record.key_id,
        "qwenkit.environment": record.environment,
        "qwenkit.task": record.task,
        "qwenkit.region": record.region,
        "qwenkit.cost": None if record.cost is None else float(record.cost),
        "qwenkit.currency": record.currency,
        "qwenkit.http_status": record.http_status,
    }
    attributes.update({name: value for name, value in optional.items() if value is not None})
    if record.finish_reason:
        attributes["gen_ai.response.finish_reasons"] = (record.finish_reason,)
    return attributes


async def _aclose(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
