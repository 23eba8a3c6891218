"""The gateway: ``Gateway`` (the SDK's client behind HTTP doors) and ``create_app``.

One ``AsyncQwen`` holds the pipeline every request goes through: the request policies (route,
``max_tokens``, thinking, history, parameters, context window), the budget admission and
settlement (the scopes of the caller's key and environment), the response cache, the upstream
call with its retries, and the usage record that lands in the ledger. A route only reads the
caller's request in its wire format (``_inbound``), names the caller (``_auth``), runs the
``Call`` and writes the answer in the same format (``_responses``). A request refused before the
pipeline (no key, a malformed body) still leaves its ledger record.

Routes: ``POST /compatible-mode/v1/chat/completions`` and ``/v1/chat/completions``, ``GET
.../models``; ``WS /compatible-mode/v1/chat/completions/ws`` and ``/v1/chat/completions/ws``
(the same requests as WebSocket messages, ``_websocket``); ``POST
/api/v1/services/aigc/text-generation/generation`` and ``.../multimodal-generation/generation``
(with ``X-DashScope-Async: enable``: a task, ``_tasks``), ``GET /api/v1/tasks/{id}``; ``GET
/healthz``, ``/readyz``, ``/metrics``; the admin API (``_admin``). Headers:
``X-Qwenkit-Task`` (route by task kind), ``X-Qwenkit-Endpoint`` (the endpoint tag of the
usage record and the reports).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from qwenkit._core.pipeline import Call
from qwenkit._core.policies._base import CALLER_MAX_TOKENS
from qwenkit._core.transport import Flavour
from qwenkit._core.upstreams import UpstreamSpec
from qwenkit._settings import Settings
from qwenkit.client import AsyncQwen
from qwenkit.gateway._admin import admin_routes
from qwenkit.gateway._auth import Caller, authenticate, check_model
from qwenkit.gateway._config import GatewayConfig
from qwenkit.gateway._errors import GatewayError, error_info
from qwenkit.gateway._inbound import Inbound, Wire, read_inbound
from qwenkit.gateway._logging import AccessLog, bind_request_id
from qwenkit.gateway._metrics import GatewayMetrics
from qwenkit.gateway._responses import RelayedStream, answer_body, error_response, json_response
from qwenkit.gateway._tasks import TaskBook
from qwenkit.gateway._telemetry import ServerSpans, gateway_provider
from qwenkit.gateway._upstream_client import upstream_client
from qwenkit.gateway._websocket import ChatSocket
from qwenkit.gateway.dashboard import dashboard_routes
from qwenkit.storage import Limits, Store
from qwenkit.storage._tasks import SQLTasks
from qwenkit.storage._urls import Part, configured_url, default_store_url
from qwenkit.streaming import StreamAssembler
from qwenkit.types import ChatRequest, Event, ReasoningDelta
from qwenkit.wire import compat, native

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["Gateway", "create_app"]

_log = logging.getLogger("qwenkit.gateway")
_reasoning_log = logging.getLogger("qwenkit.gateway.reasoning")
_CALLER = "gateway.caller"
_PARTS: tuple[Part, ...] = ("ledger", "budgets", "cache", "keys")


class Gateway:
    """The SDK client behind the gateway's routes; see the module docstring.

    ``store`` defaults to ``Store.open(config.store_url)`` (the embedded SQLite file when no URL
    is configured anywhere); ``settings``/``http_client``/``upstream`` (default:
    ``config.upstream``) configure the upstream as for ``AsyncQwen`` (an ``http_client`` over
    ``httpx.ASGITransport`` mounts an in-process emulator). ``tracer_provider`` traces requests
    and model calls to it (else the configured one, if any; ``qwenkit.gateway._telemetry``)."""

    def __init__(
        self,
        config: GatewayConfig | None = None,
        *,
        settings: Settings | None = None,
        http_client: httpx.AsyncClient | None = None,
        upstream: Flavour | None = None,
        store: Store | None = None,
        tracer_provider: TracerProvider | None = None,
        **client_options: Any,
    ) -> None:
        self.config = config or GatewayConfig()
        self.metrics = GatewayMetrics()
        self.tracer_provider, self._owns_provider = gateway_provider(self.config, tracer_provider)
        self._owns_store = store is None
        self.store = store or _open_store(self.config.store_url, settings)
        self._owns_http = http_client is None
        if http_client is None:
            http_client = upstream_client()
        self.client = AsyncQwen(
            settings=settings,
            http_client=http_client,
            upstream=upstream or self.config.upstream,
            store=self.store,
            budget=self._scopes if self.store.budgets is not None else None,
            cache=True if self.config.cache and self.store.cache is not None else None,
            usage_sinks=[self.metrics, AccessLog()],
            fallbacks=self.config.fallbacks or None,
            upstreams=self._upstreams(settings),
            tracer_provider=self.tracer_provider or False,
            **client_options,
        )
        shared = SQLTasks(self.store.urls["keys"]) if self.store.keys is not None else None
        self.tasks = TaskBook(self.client, shared)
        if self.store.ledger is not None:
            self.metrics.watch_ledger(self.store.ledger)
        master = self.config.master_key
        self._master = master.get_secret_value() if master is not None else None
        self.lint_findings: dict[str, str] = {}
        """The prompt-cache lint's last finding per endpoint tag (the dashboard shows them)."""

    @property
    def master_key(self) -> str | None:
        """The admin key (never logged)."""
        return self._master

    def _upstreams(self, settings: Settings | None) -> dict[str, UpstreamSpec] | None:
        """The named upstreams of the configuration, over the gateway's own settings."""
        if not self.config.upstreams:
            return None
        base = settings or Settings.load()
        return {name: entry.spec(name, base) for name, entry in self.config.upstreams.items()}

    # -- the budget scopes of a call ---------------------------------------------------------

    async def _scopes(self, call: Call) -> Mapping[str, Limits]:
        caller: Caller | None = call.state.get(_CALLER)
        if caller is None or caller.key is None:
            return {}
        scopes = {f"key:{caller.key.id}": caller.key.limits}
        environment = caller.key.environment
        if environment and self.store.keys is not None:
            limits = await self.store.keys.environment(environment)
            if limits is not None:
                scopes[f"env:{environment}"] = limits
        return scopes

    # -- the chat routes ---------------------------------------------------------------------

    async def chat(self, request: Request, wire: Wire) -> Response:
        request_id = str(uuid.uuid4())
        bind_request_id(request_id, request.method, request.url.path)
        stream_hint = wire == "native" and _native_stream_header(request)
        call = Call(request=ChatRequest.model_construct(model="", messages=[]))
        call.tags["endpoint"] = request.headers.get("x-qwenkit-endpoint") or ""
        try:
            caller = await authenticate(
                request,
                keys=self.store.keys,
                master_key=self._master,
                required=self.config.require_keys,
            )
            _tag(call, caller)
            inbound = await read_inbound(request, wire, self.config)
            stream_hint = inbound.stream
            call.request = inbound.request
            check_model(caller, inbound.request.model)
            if inbound.async_task and caller.key is not None and not caller.key.limits.empty:
                raise GatewayError.of(
                    "InvalidParameter",
                    "Asynchronous tasks are not available to a key with a budget or rate "
                    "limit (a task outlives the reservation of one call).",
                )
        except GatewayError as exc:
            call.request_id = request_id  # the id of the answer, so the log finds the refusal
            self.client.record_rejection(_clean(call), exc)
            return error_response(exc.error, wire=wire, stream=stream_hint, request_id=request_id)
        call = _call_of(inbound, request, call.tags)
        call.request_id = request_id  # until the upstream names the call (a refusal keeps it)
        _attach(call, caller)
        if inbound.async_task:
            return await self._submit(call, caller, request_id)
        events = self.client.pipeline.run(call)
        if inbound.stream:
            return await self._stream(events, call, inbound, request_id)
        return await self._whole(events, call, inbound, request_id)

    async def _whole(
        self, events: AsyncIterator[Event], call: Call, inbound: Inbound, request_id: str
    ) -> Response:
        assembler = StreamAssembler()
        try:
            async for event in events:
                assembler.add(event)
            response = assembler.result()
        except Exception as exc:
            error = error_info(exc, request_id=call.request_id or request_id)
            return error_response(error, wire=inbound.wire, stream=False, request_id=request_id)
        finally:
            await _aclose(events)
        mode = self._reasoning(call)
        if mode == "log" and response.reasoning:
            _reasoning_log.debug("request %s reasoning: %s", request_id, response.reasoning)
        body = answer_body(
            response,
            wire=inbound.wire,
            result_format=inbound.result_format,
            reasoning=mode == "pass",
        )
        headers = {"x-request-id": call.request_id or request_id, **self._lint_headers(call)}
        return json_response(200, body, headers | self._cache_header(call))

    def _cache_header(self, call: Call) -> dict[str, str]:
        """``x-qwenkit-cache: hit`` or ``miss`` when the response cache is on (known once the
        first event is out: a hit replays the stored events)."""
        if self.client.cache_policy is None:
            return {}
        return {"x-qwenkit-cache": "hit" if call.cache_hit else "miss"}

    def _lint_headers(self, call: Call) -> dict[str, str]:
        """``x-qwenkit-prompt-cache`` when the prompt-cache lint found dynamic content in the
        system prompt (reported on the first call of each prompt shape)."""
        found = [note for note in call.notes if note.startswith("prompt cache:")]
        if not found:
            return {}
        self.metrics.prompt_cache_warning(call.tags.get("endpoint"))
        finding = found[0].removeprefix("prompt cache:").strip()
        endpoint = call.tags.get("endpoint") or ""
        if endpoint in self.lint_findings or len(self.lint_findings) < 1000:
            self.lint_findings[endpoint] = finding
        return {"x-qwenkit-prompt-cache": finding}

    async def _stream(
        self, events: AsyncIterator[Event], call: Call, inbound: Inbound, request_id: str
    ) -> Response:
        try:  # the first event decides between an error status and a 200 stream
            first = await events.__anext__()
        except StopAsyncIteration:
            first = None
        except Exception as exc:
            await _aclose(events)
            error = error_info(exc, request_id=call.request_id or request_id)
            return error_response(error, wire=inbound.wire, stream=True, request_id=request_id)
        mode = self._reasoning(call)
        keep_reasoning = mode == "pass"

        def keep(event: Event) -> bool:
            if isinstance(event, ReasoningDelta) and not keep_reasoning:
                if mode == "log":
                    _reasoning_log.debug("request %s reasoning: %s", request_id, event.text)
                return False
            return True

        def make_encoder() -> Any:
            if inbound.wire == "compat":
                return compat.StreamEncoder(include_usage=inbound.include_usage)
            incremental = inbound.incremental
            if incremental is None:
                incremental = bool(call.request.enable_thinking)
            return native.StreamEncoder(
                result_format="text" if inbound.result_format == "text" else "message",
                incremental=incremental,
            )

        self.metrics.streams.inc()
        return RelayedStream(
            _prepend(first, events, done=self.metrics.streams.dec),
            make_encoder=make_encoder,
            keep=keep,
            buffer=self.config.relay_buffer,
            keepalive=self.config.keepalive_seconds,
            request_id=lambda: call.request_id or request_id,
            headers={"x-request-id": request_id, **self._lint_headers(call)}
            | self._cache_header(call),
        )

    def _reasoning(self, call: Call) -> str:
        """The reasoning policy of the call's key, else the gateway's."""
        caller: Caller | None = call.state.get(_CALLER)
        chosen = caller.key.reasoning if caller is not None and caller.key is not None else None
        return chosen or self.config.reasoning

    async def websocket(self, websocket: WebSocket) -> None:
        """``WS .../chat/completions/ws``: each message a request to ``chat`` (``_websocket``)."""
        await ChatSocket(self, websocket).run()

    # -- tasks ------------------------------------------------------------------------------

    async def _submit(self, call: Call, caller: Caller, request_id: str) -> Response:
        if call.thinking is None:
            call.thinking = False  # a task cannot stream, so it does not think unless asked
        try:
            task = await self.client.submit_call(call)
        except Exception as exc:
            error = error_info(exc, request_id=call.request_id or request_id)
            return error_response(error, wire="native", stream=False, request_id=request_id)
        try:
            await self.tasks.add(task, caller.key_id)
        except Exception as exc:  # the store failed: the caller could never poll it
            error = error_info(exc, request_id=call.request_id or request_id)
            return error_response(error, wire="native", stream=False, request_id=request_id)
        body = {"output": {"task_id": task.id, "task_status": "PENDING"},
                "request_id": call.request_id or request_id}  # fmt: skip
        return json_response(200, body, {"x-request-id": request_id})

    async def task(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        bind_request_id(request_id, request.method, request.url.path)
        try:
            caller = await authenticate(
                request,
                keys=self.store.keys,
                master_key=self._master,
                required=self.config.require_keys,
            )
            entry = await self.tasks.get(
                request.path_params["task_id"], caller.key_id, master=caller.master
            )
            body = await self.tasks.poll(entry)
        except Exception as exc:
            error = error_info(exc, request_id=request_id)
            return error_response(error, wire="native", stream=False, request_id=request_id)
        return json_response(200, {**body, "request_id": request_id}, {"x-request-id": request_id})

    # -- the other routes --------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        try:
            await authenticate(
                request,
                keys=self.store.keys,
                master_key=self._master,
                required=self.config.require_keys,
            )
        except GatewayError as exc:
            return error_response(
                exc.error, wire="compat", stream=False, request_id=str(uuid.uuid4())
            )
        names = [*self.client.catalog.names(), *self.config.aliases]
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "qwenkit"} for name in names
        ]
        return json_response(200, {"object": "list", "data": data})

    async def metrics_page(self, request: Request) -> Response:
        if not self.config.metrics_public:
            try:
                caller = await authenticate(
                    request, keys=None, master_key=self._master, required=True
                )
            except GatewayError as exc:
                return error_response(
                    exc.error, wire="compat", stream=False, request_id=str(uuid.uuid4())
                )
            if not caller.master:
                return error_response(
                    GatewayError.of("InvalidApiKey", "Metrics need the master key.", status=401).error,
                    wire="compat", stream=False, request_id=str(uuid.uuid4()),
                )  # fmt: skip
        return Response(self.metrics.render(), 200, media_type=CONTENT_TYPE_LATEST)

    async def aclose(self) -> None:
        self.metrics.close()
        await self.tasks.aclose()
        await self.client.aclose()
        if self._owns_http:
            await self.client.http_client.aclose()
        if self._owns_store:
            await self.store.aclose()
        shutdown = getattr(self.tracer_provider, "shutdown", None)
        if self._owns_provider and shutdown is not None:  # flushes the spans still queued
            await anyio.to_thread.run_sync(shutdown)


