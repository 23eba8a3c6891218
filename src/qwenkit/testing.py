"""Test doubles that users get too: a streaming in-process transport and an emulated client.

``httpx.ASGITransport`` runs an ASGI app to completion before it hands back the response, so a
stream from an in-process app arrives in one piece: time to first token, pacing, a consumer that
stops early and backpressure cannot be seen. ``StreamingASGITransport`` runs the app in its own
asyncio task and hands each ``http.response.body`` message to the reader as it is sent, through a
bounded queue (a slow reader pauses the app, as a socket would). Written here because httpx ships
only the buffering transport.

- A response is returned as soon as the app sends ``http.response.start``.
- Closing the response early (a consumer that stops reading) tells the app the client left
  (``http.disconnect``) and cancels the app's task.
- An app that fails before starting a response raises from the request; one that fails after
  (a dropped stream) raises ``httpx.RemoteProtocolError`` while the body is read, as a real
  server closing the connection would.

``emulated()`` is the usual way in: an ``AsyncQwen`` talking to an in-process emulator over this
transport (``async with emulated() as client``); the emulator needs the ``emulator`` extra.
It works on asyncio (the transport uses asyncio tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from qwenkit.client._async import AsyncQwen
    from qwenkit.emulator import EmulatorConfig

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]

__all__ = ["StreamingASGITransport", "emulated"]

_END = object()


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """An httpx transport that runs an ASGI app in process and streams its response bodies."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_buffer: int = 16,
        client: tuple[str, int] = ("127.0.0.1", 123),
    ) -> None:
        self.app = app
        self.max_buffer = max_buffer
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for (k, v) in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": "",
        }
        exchange = _Exchange(body, self.max_buffer)
        task = asyncio.create_task(exchange.run(self.app, scope))
        started = asyncio.ensure_future(exchange.started.wait())
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        if not exchange.started.is_set():
            started.cancel()
            task.result()  # the app's exception, if it failed before responding
            raise httpx.RemoteProtocolError("the app ended without sending a response")
        started.cancel()
        return httpx.Response(
            exchange.status,
            headers=exchange.headers,
            stream=_BodyStream(exchange, task),
            request=request,
        )


class _Exchange:
    """One request/response between the transport and the app's task."""

    def __init__(self, body: bytes, max_buffer: int) -> None:
        self.body = body
        self.sent_body = False
        self.started = asyncio.Event()
        self.gone = asyncio.Event()
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.queue: asyncio.Queue[object] = asyncio.Queue(max_buffer)

    async def run(self, app: ASGIApp, scope: MutableMapping[str, Any]) -> None:
        try:
            await app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            raise  # the reader closed the response: nobody is left to tell
        except Exception as exc:
            await self.queue.put(exc)  # read after the chunks before it, like a dropped socket
            raise
        await self.queue.put(_END)

    async def receive(self) -> Message:
        if not self.sent_body:
            self.sent_body = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.gone.is_set():
            raise OSError("the client went away")  # what a server sees writing to a closed socket
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = list(message.get("headers", []))
            self.started.set()
        elif message["type"] == "http.response.body":
            chunk = bytes(message.get("body", b""))
            if chunk:
                await self.queue.put(chunk)


class _BodyStream(httpx.AsyncByteStream):
    def __init__(self, exchange: _Exchange, task: asyncio.Task[None]) -> None:
        self._exchange = exchange
        self._task = task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._exchange.queue.get()
            if item is _END:
                return
            if isinstance(item, Exception):
                raise httpx.RemoteProtocolError(f"the app failed mid-response: {item!r}")
            assert isinstance(item, bytes)
            yield item

    async def aclose(self) -> None:
        self._exchange.gone.set()
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


@contextlib.asynccontextmanager
async def emulated(
    config: EmulatorConfig | None = None,
    *,
    scenarios: Any = None,
    **client_options: Any,
) -> AsyncIterator[AsyncQwen]:
    """An ``AsyncQwen`` talking to a fresh in-process emulator that streams like the real thing.

    ``config``/``scenarios`` go to ``qwenkit.emulator.create_app``; ``client_options`` to
    ``AsyncQwen`` (``mode="native"``, ``usage_sinks=``...)."""
    from qwenkit.client._async import AsyncQwen
    from qwenkit.emulator import create_app

    app = create_app(config, scenarios=scenarios)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=StreamingASGITransport(app)) as http,
        AsyncQwen(
            api_key=client_options.pop("api_key", "sk-emulator"),
            base_url="http://emulator",
            http_client=http,
            **client_options,
        ) as client,
    ):
        yield client
