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
- ``think_in_content``: on the compatible wire, an answer with reasoning sends it inline, as a
  server without a reasoning parser does (llama.cpp ``reasoning_format: none``): ``content`` is
  ``"<think>\\n" + reasoning + "\\n</think>\\n\\n" + content`` and there is no reasoning
  (note ``think_in_content``; ``render.plan_events`` then streams the tags in 1-3 character
  pieces). The answer's tokens are all completion tokens, none reasoning ones.

Errors are never touched; the tool loop wins over the nested drop and the fence; the reasoning
goes inline last, whatever came before.

One quirk changes the request instead, before any engine sees it (the route applies it, as it
depends on the wire): ``named_tool_choice = "ignore"`` makes a compatible-mode ``tool_choice``
naming a function count as ``auto`` (``ignore_named_tool_choice``; note
``named_tool_choice_ignored``), as llama.cpp's server does: it reads ``tool_choice`` only as a
string and falls back to ``auto`` for an object.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from qwenkit.emulator.config import QuirksConfig
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
from qwenkit.emulator.messages import Wire
from qwenkit.tokens import get_tokenizer
from qwenkit.types import ChatRequest, FunctionCall, NamedToolChoice, ToolCall

__all__ = [
    "NAMED_TOOL_CHOICE_IGNORED",
    "QuirkEngine",
    "apply_quirks",
    "ignore_named_tool_choice",
    "noted",
]

NAMED_TOOL_CHOICE_IGNORED = "named_tool_choice_ignored"


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
        return _think_in_content(context, looped)
    digest = request_digest(request)
    answer = _drop_nested(context, digest, answer)
    return _think_in_content(context, _fence(request, context, digest, answer))


def _think_in_content(context: EngineContext, answer: Generation) -> Generation:
    if not context.config.quirks.think_in_content or context.wire != "compat":
        return answer
    if not answer.reasoning:
        return answer
    content = f"<think>\n{answer.reasoning}\n</think>\n\n{answer.content}"
    notes = (*answer.notes, "think_in_content")
    return dataclasses.replace(answer, content=content, reasoning="", notes=notes)


def ignore_named_tool_choice(
    request: ChatRequest, *, wire: Wire, quirks: QuirksConfig
) -> tuple[ChatRequest, bool]:
    """``request`` with a named ``tool_choice`` read as ``auto`` when the quirk is on and the
    request came on the compatible wire, and whether that happened."""
    if (
        quirks.named_tool_choice != "ignore"
        or wire != "compat"
        or not isinstance(request.tool_choice, NamedToolChoice)
    ):
        return request, False
    return request.model_copy(update={"tool_choice": "auto"}), True


def noted(answer: Generation, note: str) -> Generation:
    """``answer`` with ``note`` added to its notes."""
    return dataclasses.replace(answer, notes=(*answer.notes, note))


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
