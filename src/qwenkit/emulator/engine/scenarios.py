"""Scripted answers: rules matched against each request, first match wins.

A scenario file (YAML or JSON) is a list of rules, or a mapping with a ``scenarios`` list; the
emulator config holds the same list under ``scenarios``. Each rule has an optional ``name``, a
``match`` (every condition given must hold; none given matches everything) and one response::

    scenarios:
      - name: umbrella-call
        match:
          model: "qwen-*"             # exact name or glob
          last_user: "(?i)umbrella"   # regex, searched in the last user message
          has_tool_results: false     # do tool results answer the last tool calls?
          round: 0                    # assistant tool-call rounds already in the history
          tools_offered: [get_weather]
          thinking: false             # effective thinking of the request
        tool_calls:                   # one or several (parallel) calls
          - name: get_weather
            arguments: {location: Shanghai}   # an object, or the exact JSON text
            id: call_umbrella_1               # optional; else derived from the seed
      - name: umbrella-answer
        match: {has_tool_results: true, tools_offered: [get_weather]}
        text: "Yes, take an umbrella."
        reasoning: "The forecast says rain."  # optional; sent when thinking is on
      - match: {last_user: "as JSON"}
        json: {answer: 42}                    # content is this value as JSON text
      - match: {model: qwen-max}
        error: {status: 429, code: Throttling.RateQuota, message: "Requests rate limit exceeded."}
      - match: {last_user: "flaky"}
        text: "This answer breaks off."
        fault: {kind: drop, after_chunks: 2}  # drop | stall (seconds) | error_mid_stream (error)
        finish_reason: stop                   # optional override
        quirks: false                         # keep the configured quirks off this answer

A rule answers with exactly one of ``text``, ``tool_calls``, ``json``, ``error``, or a ``fault``
alone; a fault may accompany text, tool calls or JSON. Text and JSON are cut at ``max_tokens``
and reasoning at the thinking budget, as the default engine does; nothing else is added (with
thinking on, a scripted answer has reasoning only if the rule gives one; with thinking off, a
rule's ``reasoning`` is not sent). Rules hold no state:
the same request always gets the same answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from qwenkit._exceptions import UsageError
from qwenkit.emulator.config import read_data_file
from qwenkit.emulator.engine.base import Engine, EngineContext
from qwenkit.emulator.engine.default import bound_content, bound_reasoning
from qwenkit.emulator.engine.quirks import apply_quirks
from qwenkit.emulator.engine.rules import ScenarioRule
from qwenkit.emulator.generation import Fault, Generation
from qwenkit.tokens import get_tokenizer
from qwenkit.types import ChatRequest, ErrorInfo

__all__ = ["ScenarioEngine", "ScenarioRule", "load_scenarios", "respond"]

INTERNAL_ERROR = ErrorInfo(
    500,
    "InternalError",
    "An internal error has occurred, please try again later or contact service support.",
)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
    return "; ".join(parts)


def load_scenarios(
    path_or_data: str | PathLike[str] | Sequence[Mapping[str, Any]] | Mapping[str, Any],
) -> list[ScenarioRule]:
    """Rules from a YAML/JSON file, or from already parsed data (a list or ``{"scenarios": []}``)."""
    where = "scenarios"
    data: Any = path_or_data
    if isinstance(path_or_data, (str, PathLike)):
        where = str(path_or_data)
        data = read_data_file(Path(path_or_data))
    if data is None:
        return []
    if isinstance(data, Mapping):
        if set(data) != {"scenarios"}:
            raise UsageError(f"{where}: expected a list of rules or a mapping with 'scenarios'")
        data = data["scenarios"] or []
    if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
        raise UsageError(f"{where}: the scenarios must be a list of rules")
    rules: list[ScenarioRule] = []
    for index, item in enumerate(data):
        if isinstance(item, ScenarioRule):
            rules.append(item)
            continue
        label = f"rule {index}"
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            label += f" ({item['name']})"
        try:
            rules.append(ScenarioRule.model_validate(item))
        except ValidationError as exc:
            raise UsageError(f"{where}: {label}: {_describe(exc)}") from None
    return rules


def respond(
    rule: ScenarioRule, index: int, request: ChatRequest, context: EngineContext
) -> Generation:
    """The ``Generation`` a matching rule scripts."""
    source = f"scenario:{rule.name or index}"
    if rule.error is not None:
        return Generation(error=rule.error.info(), source=source)
    tokenizer = get_tokenizer(context.profile.tokenizer)
    fault = None
    if rule.fault is not None:
        error = rule.fault.error.info() if rule.fault.error else None
        if rule.fault.kind == "error_mid_stream" and error is None:
            error = INTERNAL_ERROR
        fault = Fault(rule.fault.kind, rule.fault.after_chunks, rule.fault.seconds, error)
    reasoning = ""
    if context.thinking and rule.reasoning:
        reasoning = bound_reasoning(request, context, tokenizer, rule.reasoning)
    calls = rule.calls(context)
    content = rule.text or ""
    if rule.json_ is not None:
        content = json.dumps(rule.json_, ensure_ascii=False)
    content, finish = bound_content(request, tokenizer, content, "tool_calls" if calls else "stop")
    return Generation(
        content=content,
        reasoning=reasoning,
        tool_calls=calls,
        finish_reason=rule.finish_reason or finish,
        fault=fault,
        source=source,
    )


class ScenarioEngine:
    """Answers with the first matching rule, else asks ``fallback``.

    With ``quirks=True`` the configured quirks also apply to the rules' answers (except rules
    with ``quirks: false``); the fallback's answers are returned as it gives them.
    """

    def __init__(
        self, rules: Sequence[ScenarioRule], fallback: Engine, *, quirks: bool = False
    ) -> None:
        self.rules = tuple(rules)
        self.fallback = fallback
        self.quirks = quirks

    def match(
        self, request: ChatRequest, context: EngineContext
    ) -> tuple[int, ScenarioRule] | None:
        """The index and rule that answer this request, if any."""
        for index, rule in enumerate(self.rules):
            if rule.match.matches(request, context):
                return index, rule
        return None

    def generate(self, request: ChatRequest, context: EngineContext) -> Generation:
        hit = self.match(request, context)
        if hit is None:
            return self.fallback.generate(request, context)
        index, rule = hit
        answer = respond(rule, index, request, context)
        if self.quirks and rule.quirks:
            answer = apply_quirks(request, context, answer)
        return answer
