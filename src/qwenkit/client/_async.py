"""``AsyncQwen``: the client, and the one implementation under ``Qwen`` (its sync twin).

A client holds its configuration (``Settings``), one pooled ``httpx.AsyncClient`` and the pipeline
every call goes through, outermost first::

    TracingPolicy                     only when tracing: one OpenTelemetry span per call
    UsagePolicy                       one usage record per call (sees every outcome)
    FallbackPolicy                    only with ``fallbacks=``: the next model on a retryable failure
    RoutePolicy … ContextWindowPolicy  the request policies (``default_policies``)
    BudgetPolicy                      only with ``budget=...``: admit (reserve), then settle
    ObservePolicy                     timings and the reasoning side channel
    CachePolicy                       only with ``cache=...``
    Send(Upstream)                    retries, total timeout, the HTTP attempt

**Storage** (``qwenkit.storage``): ``store="sqlite:///qwenkit.db"`` (or a ``Store``, or
``QWENKIT_STORE_URL``/``QWENKIT_LEDGER_URL``... in the settings) appends every usage record to
the store's ledger, batched off the request path; ``budget=Limits(daily_cost=Decimal("5"))``
reserves each call's worst-case cost against it before sending (``BudgetExceededError`` when it
does not fit) and settles the real cost after; ``cache=True`` uses the store's response cache.
``tags`` label every record (``endpoint``, ``environment``, ``key_id``); ``with_tags`` gives a
client sharing everything but its tags.

``chat()`` and ``stream()`` build a ``Call`` from their arguments and run it: ``stream()`` returns
the events as they come (``AsyncChatStream``), ``chat()`` consumes them into a ``ChatResult``. Both
take messages as a string (one user message), plain or OpenAI-style dicts, or canonical messages;
``model``, ``task`` (routed through the catalog: model, temperature, thinking, ``max_tokens``),
``thinking`` and any other request parameter (``temperature``, ``max_tokens``, ``tools``,
``response_format``, ``thinking_budget``...; unknown ones are passed through). What the caller
sets explicitly always wins over the task's route and the model's defaults; a ``None`` value means
"not set".

Built on these: ``json``, ``json_result``, ``stream_json``, ``extract`` and ``stream_extract``
(JSON mode and structured output, ``qwenkit.client._structured``) and ``submit`` (a call as a
task, ``qwenkit.client._tasks``).

Where requests go: DashScope (``upstream="dashscope"``, the default) in the ``compat`` or
``native`` mode of the settings, at the region's URLs or ``base_url`` (as pasted: a root serving
both modes, ``.../compatible-mode/v1`` or ``.../api/v1``; see ``qwenkit._settings``); or an
OpenAI-compatible server (``upstream="openai-compatible"``: vLLM, SGLang; ``base_url`` is then
its ``.../v1`` URL, the key optional).
Costs are computed for DashScope only. ``upstreams=`` names other regions or servers
(``UpstreamSpec``) that ``fallbacks=`` may send a call to (``"qwen-plus@virginia"``; see
``qwenkit._core.upstreams``).

**Tracing** (``qwenkit._core.telemetry``): ``tracer_provider=`` an OpenTelemetry
``TracerProvider`` gives one span per call (the GenAI conventions, never prompt or answer text);
by default the application's global provider is used when it has set one before the client is
built (``True``: the global one even if set later; ``False``: never). Without either,
OpenTelemetry is not imported.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from qwenkit._core.cache import CachePolicy, ResponseCache
from qwenkit._core.observe import ObservePolicy, ReasoningCallback
from qwenkit._core.pipeline import Call, Pipeline, Policy
from qwenkit._core.policies import default_policies
from qwenkit._core.policies.fallback import FallbackPolicy
from qwenkit._core.retries import RetryPolicy
from qwenkit._core.send import Send
from qwenkit._core.telemetry import TracingPolicy, resolve_provider
from qwenkit._core.transport import Flavour, Upstream
from qwenkit._core.upstreams import Upstreams, UpstreamSpec
from qwenkit._core.usage import PromptCapture, UsagePolicy, UsageSink
from qwenkit._exceptions import UsageError
from qwenkit._settings import Mode, Region, Settings
from qwenkit._timeouts import Timeout
from qwenkit.catalog import Catalog, Router, TaskKind, default_catalog
from qwenkit.client._call import MessagesInput, make_call
from qwenkit.client._result import AsyncChatStream, ChatResult, build_result
from qwenkit.client._structured import AsyncStructuredMixin
from qwenkit.client._tasks import AsyncTask, BackgroundJobs, LocalTask
from qwenkit.client._tasks_server import ServerTask, TaskContext, submit_server
from qwenkit.storage import Limits, Store
from qwenkit.storage._urls import configured_url
from qwenkit.types import ChatRequest

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["AsyncQwen"]


class AsyncQwen(AsyncStructuredMixin):
    """The asynchronous Qwen client; see the module docstring. Close it (``await aclose()`` or
    ``async with``) to release its connections; a passed ``http_client`` is left open. JSON mode
    and extraction (``json``, ``extract``...) come from ``AsyncStructuredMixin``."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        region: Region | str | None = None,
        mode: Mode | None = None,
        base_url: str | None = None,
        settings: Settings | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        catalog: Catalog | None = None,
        router: Router | None = None,
        default_model: str = "qwen-plus",
        hard_max_tokens: int | None = 8192,
        check_context: bool = True,
        on_reasoning: ReasoningCallback | None = None,
        usage_sinks: Sequence[UsageSink] | None = None,
        cache: ResponseCache | bool | None = None,
        upstream: Flavour = "dashscope",
        store: str | Store | None = None,
        budget: Limits | Mapping[str, Limits] | Callable[[Call], Any] | None = None,
        tags: Mapping[str, str] | None = None,
        prompt_capture: PromptCapture | None = None,
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        upstreams: Mapping[str, UpstreamSpec | Settings] | None = None,
        tracer_provider: TracerProvider | bool | None = None,
    ) -> None:
        self.settings = _settings(
            settings, upstream, api_key=api_key, region=region, mode=mode, base_url=base_url
        )
        self.tags: dict[str, str] = dict(tags or {})
        """Labels of every call's usage record (``endpoint``, ``environment``, ``key_id``)."""
        self.timeout = Timeout.coerce(timeout)
        self.retry = retry or RetryPolicy()
        if catalog is None:
            path = self.settings.catalog_file
            catalog = Catalog.load(path) if path is not None else default_catalog()
        self.catalog = catalog
        self.router = router or Router(catalog, overrides=self.settings.routes_file)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=self.timeout.to_httpx())
        self.upstream = Upstream(self._http, self.settings, flavour=upstream, timeout=self.timeout)
        self.upstreams = Upstreams(self.upstream, upstreams, http=self._http, timeout=self.timeout)
        """This client's upstream and the named ones fallbacks may send calls to."""
        region_name = self.settings.region.value
        priced_in = region_name if upstream == "dashscope" else ""  # self-hosted: not priced
        self._owns_store = not isinstance(store, Store)
        self.store = _open_store(store, self.settings, budget=budget is not None, cache=cache)
        """The ``Store`` of the ledger, budgets and cache (``None`` without one)."""
        sinks = list(usage_sinks) if usage_sinks is not None else None
        if self.store is not None and self.store.ledger is not None:
            sinks = [*(sinks if sinks is not None else _default_sinks()), self.store.ledger]
        self._usage = UsagePolicy(sinks, region=priced_in, catalog=catalog, capture=prompt_capture)
        response_cache = _response_cache(cache, self.store)
        policies: list[Policy] = [*self._tracing(tracer_provider, upstream), self._usage]
        if fallbacks:
            policies.append(FallbackPolicy(fallbacks, self.upstreams))
        policies += [
            *default_policies(
                catalog=catalog,
                router=self.router,
                default_model=default_model,
                hard_max_tokens=hard_max_tokens,
                check_context=check_context,
            ),
        ]
        if budget is not None:
            policies.append(self._budget_policy(budget, region_name, upstream))
        policies.append(ObservePolicy(on_reasoning))
        self.cache_policy: CachePolicy | None = None
        """The response cache step (``None`` without a cache); ``cache_policy.stats`` counts
        hits and misses per endpoint tag."""
        if response_cache is not None:
            self.cache_policy = CachePolicy(response_cache)
            policies.append(self.cache_policy)
        self.pipeline = Pipeline(
            policies, Send(self.upstreams.events, retry=self.retry, timeout=self.timeout)
        )
        self._finish = functools.partial(
            build_result, region=region_name if upstream == "dashscope" else None, catalog=catalog
        )
        self._jobs = BackgroundJobs()
        self._tasks = TaskContext(
            self.settings, self._http, self.pipeline, upstream == "dashscope", self._finish
        )

    def _tracing(self, given: TracerProvider | bool | None, upstream: Flavour) -> list[Policy]:
        provider = resolve_provider(given)
        if provider is None:
            return []
        return [TracingPolicy(provider, flavour=upstream, base_url=self.upstream.base_url)]

    def _budget_policy(
        self,
        budget: Limits | Mapping[str, Limits] | Callable[[Call], Any],
        region: str,
        upstream: Flavour,
    ) -> Policy:
        from qwenkit.storage._admission import BudgetPolicy

        if self.store is None or self.store.budgets is None:
            raise UsageError(
                "budget= needs a store for its counters: store='sqlite:///qwenkit.db' (or "
                "QWENKIT_STORE_URL / QWENKIT_BUDGETS_URL)"
            )
        scopes: Any
        if isinstance(budget, Limits):
            scopes = {"sdk": budget}
        elif callable(budget):
            scopes = budget  # the scopes of each call (the gateway: the caller's key and env)
        else:
            scopes = dict(budget)
        return BudgetPolicy(
            self.store.budgets,
            scopes,
            catalog=self.catalog,
            region=region if upstream == "dashscope" else None,
        )

    def with_tags(self, **tags: str) -> AsyncQwen:
        """A client sharing this one's connections, pipeline and store, whose calls carry
        ``tags`` too (``client.with_tags(endpoint="summarize")``). Close the original, not it."""
        twin = copy.copy(self)
        twin.tags = {**self.tags, **tags}
        twin._owns_http = twin._owns_store = False
        return twin

    @property
    def http_client(self) -> httpx.AsyncClient:
        """The pooled HTTP client every request of this client goes through."""
        return self._http

    async def chat(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        task: TaskKind | str | None = None,
        thinking: bool | None = None,
        **params: Any,
    ) -> ChatResult:
        """One answer. Thinking (asked for, from the task, or the model's) streams upstream and
        is aggregated here; the reasoning is only in ``result.reasoning``."""
        call = self._make_call(messages, model, task, thinking, params)
        async with self._open(call) as stream:
            return await stream.get_result()

    def stream(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        task: TaskKind | str | None = None,
        thinking: bool | None = None,
        **params: Any,
    ) -> AsyncChatStream:
        """The events of one answer as they arrive; nothing is sent until the first is awaited.
        Use ``async with`` (or ``aclose()``) so that stopping early closes the connection."""
        call = self._make_call(messages, model, task, thinking, params, stream=True)
        return self._open(call)

    def _make_call(
        self,
        messages: MessagesInput,
        model: str | None,
        task: TaskKind | str | None,
        thinking: bool | None,
        params: Mapping[str, Any],
        *,
        stream: bool = False,
    ) -> Call:
        """``make_call``; input it refuses still leaves a usage record (status ``error``)."""
        try:
            call = make_call(
                messages, model=model, task=task, thinking=thinking, params=params, stream=stream
            )
        except UsageError as error:
            unusable = ChatRequest.model_construct(model=model or "", messages=[])
            rejected = Call(request=unusable, task=str(task or "") or None, tags=dict(self.tags))
            self._usage.record_rejection(rejected, error)
            raise
        call.tags.update(self.tags)
        return call

    async def submit_call(self, call: Call) -> ServerTask:
        """Submit a ``Call`` made by a door built on this client (the gateway) as a service
        task; ``submit(server=True)`` for everyone else."""
        return await submit_server(self._tasks, call)

    def resume_task(
        self,
        task_id: str,
        *,
        model: str,
        tags: Mapping[str, str] | None = None,
        request_id: str | None = None,
        task: str | None = None,
    ) -> ServerTask:
        """A service task submitted earlier (by this process or another: the gateway's
        processes share their tasks through the store), followed through this client; its
        outcome is recorded under ``model`` and ``tags`` when ``result()`` first reads it."""
        request = ChatRequest.model_construct(model=model, messages=[])
        call = Call(request=request, task=task, tags={**self.tags, **(tags or {})})
        call.request_id = request_id
        call.profile = self.catalog.get(model) if model in self.catalog else None
        return ServerTask(self._tasks, call, task_id)

    def record_rejection(self, call: Call, error: BaseException) -> None:
        """Leave the usage record of a call refused before it reached the pipeline (by a door
        built on this client: the gateway's auth and input checks)."""
        self._usage.record_rejection(call, error)

    def _open(self, call: Call) -> AsyncChatStream:
        return AsyncChatStream(self.pipeline.run(call), call, self._finish)

    async def submit(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        task: TaskKind | str | None = None,
        thinking: bool | None = None,
        server: bool = False,
        **params: Any,
    ) -> AsyncTask:
        """The call as a task (``qwenkit.client._tasks``): a background job of this client, or
        with ``server=True`` a task of the service (``X-DashScope-Async``; not for real text
        models; a task cannot stream, so it does not think unless asked to)."""
        if not server:
            work = self.chat(messages, model=model, task=task, thinking=thinking, **params)
            return LocalTask(self._jobs, work)
        thinking = False if thinking is None else thinking
        call = self._make_call(messages, model, task, thinking, params)
        return await submit_server(self._tasks, call)

    async def aclose(self) -> None:
        """Cancel the background tasks, close the connection pool (unless passed in), then flush
        the ledger and close the store (unless passed in as a ``Store``)."""
        await self._jobs.aclose()
        if self._owns_http:
            await self._http.aclose()
        if self.store is not None and self._owns_store:
            await self.store.aclose()

    async def __aenter__(self) -> AsyncQwen:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.upstream.describe()}>"


