"""Usage records: exactly one per call, handed to the configured sinks (pipeline step "settle").

``UsagePolicy`` watches a call's events and, when the call ends, builds one ``UsageRecord``
(tokens, cost, timings, status) and hands it to every ``UsageSink``:

- the stream ended normally → ``status="ok"`` (``"error"`` if it carried a ``StreamError``);
- an exception went through it (an ``APIError`` from the upstream, a ``ValidationError`` from a
  later policy...) → ``status="error"`` with the HTTP status and code, and the exception goes on;
- the consumer stopped early (``aclose()``, ``GeneratorExit``) or the task was cancelled →
  ``status="cancelled"`` with whatever usage had arrived.

A stream that was answered, then cut off before its usage report (a client that disconnected, a
dropped connection) is recorded with an estimate, ``StreamTally.estimate``: the counted prompt and the
tokens of the text that went through, a conservative stand-in for what the service bills for it
(a budget settles the same estimate, so the ledger and the budget agree). Before, such a record
had 0 tokens and no cost, and the reports missed what cancelled streams cost.

**Order.** Put ``UsagePolicy`` first (outermost): it reads ``call.request`` when the call ends, so
it sees what routing set (policies change the shared ``Call`` in place), and errors of validate,
route or admit pass through it. It must be outside ``CachePolicy`` (it reads ``call.cache_hit``; a
hit costs 0) and the send step. A client with policies before it calls ``record_rejection(call,
error)`` on any error: it records only calls without a record, so "one record per call" holds.

A sink that raises is logged and skipped, never breaking the call. For a stream abandoned
without ``aclose()`` the record comes when the event loop finalises it (use ``aclosing``).
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Literal, Protocol

from qwenkit._core.pipeline import Call, EventStream, Handler, closing
from qwenkit._exceptions import APIError, BudgetExceededError, QwenError
from qwenkit.catalog import Catalog
from qwenkit.catalog import cost as price_of
from qwenkit.types import (
    ContentDelta,
    ErrorInfo,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    StreamError,
    ToolCallDelta,
    Usage,
    UsageReported,
)

__all__ = [
    "CallbackSink",
    "ListSink",
    "LoggingSink",
    "PromptCapture",
    "Status",
    "StreamTally",
    "UsagePolicy",
    "UsageRecord",
    "UsageSink",
    "recorded",
]

Status = Literal["ok", "error", "cancelled"]
_Priced = tuple[Decimal | None, str | None]
_RECORDED = "qwenkit.usage.recorded"  # ``call.state`` key: this call's record, once written
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UsageRecord:
    """What one call used and how it went. Tags (``endpoint``, ``key_id``, ``environment``) are
    labels from ``call.tags``, never secrets.

    ``cost`` is ``None`` when unknown: no usage reported, no ``region`` (a self-hosted upstream), or
    the catalog does not price the model there; a cache hit costs ``0``. ``attempts`` counts
    upstream attempts (0 for a rejected request or a cache hit). ``latency_s`` runs from the
    call's start to its end. ``record_id`` is unique per record (a ledger stores each once, even
    when a spill file is replayed twice); ``prompt`` is ``None`` unless prompt capture is on
    (``PromptCapture``), and then the redacted messages as JSON.
    """

    timestamp: datetime
    request_id: str | None
    model: str
    task: str | None
    endpoint: str | None
    key_id: str | None
    region: str | None
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_creation_tokens: int
    reasoning_tokens: int
    cost: Decimal | None
    currency: str | None
    latency_s: float
    ttft_s: float | None
    status: Status
    http_status: int | None
    error_code: str | None
    cache_hit: bool
    attempts: int
    finish_reason: str | None
    environment: str | None = None
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    prompt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the timestamp as ISO 8601, the cost as a decimal string (exact)."""
        data = asdict(self)
        data["timestamp"] = self.timestamp.isoformat()
        data["cost"] = None if self.cost is None else str(self.cost)
        return data


@dataclass(frozen=True)
class PromptCapture:
    """Opt-in prompt storage: a share ``rate`` (0..1) of records keep their messages, as JSON,
    after ``redact`` (a function from that JSON text to the text to store; e.g. masking emails).
    Off by default: no record carries prompt text unless a ``PromptCapture`` is given."""

    rate: float = 1.0
    redact: Callable[[str], str] | None = None
    sample: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("PromptCapture.rate must be between 0 and 1")

    def capture(self, call: Call) -> str | None:
        """The text to store for ``call``, or ``None`` when this call is not sampled."""
        if self.rate <= 0.0 or (self.rate < 1.0 and self.sample() >= self.rate):
            return None
        messages = call.request.to_wire().get("messages", [])
        text = json.dumps(messages, ensure_ascii=False, separators=(",", ":"), default=str)
        return self.redact(text) if self.redact is not None else text


