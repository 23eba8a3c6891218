"""The request pipeline: an ordered list of small policies around one upstream call.

Every door (``AsyncQwen``/``Qwen``, the gateway's routes, the CLI) turns its input into a
``Call`` (a canonical ``ChatRequest`` plus what the caller wants), and runs it through the same
policies. Streaming is the primitive: a policy receives the ``Call`` and ``call_next`` and returns
an async iterator of canonical events; a non-streaming result is the assembly of those events.

A policy is an async generator function (or any callable returning an async iterator)::

    class Stamp:
        async def __call__(self, call: Call, call_next: Handler) -> EventStream:
            call.notes.append("stamped")                        # before the upstream call
            async with closing(call_next(call)) as stream:      # closed even on an early stop
                async for event in stream:                      # while it streams
                    yield event
            # after the stream ended (put clean-up in try/finally: the consumer may stop early)

``closing`` matters: when the consumer stops early, Python closes *this* generator but not the one
it was iterating; without ``closing`` the upstream connection stays open until the garbage
collector finalises it.

Policies may change ``call`` before passing it on (set ``max_tokens``, force ``upstream_stream``),
short-circuit (a cache hit yields events without calling ``call_next``), raise a local error
before any network call (validation), or watch the events (timings, usage). Order is explicit
in ``Pipeline(policies, send)``; see ``docs/sdk.md`` for the default order and why.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from qwenkit.types import ChatRequest, Event

if TYPE_CHECKING:
    from qwenkit.catalog import ModelProfile, Route

EventStream = AsyncIterator[Event]
Handler = Callable[["Call"], EventStream]


class Policy(Protocol):
    """One job around the upstream call; see the module docstring."""

    def __call__(self, call: Call, call_next: Handler) -> EventStream: ...


@dataclass
class Timings:
    """Monotonic timestamps (``time.perf_counter``) of one call."""

    started: float = field(default_factory=time.perf_counter)
    first_byte: float | None = None
    first_reasoning: float | None = None
    first_content: float | None = None
    """The first answer token: content or a tool-call fragment."""
    finished: float | None = None

    def since_start(self, moment: float | None) -> float | None:
        return None if moment is None else moment - self.started

    @property
    def latency(self) -> float | None:
        return self.since_start(self.finished)

    @property
    def time_to_first_token(self) -> float | None:
        """Until the first token of any kind (reasoning or answer)."""
        firsts = [t for t in (self.first_reasoning, self.first_content) if t is not None]
        return self.since_start(min(firsts)) if firsts else None

    @property
    def time_to_first_reasoning(self) -> float | None:
        return self.since_start(self.first_reasoning)

    @property
    def time_to_first_answer(self) -> float | None:
        return self.since_start(self.first_content)


@dataclass
class Call:
    """One logical call on its way through the pipeline. Policies fill it in as it goes."""

    request: ChatRequest
    task: str | None = None
    """A task kind for the router (``extract``, ``chat``, ``reason``...), when the caller gave one."""
    thinking: bool | None = None
    """What the caller asked for: True/False, or None for the task's or model's default."""
    stream: bool = False
    """Whether the caller consumes a stream. The upstream call may stream anyway (thinking)."""
    upstream_stream: bool | None = None
    """Whether the upstream request streams; decided by the policies (None until then)."""
    explicit: frozenset[str] = frozenset()
    """Parameters the caller set explicitly (they win over task and model defaults)."""
    profile: ModelProfile | None = None
    route: Route | None = None
    tags: dict[str, str] = field(default_factory=dict)
    """Labels for usage records and metrics (endpoint tag, key id...)."""
    request_id: str | None = None
    cache_hit: bool = False
    timings: Timings = field(default_factory=Timings)
    attempts: list[Any] = field(default_factory=list)
    """Failed attempts before the one that answered (``qwenkit._exceptions.Attempt``)."""
    notes: list[str] = field(default_factory=list)
    """What the policies changed, in words (logged at debug level)."""
    state: dict[str, Any] = field(default_factory=dict)
    """Scratch space for policies that need to pass something along."""


@asynccontextmanager
async def closing(stream: EventStream) -> AsyncIterator[EventStream]:
    """Iterate ``stream`` and close it when the block ends, however it ends."""
    try:
        yield stream
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


class Pipeline:
    """Policies in order around ``send`` (the upstream call)."""

    def __init__(self, policies: Sequence[Policy], send: Handler) -> None:
        self.policies: tuple[Policy, ...] = tuple(policies)
        self._send = send
        handler: Handler = send
        for policy in reversed(self.policies):
            handler = _bind(policy, handler)
        self._handler = handler

    def run(self, call: Call) -> EventStream:
        """The events of ``call`` after every policy; nothing happens until iterated."""
        return self._handler(call)


def _bind(policy: Policy, call_next: Handler) -> Handler:
    def handler(call: Call) -> EventStream:
        return policy(call, call_next)

    return handler
