"""Server-sent events: relay a Qwen answer to a browser with backpressure (``qwenkit.relay``).

Run it, then open the stream (``-N``: show the frames as they arrive)::

    uv run --no-sync uvicorn examples.relay_sse:app
    curl -N 'http://127.0.0.1:8000/chat?q=Why+is+the+sky+blue%3F'

Each frame is one ``data:`` line of JSON (``{"type": "content", "text": ...}``, ``usage``,
``finish``... and ``{"type": "done"}`` last); the model's reasoning is never sent.

With ``DASHSCOPE_API_KEY`` set the app talks to DashScope (the client reads ``QWENKIT_*``
settings too). Without it, it talks to the qwenkit emulator in this process
(``qwenkit.testing.emulated``), paced at 40 tokens a second so the answer visibly streams.

``RelayResponse`` is a ``StreamingResponse`` whose body goes through ``relay``: a client that
reads slowly slows the read of the model stream (at most ``max_buffer`` frames wait in memory),
and when the client goes away Starlette cancels the response, which closes the model stream.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Send

from qwenkit import AsyncQwen
from qwenkit.emulator import EmulatorConfig
from qwenkit.relay import relay, sse_frames
from qwenkit.testing import emulated

PACED = EmulatorConfig.model_validate({"pacing": {"tokens_per_second": 40}})
"""Without a key: the in-process emulator, slow enough to watch the answer stream."""


class RelayResponse(StreamingResponse):
    """A streaming response whose body is relayed through a bounded buffer."""

    max_buffer = 16

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )

        async def body(chunk: str | bytes | memoryview) -> None:
            data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
            await send({"type": "http.response.body", "body": data, "more_body": True})

        await relay(self.body_iterator, body, max_buffer=self.max_buffer)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def chat(request: Request) -> Response:
    question = request.query_params.get("q", "Why is the sky blue?")
    client: AsyncQwen = request.app.state.qwen
    frames = sse_frames(client.stream(question))
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return RelayResponse(frames, media_type="text/event-stream", headers=headers)


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

    return Starlette(routes=[Route("/chat", chat)], lifespan=lifespan)


app = make_app()
