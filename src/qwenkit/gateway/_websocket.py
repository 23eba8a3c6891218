"""The SSE-to-WebSocket relay: ``WS /v1/chat/completions/ws`` and ``/compatible-mode/v1/...``.

A socket carries chat requests in and their streamed answers out, one request at a time, each
through the route the SSE clients use: a message becomes an in-process HTTP request to
``Gateway.chat`` (the socket's key, the message as the body, ``stream`` forced on), and the SSE
response it answers is read back into messages, one per ``data:`` payload. So a WebSocket
request gets what an SSE one gets, from the same code: the key checked on every request (a key
revoked mid-socket stops working), the input checks, the budgets, the key's reasoning policy, the
bounded relay buffer (the socket's ``send`` waits while the client's TCP window is full, so the
upstream is read no faster than the client reads), a ledger record per request, rejected ones
included; and every chunk is byte for byte the JSON of the SSE route's ``data:`` line::

    client                                              gateway
    {"type": "auth", "key": "qk-..."}              ──►  (first, when the handshake had no
                                                   ◄──   Authorization header; browsers)
                                                        {"type": "authenticated"}
    {"id": "r1", "model": ..., "messages": [...]}  ──►
                                                   ◄──  {"choices": [...], "object":
                                                         "chat.completion.chunk", ...}   each chunk
                                                   ◄──  {"error": {...}, "request_id": ...}  on error
                                                   ◄──  {"type": "done", "id": "r1", "status": 200,
                                                         "request_id": ..., "cancelled"?: true}
    {"type": "cancel"}                             ──►  stops the answer being streamed
    {"type": "ping"}                               ──►  {"type": "pong"}

Every request ends with exactly one ``done``, which echoes the request's ``id`` (any JSON value,
removed from the body before it is sent on; the chunks keep their own ``chatcmpl-`` ids) and says
the HTTP status the SSE route would have answered. A request refused up front (bad JSON, a bad
parameter, a budget) is an error message and its ``done``, and the socket stays open. A missing,
unknown or revoked key is an error message, then close code 1008 (policy violation); so is a
socket that needs a key and sends nothing for ``AUTH_TIMEOUT`` seconds. A key is never read from
the URL. Requests sent while an answer streams wait their turn (at most ``MAX_PENDING``; past
that the socket is not read until one is done). A client that closes the socket, or sends
``cancel``, ends the answer as an SSE client's disconnect does: the upstream request is closed
and only what was consumed is settled (the record says ``cancelled``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.requests import Request
from starlette.types import Message, Scope
from starlette.websockets import WebSocket, WebSocketDisconnect

from qwenkit._core.pipeline import Call
from qwenkit.gateway._auth import authenticate, bearer
from qwenkit.gateway._errors import GatewayError
from qwenkit.gateway._inbound import parse_json
from qwenkit.types import ChatRequest, ErrorInfo
from qwenkit.wire.error_body import error_body, json_bytes
from qwenkit.wire.sse import SSEDecoder

if TYPE_CHECKING:
    from starlette.responses import Response

    from qwenkit.client import AsyncQwen
    from qwenkit.gateway._config import GatewayConfig
    from qwenkit.storage import Store


class Gateway(Protocol):
    """What a socket needs of ``qwenkit.gateway._app.Gateway`` (which imports this module)."""

    config: GatewayConfig
    store: Store
    client: AsyncQwen

    @property
    def master_key(self) -> str | None: ...

    async def chat(self, request: Request, wire: Literal["compat", "native"]) -> Response: ...


__all__ = ["AUTH_TIMEOUT", "MAX_PENDING", "POLICY_VIOLATION", "ChatSocket"]

POLICY_VIOLATION = 1008
AUTH_TIMEOUT = 10.0
"""Seconds a socket that needs a key may wait before its ``auth`` message."""
MAX_PENDING = 16
"""Requests queued behind the one being answered."""

_REPLACED = frozenset({b"authorization", b"content-length", b"content-type"})
_ECHOED = {"x-request-id": "request_id", "x-qwenkit-cache": "cache",
           "x-qwenkit-prompt-cache": "prompt_cache", "retry-after": "retry_after"}  # fmt: skip
_CONTROL = ("auth", "cancel", "ping")


@dataclass
class _Inbound:
    """One client message: ``kind`` is ``request``, ``auth``, ``cancel``, ``ping`` or
    ``unknown`` (a ``type`` this module does not speak)."""

    kind: str
    id: Any = None
    body: bytes = b""
    key: str | None = None
    type: str = ""


@dataclass
class _Turn:
    """The request being answered."""

    id: Any
    stop: anyio.Event = field(default_factory=anyio.Event)
    cancelled: bool = False


class ChatSocket:
    """One socket of the relay (module docstring)."""

    def __init__(self, gateway: Gateway, websocket: WebSocket) -> None:
        self.gateway = gateway
        self.websocket = websocket
        self.token = bearer(Request({"type": "http", "headers": websocket.scope["headers"]}))
        self.closed = False
        self.turn: _Turn | None = None

    async def run(self) -> None:
        await self.websocket.accept()
        if self.token is not None and not await self._admit(self.token):
            return
        outbox, inbox = anyio.create_memory_object_stream[_Inbound](MAX_PENDING)
        async with anyio.create_task_group() as group:
            group.start_soon(self._listen, outbox)
            await self._serve(inbox)
            group.cancel_scope.cancel()

    # -- reading ------------------------------------------------------------------------------

    async def _listen(self, outbox: MemoryObjectSendStream[_Inbound]) -> None:
        """Read the socket: ``cancel`` acts at once, the rest is queued in order."""
        async with outbox:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    self._gone()
                    return
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", "replace")
                inbound = self._parse(text)
                if inbound.kind == "cancel":
                    self._cancel(inbound.id)
                else:
                    await outbox.send(inbound)

    def _parse(self, text: str) -> _Inbound:
        """A message as a request body (``id`` out, ``stream`` on) or a control message. One
        that is not a JSON object goes on as it is, so the route refuses it in its own words."""
        data = text.encode()
        config = self.gateway.config
        if len(data) > config.max_body_bytes:
            return _Inbound("request", body=data)
        try:
            body = parse_json(data, max_depth=config.max_json_depth)
        except GatewayError:
            return _Inbound("request", body=data)
        ident = body.pop("id", None)
        if "type" not in body:
            return _Inbound("request", ident, json_bytes({**body, "stream": True}))
        kind, key = body["type"], body.get("key")
        if kind in _CONTROL:
            return _Inbound(str(kind), ident, key=key if isinstance(key, str) else None)
        return _Inbound("unknown", ident, type=str(kind))

    def _cancel(self, ident: Any) -> None:
        turn = self.turn
        if turn is not None and (ident is None or ident == turn.id):
            turn.cancelled = True
            turn.stop.set()

    def _gone(self) -> None:
        self.closed = True
        if self.turn is not None:
            self.turn.stop.set()

    # -- answering ----------------------------------------------------------------------------

    async def _serve(self, inbox: MemoryObjectReceiveStream[_Inbound]) -> None:
        deadline = anyio.current_time() + AUTH_TIMEOUT  # for a socket that must send a key
        async with inbox:
            while not self.closed:
                inbound: _Inbound | None = None
                with anyio.CancelScope(deadline=deadline if self._needs_key() else math.inf):
                    try:
                        inbound = await inbox.receive()
                    except anyio.EndOfStream:
                        return
                if inbound is None:
                    message = f"No API-key provided within {AUTH_TIMEOUT:g} s."
                    await self._refuse(GatewayError.of("InvalidApiKey", message, status=401).error)
                    return
                if self.closed or not await self._handle(inbound):
                    return

    def _needs_key(self) -> bool:
        return self.token is None and self.gateway.config.require_keys

    async def _handle(self, inbound: _Inbound) -> bool:
        """Answer one message; ``False`` when the socket is done."""
        if inbound.kind == "request":
            return await self._answer(inbound)
        if inbound.kind == "ping":
            return await self._send(_with_id({"type": "pong"}, inbound.id))
        if inbound.kind == "auth" and self.token is None:
            if not await self._admit(inbound.key):
                return False
            return await self._send(_with_id({"type": "authenticated"}, inbound.id))
        if inbound.kind == "auth":
            message = "The socket has a key already (an auth message is accepted once, on a "
            message += "socket opened without an Authorization header)."
        else:
            message = f"Unknown message type {inbound.type!r} (a chat request has no type; "
            message += f"the others are {', '.join(_CONTROL)})."
        error = GatewayError.of("InvalidParameter", message).error
        sent = await self._send(_error_text(error))
        return sent and await self._send(_with_id({"type": "done", "status": 400}, inbound.id))

    async def _admit(self, token: str | None) -> bool:
        """Check the socket's key now (it is checked again on every request); a refusal is
        recorded, answered, and closes the socket."""
        gateway = self.gateway
        try:
            await authenticate(
                Request(self._scope(token, b"")),
                keys=gateway.store.keys,
                master_key=gateway.master_key,
                required=gateway.config.require_keys,
            )
        except GatewayError as exc:
            call = Call(request=ChatRequest.model_construct(model="", messages=[]))
            endpoint = self.websocket.headers.get("x-qwenkit-endpoint")
            if endpoint:
                call.tags["endpoint"] = endpoint
            gateway.client.record_rejection(call, exc)
            await self._refuse(exc.error)
            return False
        self.token = token
        return True

    async def _answer(self, inbound: _Inbound) -> bool:
        """Run one request through ``Gateway.chat`` and relay its response (module docstring)."""
        turn = self.turn = _Turn(inbound.id)
        relay = _Relay(self, turn, inbound.body)
        request = Request(self._scope(self.token, inbound.body), relay.receive)
        try:
            response = await self.gateway.chat(request, "compat")
            await response(request.scope, relay.receive, relay.send)
        except OSError:  # the client went away while an answer was being sent
            self._gone()
        finally:
            self.turn = None
        if self.closed:
            return False
        if relay.status == 401:  # the key was revoked since the socket opened
            await self._close("invalid API key")
            return False
        done: dict[str, Any] = {"type": "done", "status": relay.status}
        for header, name in _ECHOED.items():
            value = relay.headers.get(header)
            if value is not None:
                done[name] = int(value) if value.isdigit() else value
        if turn.cancelled:
            done["cancelled"] = True
        return await self._send(_with_id(done, inbound.id))

    # -- writing ------------------------------------------------------------------------------

    async def _send(self, text: str) -> bool:
        try:
            await self.websocket.send_text(text)
        except WebSocketDisconnect:
            self._gone()
            return False
        return True

    async def _refuse(self, error: ErrorInfo) -> None:
        """An error message, then close code 1008."""
        if await self._send(_error_text(error)):
            await self._close("invalid API key")

    async def _close(self, reason: str) -> None:
        self.closed = True
        with contextlib.suppress(WebSocketDisconnect, OSError):  # the client left first
            await self.websocket.close(POLICY_VIOLATION, reason)

    def _scope(self, token: str | None, body: bytes) -> Scope:
        """The HTTP scope of a request of this socket: its handshake's headers (the endpoint
        tag, the task), the socket's key, a JSON body of ``len(body)`` bytes."""
        socket = self.websocket.scope
        headers = [(name, value) for name, value in socket["headers"] if name not in _REPLACED]
        if token is not None:
            headers.append((b"authorization", b"Bearer " + token.encode()))
        headers += [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]  # fmt: skip
        return {  # the socket's own path: the access log tells its requests apart
            **socket,
            "type": "http",
            "method": "POST",
            "scheme": "https" if socket.get("scheme") == "wss" else "http",
            "headers": headers,
        }


