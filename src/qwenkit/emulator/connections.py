"""``CloseAfterStream``: the emulator's one connection-level quirk, as ASGI middleware.

``quirks.close_after_stream``: llama.cpp's server (cpp-httplib) closes the connection after
every streamed response, while its headers announce ``Keep-Alive: timeout=5, max=100`` and no
``Connection: close``. A client that pools the connection sends its next request on it and gets
no answer: "Server disconnected without sending a response" (httpx), "Can not write request
body" (aiohttp). The real server's close races the next request; here it is made deterministic:
after a streamed answer (``text/event-stream``) the connection is marked, and the next request
that arrives on it is not answered, the connection is closed instead.

The race has two outcomes, and the quirk has a mode for each. ``true``: the connection is
closed (a FIN: the client reads the end of the stream, "Server disconnected"). ``"reset"``: it is
closed with ``SO_LINGER`` 0, an RST (the client's read fails, "Connection reset by peer"), which
is what the client meets when its request reached the socket after llama.cpp had closed it.
Either way the request is first read to its end, which is what keeps the outcome deterministic:
closing a socket with unread data makes the kernel reset it, and a client still writing meets
the reset on its write, then reads the end of the stream (httpcore writes the headers and the
body separately, so the body is often still in flight).

The connection is the server's, which ASGI does not expose: uvicorn's ``receive`` is a method of
its request cycle, which holds the transport (``receive.__self__.transport``) and a method of the
connection's protocol object (``on_response``), which marks the connection (uvloop's transports
take no weak references). Under another server, or in process (``httpx.ASGITransport``), there is
no connection to find and the quirk does nothing.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import weakref
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qwenkit.emulator.state import EmulatorState

__all__ = ["CloseAfterStream"]


class CloseAfterStream:
    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state
        self._closing: weakref.WeakSet[Any] = weakref.WeakSet()  # protocols, one per connection

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = _connection(receive)
        if connection is not None and connection[0] in self._closing:
            self._closing.discard(connection[0])
            await _drain(receive)
            if self.state.config.quirks.close_after_stream == "reset":
                _abort(connection[1])
            else:
                connection[1].close()  # the request that came on it is never answered
            for _ in range(3):  # let the server see the connection gone before we return
                await asyncio.sleep(0)
            return
        if connection is None:
            await self.app(scope, receive, send)
            return
        streamed = False

        async def watched(message: Message) -> None:
            nonlocal streamed
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                streamed = headers.get(b"content-type", b"").startswith(b"text/event-stream")
            elif streamed and _last_body(message) and self.state.config.quirks.close_after_stream:
                # marked before the last bytes go: the client's next request may be read
                # before this task runs again
                self._closing.add(connection[0])
            await send(message)

        await self.app(scope, receive, watched)


def _last_body(message: Message) -> bool:
    return message["type"] == "http.response.body" and not message.get("more_body", False)


async def _drain(receive: Receive) -> None:
    """Read the request to its end: the client is done writing, and a close is not a reset."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def _abort(transport: Any) -> None:
    """Close with ``SO_LINGER`` 0: the kernel resets the connection (RST)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.close()


def _connection(receive: Receive) -> tuple[Any, Any] | None:
    """(the connection's protocol object, its transport) under uvicorn, else ``None``."""
    cycle: Any = getattr(receive, "__self__", None)
    protocol = getattr(getattr(cycle, "on_response", None), "__self__", None)
    transport = getattr(cycle, "transport", None)
    if protocol is None or not callable(getattr(transport, "close", None)):
        return None
    return protocol, transport