class UsageSink(Protocol):
    """Receives each record. Synchronous and fast: a sink that does I/O queues internally."""

    def emit(self, record: UsageRecord) -> None: ...


class LoggingSink:
    """One structured line per record (``usage {json}``), the record also as ``extra["usage"]``."""

    def __init__(
        self, logger: str | logging.Logger = "qwenkit.usage", level: int = logging.INFO
    ) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level

    def emit(self, record: UsageRecord) -> None:
        if self.logger.isEnabledFor(self.level):
            data = record.to_dict()
            line = json.dumps(data, sort_keys=True, separators=(",", ":"))
            self.logger.log(self.level, "usage %s", line, extra={"usage": data})


class ListSink:
    """Keeps every record in ``records`` (tests, notebooks, small scripts)."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def emit(self, record: UsageRecord) -> None:
        self.records.append(record)


class CallbackSink:
    """Calls ``fn(record)`` for each record."""

    def __init__(self, fn: Callable[[UsageRecord], object]) -> None:
        self.fn = fn

    def emit(self, record: UsageRecord) -> None:
        self.fn(record)


@dataclass
class StreamTally:
    """What went through a call's stream: how many events, the last usage report, and the text
    (kept as its pieces, joined and counted only by ``estimate``)."""

    events: int = 0
    usage: Usage | None = None
    answer: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)

    def see(self, event: Event) -> None:
        self.events += 1
        if isinstance(event, UsageReported):
            self.usage = event.usage
        elif isinstance(event, ContentDelta):
            self.answer.append(event.text)
        elif isinstance(event, ReasoningDelta):
            self.reasoning.append(event.text)
        elif isinstance(event, ToolCallDelta):
            self.answer.append((event.name or "") + event.arguments)

    def estimate(self, call: Call, prompt: int | None = None) -> Usage:
        """The usage of a stream answered without a usage report: ``prompt`` (else the count
        ``ContextWindowPolicy`` left in ``call.state["prompt_tokens"]``, else counted now) and
        the tokens of the text that went through, with the model's tokenizer."""
        from qwenkit.tokens import count_messages, get_tokenizer

        if prompt is None:
            counted = call.state.get("prompt_tokens")
            if isinstance(counted, int):
                prompt = counted
            else:
                model = call.profile.name if call.profile is not None else call.request.model
                prompt = count_messages(list(call.request.messages), model=model).total
        tokenizer = get_tokenizer(call.profile.tokenizer if call.profile is not None else "qwen")
        reasoning = tokenizer.count("".join(self.reasoning)) if self.reasoning else 0
        answer = tokenizer.count("".join(self.answer)) if self.answer else 0
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=reasoning + answer,
            total_tokens=prompt + reasoning + answer,
            reasoning_tokens=reasoning,
        )


@dataclass
class _Observed(StreamTally):
    """What the usage policy saw of one call's stream."""

    finish_reason: str | None = None
    request_id: str | None = None
    stream_error: StreamError | None = None
    first_token: float | None = None

    def see(self, event: Event) -> None:
        super().see(event)
        if isinstance(event, (ReasoningDelta, ContentDelta, ToolCallDelta)):
            self.first_token = self.first_token or time.perf_counter()
        elif isinstance(event, Finished) and (event.choice == 0 or self.finish_reason is None):
            self.finish_reason = event.reason
        elif isinstance(event, ResponseStarted):
            self.request_id = event.request_id or self.request_id
        elif isinstance(event, StreamError):
            self.stream_error = event


