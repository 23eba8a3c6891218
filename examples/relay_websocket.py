"""WebSocket: relay Qwen answers to a client with backpressure, and let the client interrupt.

Run it (uvicorn serves WebSockets with the ``websockets`` or ``wsproto`` package installed,
as ``uvicorn[standard]`` does), then talk to ``ws://127.0.0.1:8000/chat``, for example with
``python -m websockets ws://127.0.0.1:8000/chat``::

    uv run --no-sync uvicorn examples.relay_websocket:app

Send ``{"prompt": "..."}``; the answer comes back as JSON messages, ``{"type": "content",
"text": ...}`` then ``{"type": "done"}``. Any message sent while an answer streams stops it
(``{"type": "stopped"}``; a new prompt is then answered), and closing the socket stops it too: in
both cases the model stream is closed at once. ``relay`` keeps at most ``max_buffer`` messages
between the model and a slow client.

With ``DASHSCOPE_API_KEY`` set the app talks to DashScope (the client reads ``QWENKIT_*``
settings too). Without it, it talks to the qwenkit emulator in this process
(``qwenkit.testing.emulated``), paced at 40 tokens a second so the answer visibly streams (and
can be interrupted).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from qwenkit import AsyncChatStream, AsyncQwen, ContentDelta
from qwenkit.emulator import EmulatorConfig
from qwenkit.relay import relay
from qwenkit.testing import emulated

PACED = EmulatorConfig.model_validate({"pacing": {"tokens_per_second": 40}})
"""Without a key: the in-process emulator, slow enough to watch the answer stream."""


async def messages(stream: AsyncChatStream) -> AsyncIterator[str]:
    """The answer's text as JSON messages (never the reasoning); closes the stream at the end."""
    async with stream:
        async for event in stream:
            if isinstance(event, ContentDelta) and event.choice == 0:
                yield json.dumps({"type": "content", "text": event.text}, ensure_ascii=False)


class Conversation:
    """One socket: prompts in, answers out, one answer at a time."""

    def __init__(self, websocket: WebSocket, client: AsyncQwen) -> None:
        self.websocket = websocket
        self.client = client
        self.next: str | None = None  # a message that interrupted an answer, handled next
        self.closed = False

    async def run(self) -> None:
        await self.websocket.accept()
        while not self.closed:
            try:
                text = self.next or await self.websocket.receive_text()
            except WebSocketDisconnect:
                return
            self.next = None
            prompt = _prompt(text)
            if prompt:
                await self.answer(prompt)

    async def answer(self, prompt: str) -> None:
        interrupted = False
        async with anyio.create_task_group() as group:

            async def listen() -> None:  # any message (or a close) stops the answer
                nonlocal interrupted
                try:
                    self.next = await self.websocket.receive_text()
                except WebSocketDisconnect:
                    self.closed = True
                interrupted = True
                group.cancel_scope.cancel()

            group.start_soon(listen)
            try:
                await relay(messages(self.client.stream(prompt)), self.websocket.send_text)
            except (WebSocketDisconnect, OSError):  # gone while we were sending
                self.closed = True
            group.cancel_scope.cancel()
        if not self.closed:
            await self.websocket.send_text(
                json.dumps({"type": "stopped" if interrupted else "done"})
            )


def _prompt(text: str) -> str | None:
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip() or None
    prompt = data.get("prompt") if isinstance(data, dict) else None
    return prompt if isinstance(prompt, str) and prompt.strip() else None


async def chat(websocket: WebSocket) -> None:
    await Conversation(websocket, websocket.app.state.qwen).run()


def make_app(emulator: EmulatorConfig | None = None) -> Starlette:
    """The app; without ``DASHSCOPE_API_KEY`` it uses an in-process emulator (``emulator``)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if os.environ.get("DASHSCOPE_API_KEY"):
            async with AsyncQwen() as client:
                app.state.qwen = client
                yield
            return
        async with emulated(emulator or PACED) as client:
            app.state.qwen = client
            yield

    return Starlette(routes=[WebSocketRoute("/chat", chat)], lifespan=lifespan)


app = make_app()
