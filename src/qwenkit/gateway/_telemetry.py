"""The gateway's traces: which ``TracerProvider`` (``gateway_provider``) and the ``SERVER`` span of
each HTTP request (``ServerSpans``, pure ASGI middleware).

**Configuration**, strongest first: a provider passed to ``Gateway(tracer_provider=...)``;
``[gateway] otel = false`` (``QWENKIT_GATEWAY_OTEL=false``) turns tracing off whatever else
says; the application's global provider when one is set (``opentelemetry-instrument qwenkit
serve``); else the gateway builds its own (``qwenkit._core.telemetry.provider_from_environment``:
OTLP over HTTP, the ``OTEL_*`` variables) when ``otel = true`` or the standard variables configure
an exporter (``OTEL_TRACES_EXPORTER`` other than ``none``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``). Otherwise nothing is traced and OpenTelemetry is never
imported. The gateway shuts down a provider it built (flushing its spans) when it closes; it never
sets the global provider.

**The server span** of a request: ``{method} {route}`` (``POST /v1/chat/completions``), kind
``SERVER``, continuing the caller's W3C ``traceparent``/``tracestate`` (``propagate.extract``), with
``http.request.method``, ``http.route``, ``url.path``, ``url.scheme``, ``server.address``/
``server.port``, ``client.address``, ``user_agent.original``, ``http.response.status_code`` and
``qwenkit.request_id`` (the gateway's id of the request); a 5xx sets ``error.type`` and the status
``ERROR`` (a 4xx is the caller's error, not the server's). It lasts until the last byte of the
answer is sent (a stream included), and the model call's ``chat {model}`` span is its child.
``/healthz``, ``/readyz`` and ``/metrics`` are not traced (probes and scrapes would drown the
traces). Query strings and headers other than the user agent are never recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qwenkit._core.telemetry import exporter_configured, provider_from_environment, resolve_provider
from qwenkit.gateway._config import GatewayConfig
from qwenkit.gateway._logging import request_id

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["ServerSpans", "gateway_provider"]

UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})


def gateway_provider(
    config: GatewayConfig, given: TracerProvider | None
) -> tuple[TracerProvider | None, bool]:
    """(the provider, whether the gateway built it and must shut it down); see the docstring."""
    if given is not None:
        return given, False
    if config.otel is False:
        return None, False
    global_provider = resolve_provider(None)
    if global_provider is not None:
        return global_provider, False
    if config.otel or exporter_configured():
        return provider_from_environment(), True
    return None, False


class ServerSpans:
    """The ``SERVER`` span of each HTTP request; see the module docstring."""

    def __init__(
        self, app: ASGIApp, *, provider: TracerProvider, routes: Sequence[BaseRoute]
    ) -> None:
        from opentelemetry import propagate, trace

        from qwenkit._version import __version__

        self.app = app
        self.routes = tuple(routes)
        self._trace = trace
        self._propagate = propagate
        self._tracer = provider.get_tracer("qwenkit.gateway", __version__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED:
            await self.app(scope, receive, send)
            return
        trace = self._trace
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        route = self._route(scope)
        method = scope["method"]
        status: dict[str, int] = {}

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        with self._tracer.start_as_current_span(
            f"{method} {route}" if route else method,
            context=self._propagate.extract(headers),
            kind=trace.SpanKind.SERVER,
            attributes=_request_attributes(scope, headers, route),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__qualname__))
                raise
            finally:
                code = status.get("code")
                if code is not None:
                    span.set_attribute("http.response.status_code", code)
                    if code >= 500:
                        span.set_attribute("error.type", str(code))
                        span.set_status(trace.Status(trace.StatusCode.ERROR))
                served = request_id.get()
                if served is not None:
                    span.set_attribute("qwenkit.request_id", served)

    def _route(self, scope: Scope) -> str | None:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                path = getattr(route, "path", None)
                return path if isinstance(path, str) else None
        return None


def _request_attributes(scope: Scope, headers: dict[str, str], route: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "http.request.method": scope["method"],
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
    }
    if route:
        attributes["http.route"] = route
    server = scope.get("server")
    if server and server[0]:
        attributes["server.address"] = server[0]
        if server[1] is not None:
            attributes["server.port"] = server[1]
    client = scope.get("client")
    if client and client[0]:
        attributes["client.address"] = client[0]
    agent = headers.get("user-agent")
    if agent:
        attributes["user_agent.original"] = agent
    if scope.get("http_version"):
        attributes["network.protocol.version"] = scope["http_version"]
    return attributes