class UsagePolicy:
    """Emits one ``UsageRecord`` per call to ``sinks``; see the module docstring for the order."""

    def __init__(
        self,
        sinks: Sequence[UsageSink] | None = None,
        *,
        region: str | None = "ap-southeast-1",
        catalog: Catalog | None = None,
        capture: PromptCapture | None = None,
    ) -> None:
        self.sinks: tuple[UsageSink, ...] = (LoggingSink(),) if sinks is None else tuple(sinks)
        self.region = region
        self.catalog = catalog
        self.capture = capture

    async def __call__(self, call: Call, call_next: Handler) -> EventStream:
        seen = _Observed()
        error: BaseException | None = None
        try:
            async with closing(call_next(call)) as stream:
                async for event in stream:
                    seen.see(event)
                    yield event
        except BaseException as exc:  # recorded below, then re-raised unchanged
            error = exc
            raise
        finally:
            self._finish(call, seen, error)

    def record_rejection(self, call: Call, error: BaseException) -> UsageRecord | None:
        """Record a call that failed outside this policy (a policy before it raised). Returns
        ``None`` when the call already has its record: safe to call on every error."""
        return self._finish(call, _Observed(), error)

    def _finish(
        self, call: Call, seen: _Observed, error: BaseException | None
    ) -> UsageRecord | None:
        if call.state.get(_RECORDED):
            return None
        call.state[_RECORDED] = True
        record = self._record(call, seen, error)
        call.state[_RECORDED] = record
        for sink in self.sinks:
            try:
                sink.emit(record)
            except Exception:
                _log.exception("usage sink %r failed; record dropped for this sink", sink)
        return record

    def _record(self, call: Call, seen: _Observed, error: BaseException | None) -> UsageRecord:
        region = call.tags.get("region", self.region) or None  # None/"": not priced
        status, http_status, code = _outcome(seen, error)
        reported = seen.usage
        cut = status == "cancelled" or error is not None
        if reported is None and seen.events and not call.cache_hit and cut:
            reported = seen.estimate(call)  # answered, then cut off: the prompt and text seen
        usage = reported or Usage()
        amount, currency = self._cost(call, reported, region)
        timings = call.timings
        ttft = timings.time_to_first_token
        if ttft is None and seen.first_token is not None:
            ttft = seen.first_token - timings.started
        end = time.perf_counter() if timings.finished is None else timings.finished
        api_request_id = error.request_id if isinstance(error, APIError) else None
        request_id = call.request_id or seen.request_id or api_request_id
        return UsageRecord(
            timestamp=datetime.now(timezone.utc),
            request_id=request_id,
            model=call.request.model,
            task=call.task,
            endpoint=call.tags.get("endpoint"),
            key_id=call.tags.get("key_id"),
            region=region,
            stream=call.stream,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cache_creation_tokens=usage.cache_creation_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost=amount,
            currency=currency,
            latency_s=end - timings.started,
            ttft_s=ttft,
            status=status,
            http_status=http_status,
            error_code=code,
            cache_hit=call.cache_hit,
            attempts=_attempts(call, seen, error),
            finish_reason=seen.finish_reason,
            environment=call.tags.get("environment"),
            prompt=None if self.capture is None else self._prompt(call),
        )

    def _prompt(self, call: Call) -> str | None:
        assert self.capture is not None
        try:
            return self.capture.capture(call)
        except Exception:  # a redaction hook that fails stores nothing, never breaks the call
            _log.exception("prompt capture failed; record stored without its prompt")
            return None

    def _cost(self, call: Call, usage: Usage | None, region: str | None) -> _Priced:
        """(amount, currency); a cache hit costs 0, unknown usage or prices give ``None``."""
        unknown: _Priced = (Decimal(0), None) if call.cache_hit else (None, None)
        if region is None or (usage is None and not call.cache_hit):
            return unknown
        try:
            priced = price_of(
                usage or Usage(),
                call.profile or call.request.model,
                region,
                thinking=call.request.enable_thinking,
                catalog=self.catalog,
            )
        except (QwenError, LookupError, ValueError):
            return unknown
        return (Decimal(0) if call.cache_hit else priced.total), priced.currency


def recorded(call: Call) -> UsageRecord | None:
    """The usage record of ``call``, once its usage policy wrote it (tracing reads it so)."""
    record = call.state.get(_RECORDED)
    return record if isinstance(record, UsageRecord) else None


def _outcome(seen: _Observed, error: BaseException | None) -> tuple[Status, int | None, str | None]:
    """(status, http_status, error_code) of a call that ended with ``error`` (or none)."""
    if error is None:
        if seen.stream_error is None:
            return "ok", 200, None
        info = seen.stream_error.error
        return "error", info.status, info.code
    if not isinstance(error, Exception):  # GeneratorExit, CancelledError, KeyboardInterrupt
        return "cancelled", None, None
    if isinstance(error, (APIError, BudgetExceededError)):
        return "error", error.status, error.code
    reported = getattr(error, "error", None)  # ``StreamFailed`` carries the service's ErrorInfo
    if isinstance(reported, ErrorInfo):
        return "error", reported.status, reported.code
    return "error", None, type(error).__name__  # a local error: ValidationError...


def _attempts(call: Call, seen: _Observed, error: BaseException | None) -> int:
    """Upstream attempts: the failed ones before plus the one that answered (or failed last)."""
    if call.cache_hit:
        return 0
    if isinstance(error, APIError):  # the send step has counted the last one too
        return max(len(error.attempts), len(call.attempts), 1)
    return len(call.attempts) + (1 if seen.events else 0)
