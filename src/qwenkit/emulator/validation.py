"""Request validation: the first rule a request breaks, as the real service reports it.

``check_body`` runs on the raw bytes (size, then JSON object); ``validate_request`` on the parsed
``ChatRequest`` and returns the first violated rule in the order a service plausibly checks them:
model existence, non-empty messages, tool-message order, tool-call arguments, ``n``,
``max_tokens``, thinking against streaming, the "json" keyword, JSON mode with thinking, and input
length. The order is a judgement (the service documents none); the texts, codes and statuses come
from ``qwenkit.emulator.messages``, which says where each was seen. ``auth_error`` and the task
errors are here too so the HTTP layer has one module to ask.

Thinking rules, with ``effective_thinking`` (the request's ``enable_thinking`` if given, else the
model's default; a model without thinking never thinks, an always-thinking one always does):

1. ``enable_thinking: true`` to a model without thinking: ignored, or an error when
   ``quirks.thinking_flag_on_non_thinking_model`` is ``error`` (``false`` is always accepted: many
   clients send it to every model);
2. ``enable_thinking: false`` to an always-thinking model: "restricted to True";
3. a non-streaming call the model must stream (``ModelProfile.requires_stream``): the
   ``enable_thinking`` text when a hybrid model thinks (seen for qwen3-32b, whose default is on),
   "current user api does not support http call" for a stream-only hybrid that thinks by default
   but was switched off (the open-source Qwen3 family), else "This model only support stream mode".
"""

from __future__ import annotations

import json
from typing import Any, Literal

from qwenkit.catalog import ModelProfile, ThinkingMode
from qwenkit.emulator import messages as m
from qwenkit.emulator.config import EmulatorConfig
from qwenkit.emulator.messages import Wire
from qwenkit.types import (
    AssistantMessage,
    ChatRequest,
    ErrorInfo,
    ToolMessage,
    content_text,
)

__all__ = [
    "Wire",
    "async_not_supported_error",
    "auth_error",
    "check_body",
    "effective_thinking",
    "task_not_cancellable_error",
    "validate_request",
]

_KEYWORD_ROLES = frozenset({"system", "user", "developer"})
"""Where the "json" keyword is looked for (S5: "the system message or user message")."""


def check_body(
    raw: bytes, *, max_body_bytes: int
) -> tuple[dict[str, Any] | None, ErrorInfo | None]:
    """``(body, None)`` for a JSON object within the size limit, else ``(None, error)``."""
    if len(raw) > max_body_bytes:
        return None, m.payload_too_large()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        return None, m.body_invalid()
    if not isinstance(body, dict):
        return None, m.body_invalid()
    return body, None


def effective_thinking(request: ChatRequest, profile: ModelProfile | None) -> bool:
    """Whether the request thinks: its ``enable_thinking`` if set, else the model's default.

    ========================  =======  ===========  ==========  ======
    ``enable_thinking``       none     hybrid_off   hybrid_on   always
    ========================  =======  ===========  ==========  ======
    not set                   False    False        True        True
    ``true``                  False    True         True        True
    ``false``                 False    False        False       True
    ========================  =======  ===========  ==========  ======

    Without a profile (unknown model) the flag alone decides.
    """
    if profile is None:
        return bool(request.enable_thinking)
    return profile.effective_thinking(request.enable_thinking)


def validate_request(
    request: ChatRequest,
    *,
    wire: Wire,
    stream: bool,
    profile: ModelProfile | None,
    config: EmulatorConfig,
    prompt_tokens: int | None,
) -> ErrorInfo | None:
    """The first rule ``request`` breaks (see the module docstring), or ``None``.

    ``profile`` is ``None`` for a model the catalog does not know; ``prompt_tokens`` is the
    rendered prompt length (``None`` skips the input-length rule).
    """
    if profile is None:
        return m.model_not_found(request.model, wire=wire)
    return (
        _messages_rule(request)
        or _range_rule(request, profile, config)
        or _thinking_rule(request, profile, config, stream=stream)
        or _json_rule(request, profile, config)
        or _length_rule(request, profile, prompt_tokens)
    )


