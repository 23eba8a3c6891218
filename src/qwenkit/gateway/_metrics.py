"""Prometheus metrics of one gateway (``GET /metrics``), from the usage records of its pipeline.

``GatewayMetrics`` is a usage sink of the gateway's client: every record (one per request,
rejected ones included) counts into

- ``qwenkit_gateway_requests_total{endpoint, model, status, code}``: ``status`` ok / error /
  cancelled, ``code`` the HTTP status (``200`` for ok);
- ``qwenkit_gateway_request_duration_seconds{endpoint, model}`` and
  ``qwenkit_gateway_time_to_first_token_seconds{endpoint, model}``: histograms;
- ``qwenkit_gateway_tokens_total{endpoint, model, kind}``: prompt, completion, cached, reasoning;
- ``qwenkit_gateway_cost_total{endpoint, model, currency}``;
- ``qwenkit_gateway_edge_cache_hits_total{endpoint}``;

and at scrape time the ledger's queue and spill counts, the streams being relayed, and the
prompt-cache warnings (``qwenkit_gateway_prompt_cache_warnings_total{endpoint}``).

**Several workers** (``qwenkit serve --workers N``): with ``PROMETHEUS_MULTIPROC_DIR`` set (the
command sets it to a fresh directory), prometheus-client keeps every worker's values in files
there and a scrape of any worker reports the sum over all of them (``MultiProcessCollector``);
the gauges add up the live workers (``livesum``), and a worker that stops marks its files dead.

Labels a caller controls are bounded: an endpoint tag or model name past the first
``max_label_values`` distinct ones counts as ``other``, so a client sending a new
``X-Qwenkit-Endpoint`` on every request cannot grow the registry. The registry is the gateway's
own (never the process-global one), and no label carries a key or a secret.
"""

from __future__ import annotations

import os
import threading

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from qwenkit._core.usage import UsageRecord
from qwenkit.storage import Ledger

__all__ = ["GatewayMetrics"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)


class _Bounded:
    """Label values as given for the first ``limit`` distinct ones, then ``other``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        if not value:
            return ""
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) >= self.limit:
                return "other"
            self._seen.add(value)
        return value


class GatewayMetrics:
    """The gateway's registry and the usage sink that fills it; see the module docstring."""

    def __init__(self, *, max_label_values: int = 100) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._endpoint = _Bounded(max_label_values)
        self._model = _Bounded(max_label_values)
        labels = ("endpoint", "model")
        self.requests = Counter(
            "qwenkit_gateway_requests", "Requests by outcome.", [*labels, "status", "code"],
            registry=self.registry,
        )  # fmt: skip
        self.duration = Histogram(
            "qwenkit_gateway_request_duration_seconds", "From the request to its end.", labels,
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.ttft = Histogram(
            "qwenkit_gateway_time_to_first_token_seconds", "To the first token of any kind.",
            labels, buckets=_TTFT_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.tokens = Counter(
            "qwenkit_gateway_tokens", "Tokens by kind.", [*labels, "kind"], registry=self.registry
        )
        self.cost = Counter(
            "qwenkit_gateway_cost", "Cost in the catalog's currency.", [*labels, "currency"],
            registry=self.registry,
        )  # fmt: skip
        self.edge_hits = Counter(
            "qwenkit_gateway_edge_cache_hits", "Answers served from the response cache.",
            ["endpoint"], registry=self.registry,
        )  # fmt: skip
        self.prompt_cache_warnings = Counter(
            "qwenkit_gateway_prompt_cache_warnings",
            "Requests whose system prompt has dynamic content (defeats the prefix cache).",
            ["endpoint"], registry=self.registry,
        )  # fmt: skip
        self.streams = Gauge(
            "qwenkit_gateway_streams_active", "Streams being relayed now.",
            registry=self.registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self._ledger: Ledger | None = None
        self._multiprocess = _multiprocess_dir() is not None
        self._ledger_gauges = {
            name: Gauge(
                f"qwenkit_ledger_{name}", text, registry=self.registry, multiprocess_mode="livesum"
            )
            for name, text in (
                ("queued", "Usage records waiting for the ledger's writer."),
                ("written", "Usage records written since start."),
                ("spilled", "Usage records spilled to the local file since start."),
                ("dropped", "Usage records lost (the spill file failed)."),
            )
        }

    # -- the usage sink ------------------------------------------------------------------------

    def emit(self, record: UsageRecord) -> None:
        endpoint, model = self._endpoint(record.endpoint), self._model(record.model)
        code = str(record.http_status or (200 if record.status == "ok" else ""))
        self.requests.labels(endpoint, model, record.status, code).inc()
        self.duration.labels(endpoint, model).observe(record.latency_s)
        if record.ttft_s is not None:
            self.ttft.labels(endpoint, model).observe(record.ttft_s)
        for kind, count in (
            ("prompt", record.prompt_tokens),
            ("completion", record.completion_tokens),
            ("cached", record.cached_tokens),
            ("reasoning", record.reasoning_tokens),
        ):
            if count:
                self.tokens.labels(endpoint, model, kind).inc(count)
        if record.cost:
            self.cost.labels(endpoint, model, record.currency or "").inc(float(record.cost))
        if record.cache_hit:
            self.edge_hits.labels(endpoint).inc()
        if self._multiprocess:  # another worker's scrape reads this worker's gauges from its file
            self._read_ledger()

    def prompt_cache_warning(self, endpoint: str | None) -> None:
        self.prompt_cache_warnings.labels(self._endpoint(endpoint)).inc()

    def watch_ledger(self, ledger: Ledger) -> None:
        """Report the ledger's queue and spill counts (read at each record and each scrape)."""
        self._ledger = ledger
        self._read_ledger()

    def _read_ledger(self) -> None:
        if self._ledger is None:
            return
        stats = self._ledger.stats
        for name, gauge in self._ledger_gauges.items():
            gauge.set(getattr(stats, name))

    def render(self) -> bytes:
        """The exposition text: this process's registry, or every worker's with several."""
        self._read_ledger()
        if not self._multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def close(self) -> None:
        """With several workers, mark this process's gauge files dead (they stop counting)."""
        if self._multiprocess:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
