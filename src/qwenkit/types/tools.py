"""Canonical tool definitions, tool calls and tool choice (OpenAI function-tool shape, both modes)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from qwenkit.types._base import WireModel


class _Typed(WireModel):
    """Always serialise the ``type`` literal, even when it was defaulted."""

    _always: ClassVar[frozenset[str]] = frozenset({"type"})

    def model_post_init(self, context: Any, /) -> None:
        self.model_fields_set.update(self._always)


class FunctionDefinition(WireModel):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Typed):
    """A tool offered to the model: ``{"type": "function", "function": {...}}``."""

    type: Literal["function"] = "function"
    function: FunctionDefinition

    @property
    def name(self) -> str:
        return self.function.name


class FunctionCall(WireModel):
    name: str
    arguments: str = ""
    """The arguments exactly as the model produced them: a JSON text, not parsed."""


class ToolCall(_Typed):
    """A call the model made. ``index`` is set when the service sent one (Qwen does, even non-stream)."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall
    index: int | None = None

    @property
    def name(self) -> str:
        return self.function.name

    @property
    def arguments(self) -> str:
        return self.function.arguments


class NamedFunction(WireModel):
    name: str


class NamedToolChoice(_Typed):
    """Force one function: ``{"type": "function", "function": {"name": ...}}``."""

    type: Literal["function"] = "function"
    function: NamedFunction


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice
