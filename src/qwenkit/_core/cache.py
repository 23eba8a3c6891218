"""The exact-match response cache (pipeline step "cache"): replay a finished answer to an
identical request instead of calling the upstream again.

**The key** (``cache_key``) is the sha256 of a canonical JSON (sorted keys, compact) of everything
in the ``ChatRequest`` that can change the output: model, messages, tools, ``tool_choice``,
``parallel_tool_calls``, ``response_format``, sampling (temperature, top_p, top_k, seed, penalties),
``stop``, ``max_tokens``, ``n``, logprobs, search, the *effective* thinking (and its budget when
thinking is on) and every extra field. Left out: ``stream`` and ``stream_options`` (how the answer
travels, not what it is) and unset or ``None`` modelled fields (the same as absent). Nothing
identifying the caller is in it: the API key never is part of a ``ChatRequest`` (the transport adds
it), so two callers asking the same thing share an entry, and nobody can find a key in the cache.

**When.** ``CachePolicy`` applies when the (routed) request has ``temperature == 0``, or the caller
opted in (``CachePolicy(opt_in=True)`` or ``call.state["cache"] = True``);
``call.state["cache"] = False`` opts a call out. It goes after route (which sets temperature and
thinking) and before send; ``UsagePolicy`` must be outside it (it reads ``call.cache_hit``).

**Hit:** the stored events are replayed, ``call.cache_hit`` is set and a note added; the replayed
``ResponseStarted`` keeps the cached response id but carries this call's ``request_id`` (no
upstream request was made). **Miss:** the events passing through are collected and stored only when
the stream ended normally with a ``Finished`` event and no ``StreamError`` (an exception, or a
consumer that stopped early, stores nothing). A cache that fails (a storage backend down) is
logged and treated as a miss: the cache never fails a call.

**Counts.** ``CachePolicy.stats`` counts hits and misses per endpoint tag (``call.tags
["endpoint"]``, ``None`` when untagged) in this process; the ledger's ``cache_hit`` column gives
the same rate across processes and over time (``qwenkit report``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from qwenkit._core.pipeline import Call, EventStream, Handler, closing
from qwenkit.types import (
    ChatRequest,
    ContentDelta,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    StreamError,
    Usage,
    UsageReported,
)

__all__ = [
    "CachePolicy",
    "CacheStats",
    "CachedResponse",
    "MemoryCache",
    "ResponseCache",
    "cache_key",
    "canonical_request",
]

_KEY_VERSION = b"qwenkit-response-cache-v1\n"
_TRANSPORT_FIELDS = frozenset({"stream", "stream_options"})
_log = logging.getLogger(__name__)


def canonical_request(request: ChatRequest, *, thinking: bool | None) -> dict[str, Any]:
    """The part of ``request`` that determines its answer (see the module docstring).

    ``thinking`` is the effective thinking (``None``: take ``request.enable_thinking``)."""
    known = type(request).model_fields
    data = {
        name: value
        for name, value in request.to_wire().items()
        if name not in _TRANSPORT_FIELDS and not (name in known and value is None)
    }
    effective = request.enable_thinking if thinking is None else thinking
    data.pop("enable_thinking", None)
    if effective is not None:
        data["enable_thinking"] = effective
    if effective is False:
        data.pop("thinking_budget", None)  # no effect without thinking
    return data


def cache_key(request: ChatRequest, *, thinking: bool | None) -> str:
    """Hex sha256 of the canonical JSON of ``canonical_request(request, thinking=thinking)``."""
    canonical = json.dumps(
        canonical_request(request, thinking=thinking),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(_KEY_VERSION + canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """The canonical events of one completed, successful response."""

    events: tuple[Event, ...]

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> CachedResponse:
        """Store ``events`` with adjacent text deltas of a choice merged (same answer, fewer
        objects; a replay is instant, so the original chunking carries no information)."""
        merged: list[Event] = []
        for event in events:
            last = merged[-1] if merged else None
            if (
                isinstance(event, (ContentDelta, ReasoningDelta))
                and type(last) is type(event)
                and isinstance(last, (ContentDelta, ReasoningDelta))
                and last.choice == event.choice
            ):
                merged[-1] = replace(last, text=last.text + event.text)
            else:
                merged.append(event)
        return cls(tuple(merged))

    @property
    def usage(self) -> Usage | None:
        """The last usage reported, if any."""
        reports = [e.usage for e in self.events if isinstance(e, UsageReported)]
        return reports[-1] if reports else None


class ResponseCache(Protocol):
    """Where cached responses live (``MemoryCache`` here; SQLite and Redis in ``storage``)."""

    async def get(self, key: str) -> CachedResponse | None: ...

    async def set(self, key: str, value: CachedResponse, ttl: float | None = None) -> None: ...


class MemoryCache:
    """A bounded LRU in process memory. ``ttl`` (seconds) is the default lifetime of an entry
    (``None``: until evicted); ``clock`` is monotonic seconds (a fake one in tests).

    Safe within one event loop (no ``await`` inside an operation); not shared across threads."""

    def __init__(
        self,
        max_entries: int = 1024,
        ttl: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be positive (or None)")
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, tuple[CachedResponse, float | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    async def get(self, key: str) -> CachedResponse | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and self._clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: CachedResponse, ttl: float | None = None) -> None:
        lifetime = self.ttl if ttl is None else ttl
        expires = None if lifetime is None else self._clock() + lifetime
        self._entries[key] = (value, expires)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class CacheStats:
    """Hits and misses of the cache per endpoint tag (``None``: calls without one)."""

    def __init__(self) -> None:
        self.hits: dict[str | None, int] = {}
        self.misses: dict[str | None, int] = {}

    def count(self, endpoint: str | None, *, hit: bool) -> None:
        counts = self.hits if hit else self.misses
        counts[endpoint] = counts.get(endpoint, 0) + 1

    def hit_rate(self, endpoint: str | None = None) -> float | None:
        """Hits / lookups of ``endpoint`` (``None`` before any lookup)."""
        hits, misses = self.hits.get(endpoint, 0), self.misses.get(endpoint, 0)
        return None if hits + misses == 0 else hits / (hits + misses)

    def endpoints(self) -> list[str | None]:
        return sorted({*self.hits, *self.misses}, key=lambda name: (name is not None, name or ""))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name or '-'}: {self.hits.get(name, 0)}/{self.hits.get(name, 0) + self.misses.get(name, 0)}"
            for name in self.endpoints()
        )
        return f"CacheStats({shown})"


class CachePolicy:
    """Serve identical deterministic requests from ``cache``; see the module docstring.

    ``ttl`` is passed to ``cache.set`` (``None``: the cache's default)."""

    def __init__(
        self, cache: ResponseCache, *, opt_in: bool = False, ttl: float | None = None
    ) -> None:
        self.cache = cache
        self.opt_in = opt_in
        self.ttl = ttl
        self.stats = CacheStats()

    def applies(self, call: Call) -> bool:
        """Whether ``call`` may be answered from (and stored in) the cache."""
        asked = call.state.get("cache")
        if asked is False:
            return False
        return self.opt_in or asked is True or call.request.temperature == 0

    async def __call__(self, call: Call, call_next: Handler) -> EventStream:
        if not self.applies(call):
            async with closing(call_next(call)) as stream:
                async for event in stream:
                    yield event
            return
        key = cache_key(call.request, thinking=_effective_thinking(call))
        call.state["cache_key"] = key
        cached = await self._get(key)
        self.stats.count(call.tags.get("endpoint"), hit=cached is not None)
        if cached is not None:
            call.cache_hit = True
            call.notes.append(f"cache: hit {key[:12]}")
            for event in cached.events:
                if isinstance(event, ResponseStarted):
                    yield replace(event, request_id=call.request_id)
                else:
                    yield event
            return
        call.notes.append(f"cache: miss {key[:12]}")
        events: list[Event] = []
        finished = failed = False
        async with closing(call_next(call)) as stream:
            async for event in stream:
                events.append(event)
                finished = finished or isinstance(event, Finished)
                failed = failed or isinstance(event, StreamError)
                yield event
        # only reached when the stream ended normally (no exception, no early stop)
        if finished and not failed:
            await self._set(key, CachedResponse.from_events(events))

    async def _get(self, key: str) -> CachedResponse | None:
        try:
            return await self.cache.get(key)
        except Exception:
            _log.warning("response cache lookup failed; treated as a miss", exc_info=True)
            return None

    async def _set(self, key: str, value: CachedResponse) -> None:
        try:
            await self.cache.set(key, value, self.ttl)
        except Exception:
            _log.warning("response cache store failed; answer not cached", exc_info=True)


def _effective_thinking(call: Call) -> bool | None:
    """Whether the request as sent thinks (the model's profile settles an unset flag)."""
    asked = call.request.enable_thinking
    return asked if call.profile is None else call.profile.effective_thinking(asked)
