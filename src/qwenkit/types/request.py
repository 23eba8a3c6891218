"""The canonical chat request: what every door (SDK, gateway, CLI) turns its input into.

Field names follow the OpenAI-compatible wire (``max_tokens``, ``tool_choice``...). Qwen-specific
parameters (``enable_thinking``, ``thinking_budget``, ``enable_search``, ``top_k``,
``repetition_penalty``) are first-class fields here; on the compatible wire they travel top-level
(the ``openai`` SDK's ``extra_body``), on the native wire inside ``parameters``. Any parameter this
version does not model is kept as an extra and passed through by both codecs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import field_validator

from qwenkit.types._base import WireModel
from qwenkit.types.chat import AnyMessage, Message, parse_messages
from qwenkit.types.tools import Tool, ToolChoice


class StreamOptions(WireModel):
    include_usage: bool | None = None


class ResponseFormat(WireModel):
    """``{"type": "text" | "json_object" | "json_schema", "json_schema": {...}}``."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class ChatRequest(WireModel):
    model: str
    messages: list[Message]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    stop: str | list[str] | list[list[int]] | None = None
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    enable_thinking: bool | None = None
    thinking_budget: int | None = None
    enable_search: bool | None = None
    search_options: dict[str, Any] | None = None

    @field_validator("messages", mode="before")
    @classmethod
    def _coerce_messages(cls, value: Any) -> Any:
        if isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping)):
            return parse_messages(value)
        return value

    @property
    def wants_json(self) -> bool:
        return self.response_format is not None and self.response_format.type != "text"

    @property
    def includes_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def with_messages(self, messages: Iterable[AnyMessage | Mapping[str, Any]]) -> ChatRequest:
        return self.model_copy(update={"messages": parse_messages(messages)})


QWEN_EXTRA_PARAMS = frozenset(
    {
        "top_k",
        "repetition_penalty",
        "enable_thinking",
        "thinking_budget",
        "enable_search",
        "search_options",
    }
)
"""Parameters the ``openai`` SDK can only send through ``extra_body``."""

__all__ = ["QWEN_EXTRA_PARAMS", "ChatRequest", "ResponseFormat", "StreamOptions"]
