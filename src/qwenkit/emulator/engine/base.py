"""What every engine shares: the ``Engine`` protocol, its ``EngineContext``, and history helpers.

An engine turns a canonical ``ChatRequest`` into a ``Generation``. It holds no state between
requests: everything it may vary on is in the request and the context, and all its randomness
comes from ``context.seed`` and the request content (``Rng``), never from the clock or the global
``random`` module. The same request with the same seed always gives the same ``Generation``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from qwenkit.catalog import ModelProfile
from qwenkit.emulator.config import EmulatorConfig
from qwenkit.emulator.generation import Generation
from qwenkit.types import (
    AnyMessage,
    AssistantMessage,
    ChatRequest,
    FunctionCall,
    ToolCall,
    ToolMessage,
    UserMessage,
)

__all__ = [
    "Engine",
    "EngineContext",
    "Rng",
    "call_id",
    "last_user_text",
    "make_calls",
    "pending_tool_results",
    "request_digest",
    "tool_rounds",
]


@dataclass(frozen=True)
class EngineContext:
    """What the caller decided about one request before asking an engine."""

    profile: ModelProfile
    thinking: bool
    """Effective thinking for this request (``enable_thinking`` and the model's mode, resolved)."""
    config: EmulatorConfig
    seed: int
    """Stable per-request seed: the only source of randomness, with the request content."""
    tool_round: int
    """Assistant messages with ``tool_calls`` already in the history (see ``tool_rounds``)."""
    wire: Literal["compat", "native"] = "compat"
    """The wire the answer goes out on (the ``think_in_content`` quirk is compatible-mode only)."""


class Engine(Protocol):
    """Anything that answers a request: ``generate`` returns the ``Generation`` for it."""

    def generate(self, request: ChatRequest, context: EngineContext) -> Generation: ...


def tool_rounds(request: ChatRequest) -> int:
    """How many assistant messages with tool calls the history holds."""
    return sum(1 for m in request.messages if isinstance(m, AssistantMessage) and m.tool_calls)


def last_user_text(request: ChatRequest) -> str:
    """The text of the last user message (``""`` when there is none)."""
    for message in reversed(request.messages):
        if isinstance(message, UserMessage):
            return message.text
    return ""


def pending_tool_results(
    request: ChatRequest,
) -> tuple[AssistantMessage | None, list[ToolMessage]]:
    """The trailing tool messages and the assistant message whose calls they answer.

    ``(None, [])`` unless the history ends with tool messages right after an assistant message
    with ``tool_calls``: the model is being asked to go on from tool results.
    """
    messages: Sequence[AnyMessage] = request.messages
    start = len(messages)
    while start > 0 and isinstance(messages[start - 1], ToolMessage):
        start -= 1
    results = [m for m in messages[start:] if isinstance(m, ToolMessage)]
    if not results or start == 0:
        return None, []
    before = messages[start - 1]
    if isinstance(before, AssistantMessage) and before.tool_calls:
        return before, results
    return None, []


_ANSWER_FIELDS = {
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
}


def request_digest(request: ChatRequest) -> str:
    """A hash of what the answer is about: the model, messages, tools and response format.

    Limits (``max_tokens``, ``thinking_budget``) and ``stream`` are left out, so a cut answer is
    a prefix of the uncut one and both wire forms answer the same.
    """
    data = request.model_dump_json(include=_ANSWER_FIELDS)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


class Rng(random.Random):
    """A private generator seeded from the context seed, the request digest and a purpose label.

    Each purpose (prose, quirks, ids...) gets its own stream, so using one does not shift another.
    """

    def __new__(cls, seed: int, digest: str, purpose: str) -> Rng:
        # Python 3.10's random.Random.__new__ takes at most one argument, even in a subclass.
        return super().__new__(cls)

    def __init__(self, seed: int, digest: str, purpose: str) -> None:
        material = f"{seed}|{digest}|{purpose}".encode()
        super().__init__(int.from_bytes(hashlib.sha256(material).digest()[:16], "big"))


def call_id(seed: int, tool_round: int, index: int) -> str:
    """``call_`` and 24 hex characters derived from the seed, the round and the call index."""
    material = f"call|{seed}|{tool_round}|{index}".encode()
    return "call_" + hashlib.sha256(material).hexdigest()[:24]


def make_calls(
    calls: Sequence[tuple[str, str]], context: EngineContext, ids: Sequence[str | None] = ()
) -> tuple[ToolCall, ...]:
    """``ToolCall`` values for ``(name, arguments JSON)`` pairs, indexed, with stable ids."""
    out: list[ToolCall] = []
    for index, (name, arguments) in enumerate(calls):
        given = ids[index] if index < len(ids) else None
        out.append(
            ToolCall(
                id=given or call_id(context.seed, context.tool_round, index),
                function=FunctionCall(name=name, arguments=arguments),
                index=index,
            )
        )
    return tuple(out)
