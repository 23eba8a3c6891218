"""Native request bodies and headers, both directions.

Wire shape (``POST /api/v1/services/aigc/{text-generation|multimodal-generation}/generation``)::

    {"model": "qwen-plus",
     "input": {"messages": [...]},            # or {"prompt": "...", "history": [...]} (legacy)
     "parameters": {"result_format": "message", "incremental_output": true, ...}}

Rules:

- Streaming is chosen by the headers ``X-DashScope-SSE: enable`` or ``Accept: text/event-stream``
  (either one; header names and values are matched case-insensitively). The SDK never sends
  ``stream`` in the body; a ``parameters.stream: true`` (or top-level ``stream: true``) is accepted
  too, because whether the service honours it is unconfirmed and a tolerant reader loses nothing.
  ``X-DashScope-Async: enable`` asks for an asynchronous task.
- ``result_format`` and ``incremental_output`` are transport choices, returned beside the
  canonical request (``None`` when absent: the per-model default applies). Every other parameter
  maps to the canonical field of the same name; unknown parameters and unknown top-level keys
  become extras of the ``ChatRequest``. Unknown keys of ``input`` are kept in one extra,
  ``native_input``, and ``resources`` goes back to the top level on encoding.
- Legacy ``prompt`` + ``history`` (``[{"user": ..., "bot": ...}]``) becomes user/assistant messages.
- Native multimodal parts (no ``type`` key) become canonical parts (see ``content``).
- Missing ``model`` or ``input`` raise ``NativeRequestError`` with the service's own code and
  message; a body that does not fit the canonical model raises it with ``InvalidParameter`` and the
  validator's text (the service's wording for those cases is not known). Everything else is the
  emulator's job.

Encoding: ``stream`` and ``stream_options`` never go into the body, extras go into ``parameters``.
With ``multimodal=True`` every content list is written in the native part shape. On the text
endpoint a list of text parts is sent as the canonical list only when a part carries
``cache_control`` (the explicit-cache marker needs the part), and is otherwise joined into one
string, the form every text model accepts; a list with non-text parts is never flattened (that
would drop the media): it is sent in the native part shape and the service decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from qwenkit.types import ChatRequest, TextPart, content_text
from qwenkit.types.chat import AnyMessage
from qwenkit.wire.native.content import decode_content, encode_content
from qwenkit.wire.native.errors import NativeRequestError

__all__ = ["NativeRequest", "decode_request", "encode_request", "request_headers"]

ResultFormat = Literal["text", "message"]

_TOP_LEVEL_EXTRAS = ("resources",)
"""Extras that live beside ``model``/``input``/``parameters`` on the native wire."""


@dataclass(frozen=True)
class NativeRequest:
    """A decoded native request: the canonical request plus the native transport choices."""

    request: ChatRequest
    result_format: ResultFormat | None
    incremental_output: bool | None
    stream: bool
    async_task: bool


def _header(headers: Mapping[str, str] | None, name: str) -> str:
    if not headers:
        return ""
    for key, value in headers.items():
        if key.lower() == name:
            return str(value).strip().lower()
    return ""


def _messages(inp: Mapping[str, Any]) -> tuple[list[Any], set[str]]:
    """The messages of ``input`` and the keys that produced them."""
    messages = inp.get("messages")
    if isinstance(messages, Sequence) and not isinstance(messages, (str, bytes)):
        out = [
            {**m, "content": decode_content(m["content"])}
            if isinstance(m, Mapping) and "content" in m
            else m
            for m in messages
        ]
        return out, {"messages"}
    prompt = inp.get("prompt")
    if prompt is None:
        raise NativeRequestError(
            "BadRequest.EmptyInput", "Required input parameter missing from request."
        )
    turns: list[Any] = []
    for turn in inp.get("history") or []:
        if isinstance(turn, Mapping):
            turns.append({"role": "user", "content": turn.get("user", "")})
            turns.append({"role": "assistant", "content": turn.get("bot", "")})
    turns.append({"role": "user", "content": decode_content(prompt)})
    return turns, {"prompt", "history"}


def decode_request(
    body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> NativeRequest:
    """A native request body (and its headers) as a canonical request plus transport choices."""
    if not isinstance(body, Mapping):
        raise NativeRequestError("InvalidParameter", "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise NativeRequestError(
            "BadRequest.EmptyModel", 'Required parameter "model" missing from request.'
        )
    inp = body.get("input")
    if not isinstance(inp, Mapping) or not inp:
        raise NativeRequestError(
            "BadRequest.EmptyInput", "Required input parameter missing from request."
        )
    messages, used = _messages(inp)
    raw_params = body.get("parameters")
    params = dict(raw_params) if isinstance(raw_params, Mapping) else {}

    result_format = params.pop("result_format", None)
    if result_format not in (None, "text", "message"):
        raise NativeRequestError(
            "InvalidParameter", f'result_format must be "text" or "message", not {result_format!r}'
        )
    incremental = params.pop("incremental_output", None)
    if incremental is not None and not isinstance(incremental, bool):
        raise NativeRequestError("InvalidParameter", "incremental_output must be a boolean")

    body_stream = params.pop("stream", None) is True or body.get("stream") is True
    stream = (
        _header(headers, "x-dashscope-sse") == "enable"
        or "text/event-stream" in _header(headers, "accept")
        or body_stream
    )
    async_task = _header(headers, "x-dashscope-async") == "enable"

    data: dict[str, Any] = {
        k: v for k, v in body.items() if k not in ("model", "input", "parameters", "stream")
    }
    data.update(params)
    if stream:
        data["stream"] = True
    native_input = {k: v for k, v in inp.items() if k not in used}
    if native_input:
        data["native_input"] = native_input
    data["model"] = model
    data["messages"] = messages
    try:
        request = ChatRequest.model_validate(data)
    except ValidationError as exc:
        raise NativeRequestError("InvalidParameter", _summary(exc)) from exc
    return NativeRequest(
        request=request,
        result_format=result_format,
        incremental_output=incremental,
        stream=stream,
        async_task=async_task,
    )


def _summary(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else str(err["msg"]))
    return "; ".join(parts)


def _message_wire(message: AnyMessage, multimodal: bool) -> dict[str, Any]:
    out = message.to_wire()
    content = getattr(message, "content", None)
    if isinstance(content, list):
        if multimodal or not all(isinstance(p, TextPart) for p in content):
            out["content"] = encode_content(content)
        elif not any(isinstance(p, TextPart) and p.cache_control is not None for p in content):
            out["content"] = content_text(content)
    return out


def encode_request(
    request: ChatRequest,
    *,
    result_format: ResultFormat = "message",
    incremental_output: bool | None = True,
    multimodal: bool = False,
) -> dict[str, Any]:
    """The native JSON body of a canonical request (streaming goes in ``request_headers``)."""
    rest = request.to_wire()
    for key in ("model", "messages", "stream", "stream_options", "result_format"):
        rest.pop(key, None)
    rest.pop("incremental_output", None)
    top = {key: rest.pop(key) for key in _TOP_LEVEL_EXTRAS if key in rest}
    native_input = rest.pop("native_input", None)

    inp: dict[str, Any] = {"messages": [_message_wire(m, multimodal) for m in request.messages]}
    if isinstance(native_input, Mapping):
        inp.update({k: v for k, v in native_input.items() if k != "messages"})
    parameters: dict[str, Any] = {"result_format": result_format}
    if incremental_output is not None:
        parameters["incremental_output"] = incremental_output
    parameters.update(rest)
    return {"model": request.model, "input": inp, "parameters": parameters, **top}


def request_headers(*, stream: bool, async_task: bool = False) -> dict[str, str]:
    """The native headers of a request, without ``Authorization`` (the transport adds it)."""
    if stream and async_task:
        raise ValueError("an asynchronous task cannot be streamed")
    headers = {"Content-Type": "application/json"}
    if stream:
        headers.update(
            {"Accept": "text/event-stream", "X-DashScope-SSE": "enable", "X-Accel-Buffering": "no"}
        )
    else:
        headers["Accept"] = "application/json"
    if async_task:
        headers["X-DashScope-Async"] = "enable"
    return headers
