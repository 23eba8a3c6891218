"""What the request policies share: the "prepare, then pass on" shape and request edits.

Every policy of this package changes or checks the ``Call`` before the upstream call and then
passes the events through untouched, so each one is a ``BeforeCall`` with a synchronous,
pure ``prepare(call)`` (unit-testable without an event loop) and the one ``__call__`` below.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from qwenkit._core.pipeline import Call, EventStream, Handler, closing
from qwenkit.types import ChatRequest

THINKING_SOURCE = "thinking_source"
"""``call.state`` key: ``"route"`` when ``call.thinking`` came from the task's route."""
ROUTE_MAX_TOKENS = "route_max_tokens"
"""``call.state`` key: the route's ``max_tokens``, left for ``MaxTokensPolicy`` to cap."""
CALLER_MAX_TOKENS = "caller_max_tokens"
"""``call.state`` key: a cap of the caller's own (the gateway's virtual key), applied by
``MaxTokensPolicy`` under ``hard_cap``."""


class BeforeCall(ABC):
    """A policy that acts before the upstream call, then yields the events unchanged.

    The downstream stream is closed when the consumer stops early, so the policies after this one
    (and the transport) release their resources at once rather than at garbage collection.
    """

    @abstractmethod
    def prepare(self, call: Call) -> None:
        """Change or check ``call``; raise a ``ValidationError`` to stop before any network call."""

    async def __call__(self, call: Call, call_next: Handler) -> EventStream:
        self.prepare(call)
        async with closing(call_next(call)) as stream:
            async for event in stream:
                yield event

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def caller_set(call: Call, name: str) -> bool:
    """Whether the caller chose ``name``: listed in ``call.explicit`` or already on the request."""
    return name in call.explicit or getattr(call.request, name, None) is not None


def updated(request: ChatRequest, **changes: Any) -> ChatRequest:
    """A copy of ``request`` with ``changes``; a ``None`` change removes the field from the wire
    (a plain ``model_copy`` would send it as ``null``)."""
    copy = request.model_copy(update=changes)
    for name, value in changes.items():
        if value is None:
            copy.model_fields_set.discard(name)
    return copy
