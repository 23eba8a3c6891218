"""Compatible-mode request bodies <-> ``ChatRequest``.

The body a client POSTs to ``/compatible-mode/v1/chat/completions`` is the OpenAI Chat Completions
body (reference §2.1). The Qwen-specific parameters (``enable_thinking``, ``thinking_budget``,
``enable_search``, ``search_options``, ``top_k``, ``repetition_penalty``...) travel **top-level**:
the Python ``openai`` SDK sends its ``extra_body`` merged into the top level, Node users write them
there directly. The canonical ``ChatRequest`` uses the same names for the same fields, so both
directions are a validation / a dump:

- decoding validates the body with pydantic (an invalid field raises ``pydantic.ValidationError``,
  left to callers to wrap); fields the model does not know (``enable_code_interpreter``,
  ``modalities``, a future parameter...) are kept as extras, unchanged;
- encoding writes the fields that were set (``null`` stays ``null``, absent stays absent) and the
  extras, all top-level, as the service expects them.

``decode_request(encode_request(x)) == x`` and ``encode_request(decode_request(body)) == body`` for
well-typed bodies. pydantic's lax mode normalises a few ill-typed values (``"0.5"`` for a float
becomes ``0.5``, an integral ``1.0`` for an int becomes ``1``); such a body round-trips to its
normalised form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qwenkit.types.request import ChatRequest
from qwenkit.wire.compat._common import CompatRequestError


def decode_request(body: Mapping[str, Any]) -> ChatRequest:
    """The JSON body of a compatible-mode chat request as a canonical ``ChatRequest``.

    Raises ``CompatRequestError`` when the body is not a JSON object or has no ``model`` or no
    ``messages``, and ``pydantic.ValidationError`` when a field has an invalid value.
    """
    if not isinstance(body, Mapping):
        raise CompatRequestError(
            f"the request body must be a JSON object, not {type(body).__name__}"
        )
    if body.get("model") is None:
        raise CompatRequestError('the request body has no "model"')
    if body.get("messages") is None:
        raise CompatRequestError('the request body has no "messages"')
    return ChatRequest.model_validate(dict(body))


def encode_request(request: ChatRequest) -> dict[str, Any]:
    """The JSON body to send to the compatible-mode service (Qwen parameters and extras top-level)."""
    return request.to_wire()
