"""The default engine: a plausible, deterministic answer to any request no scenario scripts.

In order: tool calls when the tools offered and ``tool_choice`` call for them (``selection``);
in JSON mode, a JSON answer (``json_answers``); after tool results, a text answer quoting them;
otherwise prose derived from the last user message (``text``). The content is cut to exactly
``max_tokens`` tokens (``finish_reason: length``). With thinking on, ``reasoning`` comes first,
bounded by ``thinking_budget`` (else the model's maximum chain of thought); ``max_tokens`` bounds
the content only, as on the real service.
"""

from __future__ import annotations

from collections.abc import Sequence

from qwenkit.emulator.engine.base import (
    EngineContext,
    Rng,
    last_user_text,
    make_calls,
    pending_tool_results,
    request_digest,
)
from qwenkit.emulator.engine.extract import extract
from qwenkit.emulator.engine.json_answers import json_answer
from qwenkit.emulator.engine.selection import choose_calls
from qwenkit.emulator.engine.text import answer_text, cut_to_tokens, grow, is_cjk, reasoning_text
from qwenkit.emulator.generation import Generation
from qwenkit.tokens import QwenTokenizer, get_tokenizer
from qwenkit.types import AssistantMessage, ChatRequest, ToolMessage

__all__ = ["DefaultEngine", "bound_content", "bound_reasoning", "tool_answer"]

QUOTE_CHARS = 500
"""Longer tool results are quoted up to this many characters, then "…"."""


def bound_content(
    request: ChatRequest, tokenizer: QwenTokenizer, content: str, finish: str
) -> tuple[str, str]:
    """The content cut to ``max_tokens`` and the finish reason (``length`` when cut)."""
    if request.max_tokens is None:
        return content, finish
    cut, was_cut = cut_to_tokens(content, request.max_tokens, tokenizer)
    return cut, "length" if was_cut else finish


def bound_reasoning(
    request: ChatRequest, context: EngineContext, tokenizer: QwenTokenizer, reasoning: str
) -> str:
    """The reasoning cut to ``thinking_budget`` (else the model's maximum chain of thought)."""
    budget = request.thinking_budget or context.profile.max_reasoning_tokens
    return reasoning if budget is None else cut_to_tokens(reasoning, budget, tokenizer)[0]


def tool_answer(
    prompt: str,
    assistant: AssistantMessage,
    results: Sequence[ToolMessage],
    rng: Rng,
    tokenizer: QwenTokenizer,
) -> str:
    """A text answer that quotes each tool result, naming the tool that gave it."""
    names = {call.id: call.name for call in assistant.tool_calls or ()}
    zh = is_cjk(prompt)
    parts: list[str] = []
    for result in results:
        name = names.get(result.tool_call_id) or result.name or "the tool"
        quote = " ".join(result.text.split())
        if len(quote) > QUOTE_CHARS:
            quote = quote[:QUOTE_CHARS] + "…"
        parts.append(
            f"根据 {name} 的结果：“{quote}”。" if zh else f'According to {name}: "{quote}".'
        )
    start = ("" if zh else " ").join(parts)
    return grow(start, rng, tokenizer, tokenizer.count_ordinary(start) + 1, zh)


class DefaultEngine:
    """Answers every request from its content alone (see the module docstring)."""

    def generate(self, request: ChatRequest, context: EngineContext) -> Generation:
        tokenizer = get_tokenizer(context.profile.tokenizer)
        digest = request_digest(request)
        prompt = last_user_text(request)
        source = extract(prompt)
        calls = choose_calls(request, source)
        assistant, results = pending_tool_results(request)
        reasoning = ""
        if context.thinking:
            offered = [tool.name for tool in request.tools or ()]
            chosen = list(dict.fromkeys(name for name, _ in calls))
            rng = Rng(context.seed, digest, "reasoning")
            text = reasoning_text(prompt, offered, chosen, rng, tokenizer, results=bool(results))
            reasoning = bound_reasoning(request, context, tokenizer, text)
        if calls:
            return Generation(
                reasoning=reasoning,
                tool_calls=make_calls(calls, context),
                finish_reason="tool_calls",
            )
        rng = Rng(context.seed, digest, "answer")
        content = json_answer(request, source, rng, tokenizer)
        if content is None and assistant is not None:
            content = tool_answer(prompt, assistant, results, rng, tokenizer)
        if content is None:
            content = answer_text(prompt, rng, tokenizer)
        content, finish = bound_content(request, tokenizer, content, "stop")
        return Generation(content=content, reasoning=reasoning, finish_reason=finish)
