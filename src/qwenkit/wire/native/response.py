"""Native non-streaming responses, both directions.

``result_format: "message"``::

    {"output": {"choices": [{"finish_reason": "stop",
                             "message": {"role": "assistant", "content": "..."}}]},
     "usage": {"input_tokens": 22, "output_tokens": 17, "total_tokens": 39},
     "request_id": "902fee3b-..."}

``result_format: "text"``::

    {"output": {"text": "...", "finish_reason": "stop"}, "usage": {...}, "request_id": "..."}

Rules:

- A native body has no ``id`` and no ``model``: the canonical ``id`` is ``"chatcmpl-" +
  request_id`` (what the compatible mode of the same service uses) and ``model`` is what the caller
  knows (the request's model).
- Keys of ``output`` other than the answer (``search_info``, ``tool_info``...) and unknown
  top-level keys become extras of the ``ChatResponse``; the encoder writes every extra back into
  ``output`` (except ``object``/``system_fingerprint``/``service_tier``, which only the compatible
  mode has). The SDK's own wrapper fields (top-level ``status_code``/``code``/``message``, and
  ``output.text``/``output.finish_reason`` set to ``null`` beside ``choices``) are not service
  data and are dropped; the encoder writes the exact service shape, never those.
- Multimodal answers (``"content": [{"text": "..."}]``) keep their list shape through a round trip.
- Usage: see ``usage``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ValidationError

from qwenkit.types import AssistantMessage, ChatResponse, Choice, content_text
from qwenkit.wire.native.content import decode_content, encode_content
from qwenkit.wire.native.errors import NativeResponseError
from qwenkit.wire.native.usage import decode_usage, encode_usage

__all__ = ["decode_response", "encode_response"]

_SDK_WRAPPER = frozenset({"status_code", "code", "message"})
_COMPAT_ONLY = frozenset({"object", "system_fingerprint", "service_tier"})
_TOP = frozenset({"output", "usage", "request_id"})


def _decode_choice(raw: Any, position: int) -> Choice:
    if not isinstance(raw, Mapping):
        raise NativeResponseError(f"output.choices[{position}] is not an object")
    message = dict(raw.get("message") or {})
    if "content" in message:
        message["content"] = decode_content(message["content"])
    data = dict(raw)
    data["message"] = AssistantMessage.model_validate(message)
    if data.get("finish_reason") == "null":
        data["finish_reason"] = None
    return Choice.model_validate(data)


def decode_response(body: Mapping[str, Any], *, model: str = "") -> ChatResponse:
    """A native success body (either result format) as a canonical response."""
    output = body.get("output") if isinstance(body, Mapping) else None
    if not isinstance(output, Mapping):
        hint = (
            f" (an error: {body.get('code')})"
            if isinstance(body, Mapping) and body.get("code")
            else ""
        )
        raise NativeResponseError(f"not a native success body: no output object{hint}")
    extras: dict[str, Any] = {}
    choices_raw = output.get("choices")
    try:
        if isinstance(choices_raw, list):
            choices = [_decode_choice(c, i) for i, c in enumerate(choices_raw)]
            consumed = {"choices"} | {k for k in ("text", "finish_reason") if output.get(k) is None}
        elif isinstance(output.get("text"), str):
            reason = output.get("finish_reason")
            message = AssistantMessage(content=output["text"])
            choices = [Choice(message=message, finish_reason=None if reason == "null" else reason)]
            consumed = {"choices", "text", "finish_reason"}
        else:
            raise NativeResponseError("output has neither choices nor text")
    except ValidationError as exc:
        raise NativeResponseError(f"output does not fit a chat response: {exc}") from exc
    extras.update({k: v for k, v in output.items() if k not in consumed})
    extras.update({k: v for k, v in body.items() if k not in _TOP and k not in _SDK_WRAPPER})
    usage = body.get("usage")
    request_id = body.get("request_id")
    request_id = request_id if isinstance(request_id, str) else ""
    fields: dict[str, Any] = {
        **extras,
        "id": "chatcmpl-" + request_id,
        "model": model,
        "choices": choices,
        "request_id": request_id,
    }
    if isinstance(usage, Mapping):
        fields["usage"] = decode_usage(usage)
    return ChatResponse.model_validate(fields)


def _encode_choice(choice: Choice) -> dict[str, Any]:
    message = choice.message.to_wire()
    if isinstance(choice.message.content, list):
        message["content"] = encode_content(choice.message.content)
    out: dict[str, Any] = {"finish_reason": choice.finish_reason, "message": message}
    given = choice.model_fields_set
    if "index" in given:
        out["index"] = choice.index
    if "logprobs" in given:
        out["logprobs"] = choice.logprobs
    out.update(choice.extras)
    return out


def response_request_id(response: ChatResponse) -> str:
    """The native ``request_id`` of a canonical response (from its ``id`` when not set)."""
    if response.request_id:
        return response.request_id
    return response.id.removeprefix("chatcmpl-")


def encode_response(
    response: ChatResponse, *, result_format: Literal["text", "message"] = "message"
) -> dict[str, Any]:
    """The native success body of a canonical response (no ``status_code``/``code``/``message``)."""
    output: dict[str, Any]
    if result_format == "text":
        first = response.choices[0] if response.choices else None
        output = {
            "text": content_text(first.message.content) if first else "",
            "finish_reason": first.finish_reason if first else None,
        }
    else:
        output = {"choices": [_encode_choice(c) for c in response.choices]}
    output.update({k: v for k, v in response.extras.items() if k not in _COMPAT_ONLY})
    body: dict[str, Any] = {"output": output}
    if response.usage is not None:
        body["usage"] = encode_usage(response.usage)
    body["request_id"] = response_request_id(response)
    return body