def _attach(call: Call, caller: Caller) -> None:
    """Give the call its caller: for the budget scopes and the reasoning policy, and the key's
    ``max_tokens`` cap for ``MaxTokensPolicy``."""
    call.state[_CALLER] = caller
    if caller.key is not None and caller.key.max_tokens is not None:
        call.state[CALLER_MAX_TOKENS] = caller.key.max_tokens


def _open_store(url: str | None, settings: Settings | None) -> Store:
    """The store at ``url``, else the one the settings name, else the embedded SQLite file."""
    loaded = settings or Settings.load()
    if url is None and not any(configured_url(loaded, part) for part in _PARTS):
        url = default_store_url()
    return Store.open(url, settings=loaded)


def _tag(call: Call, caller: Caller) -> None:
    if caller.key_id:
        call.tags["key_id"] = caller.key_id
    if caller.environment:
        call.tags["environment"] = caller.environment
    if not call.tags.get("endpoint"):
        call.tags.pop("endpoint", None)


def _clean(call: Call) -> Call:
    if not call.tags.get("endpoint"):
        call.tags.pop("endpoint", None)
    return call


def _call_of(inbound: Inbound, request: Request, tags: Mapping[str, str]) -> Call:
    chat = inbound.request
    return Call(
        request=chat,
        task=request.headers.get("x-qwenkit-task") or None,
        thinking=chat.enable_thinking,
        stream=inbound.stream,
        explicit=inbound.explicit,
        tags={name: value for name, value in tags.items() if value},
    )


