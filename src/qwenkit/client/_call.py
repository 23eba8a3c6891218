"""``make_call``: a ``chat``/``stream`` invocation's arguments as the pipeline's ``Call``.

``MessagesInput`` is what the client's methods take as messages: a string (one user message), or
canonical messages and/or OpenAI-style dicts. Arguments set to ``None`` are "not set"; the names
of the others are ``Call.explicit`` (they win over the task's route and the model's defaults).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pydantic

from qwenkit._core.pipeline import Call
from qwenkit._exceptions import UsageError, ValidationError
from qwenkit.catalog import TaskKind
from qwenkit.types import AnyMessage, ChatRequest, UserMessage

__all__ = ["MessagesInput", "make_call"]

MessagesInput = str | Iterable[AnyMessage | Mapping[str, Any]]
"""A user prompt, or a conversation of canonical messages and/or dicts."""

_METHOD_CHOSEN = frozenset({"stream", "stream_options"})


def make_call(
    messages: MessagesInput,
    *,
    model: str | None,
    task: TaskKind | str | None,
    thinking: bool | None,
    params: Mapping[str, Any],
    stream: bool = False,
) -> Call:
    """The ``Call`` of one ``chat``/``stream`` invocation (``ValidationError`` if it cannot be)."""
    chosen = _METHOD_CHOSEN.intersection(params)
    if chosen:
        raise UsageError(
            f"{', '.join(sorted(chosen))}: chosen by the method; use stream() for events, "
            "chat() for one result"
        )
    given = {name: value for name, value in params.items() if value is not None}
    turns = [UserMessage(content=messages)] if isinstance(messages, str) else list(messages)
    try:
        request = ChatRequest.model_validate({"model": model or "", "messages": turns, **given})
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValidationError(f"{where}: {first['msg']}", param=where or None) from None
    explicit = set(given)
    if model:
        explicit.add("model")
    if thinking is not None:
        explicit.add("thinking")
    return Call(
        request=request,
        task=task.value if isinstance(task, TaskKind) else task,
        thinking=thinking,
        stream=stream,
        explicit=frozenset(explicit),
    )
