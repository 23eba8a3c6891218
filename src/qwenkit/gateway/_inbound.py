"""What a caller sent, read and checked before anything is paid for: ``read_inbound``.

The body is read up to ``max_body_bytes`` (a larger one is a 413, never buffered whole), parsed
as JSON, checked for nesting depth (``max_json_depth``: a deeply nested body costs the parser and
every later step) and message count (``max_messages``), then decoded by the wire's codec into
the canonical ``ChatRequest``. Each refusal is a ``GatewayError`` with a 4xx in DashScope's
codes, answered in the caller's format by the route. Model aliases are applied here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
from starlette.requests import Request

from qwenkit.gateway._config import GatewayConfig
from qwenkit.gateway._errors import GatewayError
from qwenkit.types import ChatRequest
from qwenkit.wire import compat, native

__all__ = ["Inbound", "Wire", "read_inbound"]

Wire = Literal["compat", "native"]
_TRANSPORT_FIELDS = frozenset({"messages", "stream", "stream_options"})


@dataclass
class Inbound:
    """A decoded request: the canonical request and how the caller wants the answer."""

    wire: Wire
    request: ChatRequest
    stream: bool
    include_usage: bool
    result_format: Literal["text", "message"] = "message"
    incremental: bool | None = None
    async_task: bool = False

    @property
    def explicit(self) -> frozenset[str]:
        """The parameters the caller set (they win over routes and model defaults)."""
        return frozenset(self.request.model_fields_set - _TRANSPORT_FIELDS)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise _too_large(limit)
    return bytes(data)


def _too_large(limit: int) -> GatewayError:
    return GatewayError.of(
        "InvalidParameter", f"The request body is larger than {limit} bytes.", status=413
    )


def parse_json(data: bytes, *, max_depth: int) -> dict[str, Any]:
    """The body as a JSON object; 400 when it is not JSON, not an object, or too deep."""
    if not data.strip():
        raise GatewayError.of("InvalidParameter", "The request body is empty.")
    if _depth(data) > max_depth:
        raise GatewayError.of(
            "InvalidParameter", f"The request body is nested deeper than {max_depth} levels."
        )
    try:
        body = json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        raise GatewayError.of(
            "InvalidParameter", f"The request body is not valid JSON: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise GatewayError.of("InvalidParameter", "The request body must be a JSON object.")
    return body


def _no_constant(name: str) -> None:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (RFC 8259) and cannot be sent on."""
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    """A JSON number as a float, refusing one too large for a float (``1e999``), which
    Python would read as infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _depth(data: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings (a scan before the parser, so a
    body of a million ``[`` never reaches it)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _pydantic_message(exc: pydantic.ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def decode(
    body: dict[str, Any], wire: Wire, headers: Mapping[str, str], config: GatewayConfig
) -> Inbound:
    """The canonical request of ``body`` (400 ``InvalidParameter`` and friends otherwise)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise GatewayError.of(
            "BadRequest.EmptyModel", 'Required parameter "model" missing from request.'
        )
    messages = body.get("messages") if wire == "compat" else _native_messages(body)
    if isinstance(messages, list) and len(messages) > config.max_messages:
        raise GatewayError.of(
            "InvalidParameter",
            f"Too many messages: {len(messages)} (at most {config.max_messages}).",
        )
    try:
        if wire == "compat":
            if body.get("messages") is None:
                raise GatewayError.of(
                    "BadRequest.EmptyInput", "Required input parameter missing from request."
                )
            chat = compat.decode_request(body)
            inbound = Inbound(wire, chat, chat.stream is True, chat.includes_usage)
        else:
            decoded = native.decode_request(body, dict(headers))
            chat = decoded.request
            inbound = Inbound(
                wire,
                chat,
                decoded.stream,
                include_usage=True,
                result_format=decoded.result_format or "message",
                incremental=decoded.incremental_output,
                async_task=decoded.async_task,
            )
    except native.NativeRequestError as exc:
        raise GatewayError(exc.error) from None
    except compat.CompatRequestError as exc:
        raise GatewayError.of("InvalidParameter", str(exc)) from None
    except pydantic.ValidationError as exc:
        raise GatewayError.of("InvalidParameter", _pydantic_message(exc)) from None
    except (TypeError, ValueError, KeyError) as exc:  # a codec meeting a wrong type
        raise GatewayError.of("InvalidParameter", f"Invalid request: {exc}") from None
    alias = config.aliases.get(chat.model)
    if alias is not None:
        inbound.request = chat.model_copy(update={"model": alias})
    return inbound


def _native_messages(body: Mapping[str, Any]) -> Any:
    inp = body.get("input")
    return inp.get("messages") if isinstance(inp, Mapping) else None


async def read_inbound(request: Request, wire: Wire, config: GatewayConfig) -> Inbound:
    """Read, parse, check and decode the body of ``request``; see the module docstring."""
    data = await read_body(request, config.max_body_bytes)
    body = parse_json(data, max_depth=config.max_json_depth)
    return decode(body, wire, request.headers, config)
