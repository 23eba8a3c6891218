"""The canonical non-streaming chat response."""

from __future__ import annotations

from typing import Any

from qwenkit.types._base import WireModel
from qwenkit.types.chat import AssistantMessage, content_text
from qwenkit.types.tools import ToolCall
from qwenkit.types.usage import Usage


class Choice(WireModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None = None
    """``stop``, ``length``, ``tool_calls`` (or ``content_filter``); ``None`` while unfinished."""
    logprobs: Any = None


class ChatResponse(WireModel):
    id: str
    """``chatcmpl-<uuid>`` on the compatible wire; the native wire has only ``request_id``."""
    model: str
    created: int = 0
    choices: list[Choice]
    usage: Usage | None = None
    request_id: str | None = None

    @property
    def message(self) -> AssistantMessage:
        return self.choices[0].message

    @property
    def content(self) -> str:
        """The answer text (never the reasoning)."""
        return content_text(self.message.content)

    @property
    def reasoning(self) -> str | None:
        return self.message.reasoning_content

    @property
    def tool_calls(self) -> list[ToolCall]:
        return list(self.message.tool_calls or [])

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason

    def __str__(self) -> str:
        return self.content