def _native_stream_header(request: Request) -> bool:
    sse = request.headers.get("x-dashscope-sse", "").strip().lower() == "enable"
    return sse or "text/event-stream" in request.headers.get("accept", "").lower()


async def _prepend(
    first: Event | None, rest: AsyncIterator[Event], *, done: Callable[[], None]
) -> AsyncIterator[Event]:
    try:
        if first is not None:
            yield first
        async for event in rest:
            yield event
    finally:
        done()
        await _aclose(rest)


async def _aclose(events: AsyncIterator[Event]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


def create_app(
    gateway: Gateway, *, contexts: Sequence[Callable[[], AbstractAsyncContextManager[Any]]] = ()
) -> Starlette:
    """The ASGI app of ``gateway``, closed with the app's lifespan; ``contexts`` are entered
    for the app's lifetime too (``qwenkit serve`` runs an in-process emulator's lifespan so)."""

    async def compat_chat(request: Request) -> Response:
        return await gateway.chat(request, "compat")

    async def native_chat(request: Request) -> Response:
        return await gateway.chat(request, "native")

    async def healthz(request: Request) -> Response:
        return json_response(200, {"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for context in contexts:
                await stack.enter_async_context(context())
            try:
                yield
            finally:
                await gateway.aclose()

    routes = [
        Route("/compatible-mode/v1/chat/completions", compat_chat, methods=["POST"]),
        Route("/v1/chat/completions", compat_chat, methods=["POST"]),
        WebSocketRoute("/compatible-mode/v1/chat/completions/ws", gateway.websocket),
        WebSocketRoute("/v1/chat/completions/ws", gateway.websocket),
        Route("/compatible-mode/v1/models", gateway.models, methods=["GET"]),
        Route("/v1/models", gateway.models, methods=["GET"]),
        Route("/api/v1/services/aigc/text-generation/generation", native_chat, methods=["POST"]),
        Route(
            "/api/v1/services/aigc/multimodal-generation/generation", native_chat, methods=["POST"]
        ),
        Route("/api/v1/tasks/{task_id}", gateway.task, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", healthz, methods=["GET"]),
        Route("/metrics", gateway.metrics_page, methods=["GET"]),
        *admin_routes(gateway.store, gateway.master_key),
        *dashboard_routes(gateway),
    ]
    provider = gateway.tracer_provider
    middleware = [Middleware(ServerSpans, provider=provider, routes=routes)] if provider else []
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.gateway = gateway
    return app
