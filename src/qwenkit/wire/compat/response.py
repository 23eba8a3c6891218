"""Compatible-mode non-streaming response bodies <-> ``ChatResponse``, and error envelopes.

Wire shape (reference §2.2, §6.2)::

    {"id": "chatcmpl-<request_id>", "object": "chat.completion", "created": 1758011574,
     "model": "qwen-plus",
     "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                  "message": {"role": "assistant", "content": "...",
                              "reasoning_content": "...", "tool_calls": [...]}}],
     "usage": {... see ``usage.py`` ...},
     "system_fingerprint": null}

- There is no ``request_id`` in a success body: the id is ``chatcmpl-<request_id>``, so the decoder
  derives ``ChatResponse.request_id`` from it, and the encoder writes ``request_id`` only when it is
  not the one the id implies. An id without the prefix that equals the request id (a response that
  came from the native wire) is written as ``chatcmpl-<request_id>``.
- ``object`` and ``system_fingerprint: null`` are constants: dropped when decoding, always written.
  Any other value is kept as an extra and written back.
- Missing and extra nulls are tolerated: ``tool_calls: null``, ``function_call: null``,
  ``service_tier: null`` (what the ``openai`` SDK's ``model_dump`` adds), ``usage: null``,
  ``prompt_tokens_details: null``. Every field the canonical model does not know, at any level,
  is kept and written back.
- A message always has ``content`` on the wire (``""`` with tool calls, §6.2); the encoder writes
  ``""`` when the canonical message has none. ``logprobs`` and ``finish_reason`` are always written.

Errors use the compatible envelope of ``qwenkit.wire.errors`` (reference §8.1); ``encode_error`` and
``decode_error`` are thin wrappers over it, returning / taking the HTTP status too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qwenkit.types.chat import AssistantMessage
from qwenkit.types.errors import ErrorInfo
from qwenkit.types.response import ChatResponse, Choice
from qwenkit.wire.compat._common import (
    ID_PREFIX,
    CompatResponseError,
    compat_id,
    request_id_from_id,
)
from qwenkit.wire.compat.usage import decode_usage, encode_usage
from qwenkit.wire.errors import decode_compat_error, encode_compat_error

OBJECT = "chat.completion"


def decode_response(body: Mapping[str, Any]) -> ChatResponse:
    """A compatible-mode ``chat.completion`` body as a canonical ``ChatResponse``.

    Raises ``CompatResponseError`` for a body that is not a JSON object and
    ``pydantic.ValidationError`` for one missing ``id``, ``model`` or ``choices`` or with invalid
    values.
    """
    if not isinstance(body, Mapping):
        raise CompatResponseError(
            f"the response body must be a JSON object, not {type(body).__name__}"
        )
    data = dict(body)
    if data.get("object") == OBJECT:
        del data["object"]
    if "system_fingerprint" in data and data["system_fingerprint"] is None:
        del data["system_fingerprint"]
    usage = data.get("usage")
    if isinstance(usage, Mapping):
        data["usage"] = decode_usage(usage)
    if "request_id" not in data:
        request_id = request_id_from_id(data.get("id"))
        if request_id is not None:
            data["request_id"] = request_id
    return ChatResponse.model_validate(data)


def _encode_message(message: AssistantMessage) -> dict[str, Any]:
    out = message.to_wire()
    out.setdefault("content", "")
    return out


def _encode_choice(choice: Choice) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": choice.index,
        "message": _encode_message(choice.message),
        "finish_reason": choice.finish_reason,
        "logprobs": None,
    }
    if choice.logprobs is not None:
        out["logprobs"] = choice.model_dump(mode="json", include={"logprobs"})["logprobs"]
    if choice.model_extra:
        out.update(choice.model_dump(mode="json", include=set(choice.model_extra)))
    return out


def encode_response(response: ChatResponse) -> dict[str, Any]:
    """A canonical ``ChatResponse`` as a compatible-mode ``chat.completion`` body."""
    ident = compat_id(response.id, response.request_id)
    out: dict[str, Any] = {
        "id": ident,
        "object": OBJECT,
        "created": response.created,
        "model": response.model,
        "choices": [_encode_choice(choice) for choice in response.choices],
    }
    if response.usage is not None:
        out["usage"] = encode_usage(response.usage)
    elif "usage" in response.model_fields_set:
        out["usage"] = None
    out["system_fingerprint"] = None
    if response.request_id and ident != ID_PREFIX + response.request_id:
        out["request_id"] = response.request_id
    if response.model_extra:
        out.update(response.model_dump(mode="json", include=set(response.model_extra)))
    return out


def encode_error(error: ErrorInfo) -> tuple[int, dict[str, Any]]:
    """HTTP status and compatible error envelope (``{"error": {...}, "id"?, "request_id"}``)."""
    return error.status, encode_compat_error(error)


def decode_error(status: int, body: bytes | str | Mapping[str, Any] | None) -> ErrorInfo:
    """An error response of the compatible mode (a native envelope or plain text is tolerated)."""
    return decode_compat_error(status, body)