class _Relay:
    """The ASGI ``receive`` and ``send`` of one request's response: the body, then a
    disconnect when the turn stops; SSE ``data:`` payloads out as messages (``[DONE]`` becomes
    the ``done`` message), a JSON error body out as one message."""

    def __init__(self, socket: ChatSocket, turn: _Turn, body: bytes) -> None:
        self.socket = socket
        self.turn = turn
        self.body: bytes | None = body
        self.status = 0
        self.headers: dict[str, str] = {}
        self.sse = False
        self.decoder = SSEDecoder()
        self.buffer = bytearray()

    async def receive(self) -> Message:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.turn.stop.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in message.get("headers", [])
            }
            self.sse = self.headers.get("content-type", "").startswith("text/event-stream")
            return
        body: bytes = message.get("body", b"")
        if self.sse:
            for event in self.decoder.feed(body):
                if event.data != "[DONE]":
                    await self._send(event.data)
            return
        self.buffer += body
        if not message.get("more_body", False) and self.buffer:
            await self._send(self.buffer.decode())

    async def _send(self, text: str) -> None:
        if not await self.socket._send(text):
            raise OSError("the client closed the socket")  # what RelayedStream expects (ASGI 2.4)


def _with_id(message: dict[str, Any], ident: Any) -> str:
    if ident is not None:
        message["id"] = ident
    return json_bytes(message).decode()


def _error_text(error: ErrorInfo) -> str:
    """The error as the compatible route answers it up front (its request id filled in)."""
    if error.request_id is None:
        error = dataclasses.replace(error, request_id=str(uuid.uuid4()))
    return error_body(error, wire="compat", stream=False).body.decode()