def _messages_rule(request: ChatRequest) -> ErrorInfo | None:
    if not request.messages:
        return m.empty_messages()
    answered = False  # the previous non-tool message was an assistant turn with tool_calls
    for message in request.messages:
        if isinstance(message, ToolMessage):
            if not answered:
                return m.tool_without_tool_calls()
            continue
        answered = isinstance(message, AssistantMessage) and bool(message.tool_calls)
    for message in request.messages:
        if isinstance(message, AssistantMessage):
            for call in message.tool_calls or ():
                if not _is_json(call.function.arguments):
                    return m.tool_arguments_not_json()
    return None


def _is_json(text: str) -> bool:
    """Any JSON value; an empty string counts as ``{}`` (a call without arguments)."""
    if not text.strip():
        return True
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _range_rule(
    request: ChatRequest, profile: ModelProfile, config: EmulatorConfig
) -> ErrorInfo | None:
    max_n = config.limits.max_n
    if request.n is not None and not 1 <= request.n <= max_n:
        return m.n_out_of_range(max_n)
    limit = profile.max_output_tokens
    if request.max_tokens is not None and not 1 <= request.max_tokens <= limit:
        return m.max_tokens_out_of_range(limit)
    return None


def _thinking_rule(
    request: ChatRequest, profile: ModelProfile, config: EmulatorConfig, *, stream: bool
) -> ErrorInfo | None:
    flag = request.enable_thinking
    mode = profile.thinking
    strict = config.quirks.thinking_flag_on_non_thinking_model == "error"
    if flag is True and mode is ThinkingMode.NONE and strict:
        return m.thinking_not_supported(request.model)
    if flag is False and mode is ThinkingMode.ALWAYS:
        return m.thinking_restricted_to_true()
    thinking = effective_thinking(request, profile)
    if stream or not profile.requires_stream(thinking):
        return None
    hybrid = mode in (ThinkingMode.HYBRID_OFF, ThinkingMode.HYBRID_ON)
    if hybrid and thinking and profile.stream_only_when_thinking:
        return m.thinking_requires_stream()
    if mode is ThinkingMode.HYBRID_ON and profile.stream_only:
        return m.http_call_not_supported()
    return m.stream_only()


def _json_rule(
    request: ChatRequest, profile: ModelProfile, config: EmulatorConfig
) -> ErrorInfo | None:
    response_format = request.response_format
    if response_format is None or response_format.type == "text":
        return None
    keyword_rule = response_format.type == "json_object" or (
        config.quirks.json_schema_requires_keyword
    )
    if keyword_rule and not _mentions_json(request):
        return m.json_keyword_missing()
    if effective_thinking(request, profile):
        return m.json_mode_with_thinking()
    return None


def _mentions_json(request: ChatRequest) -> bool:
    return any(
        "json" in content_text(message.content).lower()
        for message in request.messages
        if message.role in _KEYWORD_ROLES
    )


def _length_rule(
    request: ChatRequest, profile: ModelProfile, prompt_tokens: int | None
) -> ErrorInfo | None:
    if prompt_tokens is None:
        return None
    limit = profile.max_input_for(effective_thinking(request, profile))
    if prompt_tokens > limit:
        return m.input_too_long(limit)
    return None


# -- errors outside the request body --------------------------------------------------------------


def auth_error(*, wire: Wire, reason: Literal["missing", "invalid", "region"]) -> ErrorInfo:
    """401 for a missing key, an unknown key, or a key of another region (same text for the last
    two: the service does not say why a key is refused)."""
    if reason == "missing":
        return m.no_api_key()
    return m.invalid_api_key(wire=wire)


def async_not_supported_error() -> ErrorInfo:
    """``X-DashScope-Async: enable`` on a synchronous service (403 ``AccessDenied``)."""
    return m.async_not_supported()


def task_not_cancellable_error() -> ErrorInfo:
    """Cancel of a task that is not PENDING (400 ``UnsupportedOperation``). Unknown or expired
    task ids are not an error: the query answers with ``messages.TASK_STATUS_UNKNOWN``."""
    return m.task_not_cancellable()
