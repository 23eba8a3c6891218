"""Real Qwen misbehaviours, switched on in ``config.quirks`` and applied to an engine's answer.

Each quirk draws from its own ``Rng`` (seed + request), so whether it fires is deterministic:

- ``tool_loop_rounds = N``: under ``tool_choice`` auto (or unset), when tool results answer the
  last assistant tool calls and fewer than N tool rounds happened, the model calls the same tools
  with the same arguments again instead of answering (note ``tool_loop``). It answers once the
  history holds N rounds.
- ``drop_nested_rate``: for each tool call whose arguments hold a nested object (a property at
  depth 2 or more: ``{"a": {"b": ...}}`` has ``b`` at depth 2), that share of calls loses one of
  the deepest properties (note ``dropped_nested``).
- ``json_fence_rate``: that share of JSON-mode answers comes wrapped in a markdown fence,
  ``"```json\\n{...}\\n```"`` (note ``json_fenced``), still cut at ``max_tokens``.

Errors are never touched; the tool loop wins over the other two.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from qwenkit.emulator.engine.base import (
    Engine,
    EngineContext,
    Rng,
    make_calls,
    pending_tool_results,
    request_digest,
)
from qwenkit.emulator.engine.default import bound_content
from qwenkit.emulator.generation import Generation
from qwenkit.tokens import get_tokenizer
from qwenkit.types import ChatRequest, FunctionCall, ToolCall

__all__ = ["QuirkEngine", "apply_quirks"]


class QuirkEngine:
    """Wraps an engine and applies the configured quirks to its answers."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner

    def generate(self, request: ChatRequest, context: EngineContext) -> Generation:
        return apply_quirks(request, context, self.inner.generate(request, context))


def apply_quirks(request: ChatRequest, context: EngineContext, answer: Generation) -> Generation:
    """``answer`` with the quirks of ``context.config.quirks`` that fire for this request."""
    if answer.error is not None:
        return answer
    looped = _tool_loop(request, context, answer)
    if looped is not None:
        return looped
    digest = request_digest(request)
    answer = _drop_nested(context, digest, answer)
    return _fence(request, context, digest, answer)


def _tool_loop(
    request: ChatRequest, context: EngineContext, answer: Generation
) -> Generation | None:
    rounds = context.config.quirks.tool_loop_rounds
    if not rounds or context.tool_round >= rounds or not request.tools:
        return None
    if request.tool_choice not in (None, "auto"):
        return None
    assistant, _ = pending_tool_results(request)
    if assistant is None or not assistant.tool_calls:
        return None
    calls = make_calls([(c.name, c.arguments) for c in assistant.tool_calls], context)
    return dataclasses.replace(
        answer,
        content="",
        tool_calls=calls,
        finish_reason="tool_calls",
        notes=(*answer.notes, "tool_loop"),
    )


def _deepest(value: Any, depth: int, path: tuple[Any, ...]) -> list[tuple[int, tuple[Any, ...]]]:
    """``(depth, path)`` of every property of the objects inside ``value``."""
    found: list[tuple[int, tuple[Any, ...]]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((depth, (*path, key)))
            found.extend(_deepest(item, depth + 1, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_deepest(item, depth, (*path, index)))
    return found


def _drop_nested(context: EngineContext, digest: str, answer: Generation) -> Generation:
    rate = context.config.quirks.drop_nested_rate
    if not rate or not answer.tool_calls:
        return answer
    calls: list[ToolCall] = []
    dropped = False
    for index, call in enumerate(answer.tool_calls):
        try:
            arguments = json.loads(call.arguments)
        except ValueError:
            arguments = None
        nested = [(d, p) for d, p in _deepest(arguments, 1, ()) if d >= 2]
        rng = Rng(context.seed, digest, f"drop_nested:{index}")
        if not nested or rng.random() >= rate:
            calls.append(call)
            continue
        deepest = max(d for d, _ in nested)
        path = rng.choice([p for d, p in nested if d == deepest])
        holder: Any = arguments
        for step in path[:-1]:
            holder = holder[step]
        del holder[path[-1]]
        text = json.dumps(arguments, ensure_ascii=False)
        function = FunctionCall(name=call.name, arguments=text)
        calls.append(call.model_copy(update={"function": function}))
        dropped = True
    if not dropped:
        return answer
    notes = (*answer.notes, "dropped_nested")
    return dataclasses.replace(answer, tool_calls=tuple(calls), notes=notes)


def _fence(
    request: ChatRequest, context: EngineContext, digest: str, answer: Generation
) -> Generation:
    rate = context.config.quirks.json_fence_rate
    if not rate or not request.wants_json or not answer.content or answer.tool_calls:
        return answer
    if Rng(context.seed, digest, "json_fence").random() >= rate:
        return answer
    tokenizer = get_tokenizer(context.profile.tokenizer)
    fenced = f"```json\n{answer.content}\n```"
    content, finish = bound_content(request, tokenizer, fenced, answer.finish_reason)
    notes = (*answer.notes, "json_fenced")
    return dataclasses.replace(answer, content=content, finish_reason=finish, notes=notes)
