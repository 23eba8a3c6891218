"""The scenario rule model: what a rule matches and what it answers (format: ``scenarios``).

Validated strictly (unknown keys are errors, regexes must compile, a rule has exactly one
response) so a typo in a scenario file fails at load time, not as a silently unmatched rule.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qwenkit.emulator.engine.base import (
    EngineContext,
    last_user_text,
    make_calls,
    pending_tool_results,
)
from qwenkit.emulator.generation import FaultKind
from qwenkit.types import ChatRequest, ErrorInfo, ToolCall

__all__ = ["ScenarioError", "ScenarioFault", "ScenarioMatch", "ScenarioRule", "ScenarioToolCall"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ScenarioMatch(_Strict):
    """Conditions on a request; every one given must hold."""

    model: str | None = None
    """Exact model name or glob (``qwen3-*``)."""
    last_user: str | None = None
    """Regex searched in the text of the last user message."""
    has_tool_results: bool | None = None
    """Whether the history ends with tool results answering the last assistant tool calls."""
    round: int | None = Field(default=None, ge=0)
    """The number of assistant tool-call rounds in the history equals this."""
    tools_offered: list[str] | None = None
    """Every one of these tool names is offered."""
    thinking: bool | None = None

    @field_validator("last_user")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from None
        return value

    def matches(self, request: ChatRequest, context: EngineContext) -> bool:
        if self.model is not None and not fnmatchcase(request.model, self.model):
            return False
        if self.last_user is not None and not re.search(self.last_user, last_user_text(request)):
            return False
        if self.has_tool_results is not None:
            assistant, _ = pending_tool_results(request)
            if (assistant is not None) != self.has_tool_results:
                return False
        if self.round is not None and context.tool_round != self.round:
            return False
        if self.tools_offered is not None:
            offered = {tool.name for tool in request.tools or ()}
            if not set(self.tools_offered) <= offered:
                return False
        return self.thinking is None or context.thinking == self.thinking


class ScenarioError(_Strict):
    status: int = Field(ge=400, le=599)
    code: str = Field(min_length=1)
    message: str

    def info(self) -> ErrorInfo:
        """The ``ErrorInfo`` (the caller fills in the request id)."""
        return ErrorInfo(self.status, self.code, self.message)


class ScenarioFault(_Strict):
    kind: FaultKind
    after_chunks: int = Field(default=0, ge=0)
    seconds: float = Field(default=0.0, ge=0)
    error: ScenarioError | None = None
    """For ``error_mid_stream`` (default: a 500 ``InternalError``)."""


class ScenarioToolCall(_Strict):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    """An object (sent as JSON text) or the exact JSON text to send."""
    id: str | None = None

    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)


class ScenarioRule(_Strict):
    """One scripted answer (see ``scenarios`` for the file format)."""

    name: str | None = None
    match: ScenarioMatch = Field(default_factory=ScenarioMatch)
    text: str | None = None
    reasoning: str | None = None
    tool_calls: list[ScenarioToolCall] | None = Field(default=None, min_length=1)
    json_: Any = Field(default=None, alias="json")
    error: ScenarioError | None = None
    fault: ScenarioFault | None = None
    finish_reason: str | None = None
    quirks: bool = True
    """Apply the configured quirks to this answer."""

    @model_validator(mode="after")
    def _one_response(self) -> ScenarioRule:
        given = [
            key
            for key, value in (
                ("text", self.text),
                ("tool_calls", self.tool_calls),
                ("json", self.json_),
                ("error", self.error),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise ValueError(f"a rule has one response, got {' and '.join(given)}")
        if not given and self.fault is None:
            raise ValueError("a rule needs a response: text, tool_calls, json, error or fault")
        if self.error is not None and (self.fault or self.reasoning or self.finish_reason):
            raise ValueError("an error rule takes no fault, reasoning or finish_reason")
        return self

    def calls(self, context: EngineContext) -> tuple[ToolCall, ...]:
        """The scripted tool calls (ids derived from the seed where the rule gives none)."""
        items = self.tool_calls or []
        pairs = [(item.name, item.arguments_text()) for item in items]
        return make_calls(pairs, context, [item.id for item in items])