def _open_store(
    store: str | Store | None, settings: Settings, *, budget: bool, cache: object
) -> Store | None:
    """The client's store: the one given, or opened from a URL or the settings (the ledger; the
    budgets with ``budget=``; the cache with ``cache=True``). ``None`` when none is set."""
    if isinstance(store, Store):
        return store
    parts: list[Any] = ["ledger"]
    if budget:
        parts.append("budgets")
    if cache is True:
        parts.append("cache")
    if store is None and not any(configured_url(settings, part) for part in parts):
        return None
    return Store.open(store, settings=settings, parts=parts)


def _default_sinks() -> list[UsageSink]:
    from qwenkit._core.usage import LoggingSink

    return [LoggingSink()]


def _response_cache(
    cache: ResponseCache | bool | None, store: Store | None
) -> ResponseCache | None:
    if cache is True:
        if store is None or store.cache is None:
            raise UsageError(
                "cache=True needs a store with a cache: store='sqlite:///qwenkit.db' (or "
                "QWENKIT_CACHE_URL), or pass a cache (cache=MemoryCache())"
            )
        return store.cache
    if cache is False or cache is None:
        return None
    return cache


def _settings(settings: Settings | None, upstream: Flavour, **overrides: Any) -> Settings:
    """The settings given (or loaded from env and config file) with the explicit arguments on top.
    For an OpenAI-compatible upstream, ``base_url`` is that server's exact base URL."""
    given = {name: value for name, value in overrides.items() if value is not None}
    if upstream == "openai-compatible" and "base_url" in given:
        given["compat_base_url"] = given.pop("base_url")
    if settings is None:
        return Settings.load(**given)
    if not given:
        return settings
    return Settings(**{**settings.model_dump(exclude_unset=True), **given})
