"""``qwenkit.relay.sse_frames`` and the two runnable Starlette examples built on ``relay``."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

from qwenkit._exceptions import RateLimitError
from qwenkit.emulator import EmulatorConfig
from qwenkit.relay import sse_frames
from qwenkit.types import (
    ContentDelta,
    ErrorInfo,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    StreamError,
    ToolCallDelta,
    Usage,
    UsageReported,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def decode(frames: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for frame in frames:
        text = frame.decode()
        assert text.startswith("data: ")
        assert text.endswith("\n\n")
        assert "\n" not in text[:-2]  # one line per frame
        out.append(json.loads(text[len("data: ") : -2]))
    return out


async def events(*items: Event | str, error: Exception | None = None) -> AsyncIterator[Any]:
    for item in items:
        yield item
    if error is not None:
        raise error


SAMPLE: tuple[Event, ...] = (
    ResponseStarted(id="chatcmpl-1", model="qwen-plus"),
    ReasoningDelta("secret thoughts"),
    ContentDelta("Hello\nworld"),
    ToolCallDelta(index=0, id="call_1", name="f", arguments='{"a": 1}'),
    UsageReported(Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)),
    Finished("stop"),
)


async def collect(stream: AsyncIterator[bytes]) -> list[bytes]:
    return [frame async for frame in stream]


@pytest.mark.anyio
async def test_frames_never_carry_reasoning_unless_asked() -> None:
    frames = decode(await collect(sse_frames(events(*SAMPLE))))
    assert [frame["type"] for frame in frames] == [
        "start",
        "content",
        "tool_call",
        "usage",
        "finish",
        "done",
    ]
    assert "secret" not in json.dumps(frames)
    assert frames[1] == {"type": "content", "text": "Hello\nworld", "choice": 0}
    assert frames[3]["usage"]["total_tokens"] == 5
    shown = decode(await collect(sse_frames(events(*SAMPLE), include_reasoning=True)))
    assert shown[1] == {"type": "reasoning", "text": "secret thoughts", "choice": 0}


@pytest.mark.anyio
async def test_strings_are_content_and_errors_end_the_stream() -> None:
    error = RateLimitError("Requests rate limit exceeded.", code="Throttling.RateQuota")
    frames = decode(await collect(sse_frames(events("a", "", "b", error=error))))
    assert frames == [
        {"type": "content", "text": "a"},
        {"type": "content", "text": "b"},
        {
            "type": "error",
            "code": "Throttling.RateQuota",
            "message": "Requests rate limit exceeded.",
        },
    ]
    info = ErrorInfo(500, "InternalError", "boom")
    (frame, done) = decode(await collect(sse_frames(events(StreamError(info)))))
    assert frame == {"type": "error", "code": "InternalError", "message": "boom"}
    assert done == {"type": "done"}


@pytest.mark.anyio
async def test_other_errors_propagate_and_the_source_is_closed() -> None:
    closed = []

    async def source() -> AsyncIterator[Event]:
        try:
            yield ContentDelta("x")
            raise KeyError("bug")
        finally:
            closed.append(True)

    with pytest.raises(KeyError):
        await collect(sse_frames(source()))
    assert closed == [True]


def test_the_sse_example_relays_an_answer() -> None:
    example = load("relay_sse")
    with TestClient(example.make_app(EmulatorConfig())) as client:
        response = client.get("/chat", params={"q": "Why is the sky blue?"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = decode([f"{part}\n\n".encode() for part in response.text.split("\n\n") if part])
    assert frames[0]["type"] == "start"
    assert frames[-1] == {"type": "done"}
    assert "".join(f["text"] for f in frames if f["type"] == "content").strip()


@pytest.mark.anyio
async def test_the_sse_example_stops_reading_when_the_client_disconnects() -> None:
    example = load("relay_sse")
    closed = anyio.Event()
    produced = []

    async def frames() -> AsyncIterator[bytes]:
        try:
            for number in range(10_000):
                produced.append(number)
                yield b"data: {}\n\n"
        finally:
            closed.set()

    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep(0.05)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)
        await anyio.sleep(0.01)  # a slow client

    response = example.RelayResponse(frames(), media_type="text/event-stream")
    with anyio.fail_after(5):
        await response({"type": "http", "asgi": {"spec_version": "2.3"}}, receive, send)
    assert closed.is_set()
    assert len(produced) < 50  # read no faster than the client took it, then stopped


class SlowStream:
    """Stands in for ``AsyncChatStream``: one content delta every 5 ms; records its closing."""

    def __init__(self, words: int) -> None:
        self.words = words
        self.sent = 0
        self.closed = False

    async def __aenter__(self) -> SlowStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.closed = True

    def __aiter__(self) -> SlowStream:
        return self

    async def __anext__(self) -> Event:
        if self.sent == self.words:
            raise StopAsyncIteration
        await anyio.sleep(0.005)
        self.sent += 1
        return ContentDelta(f"w{self.sent} ")


class SlowQwen:
    """``stream(prompt)``: a long answer for "long", a short one otherwise (the emulator in
    process cannot stream: ``httpx.ASGITransport`` reads whole responses)."""

    def __init__(self) -> None:
        self.streams: list[SlowStream] = []

    def stream(self, prompt: str) -> SlowStream:
        self.streams.append(SlowStream(10_000 if prompt == "long" else 3))
        return self.streams[-1]


def test_the_websocket_example_answers_and_can_be_interrupted() -> None:
    example = load("relay_websocket")
    app = example.make_app(EmulatorConfig())
    with TestClient(app) as client:
        with client.websocket_connect("/chat") as ws:
            ws.send_text(json.dumps({"prompt": "hello"}))  # the emulator, in process
            kinds = [json.loads(ws.receive_text())["type"]]
            while kinds[-1] != "done":
                kinds.append(json.loads(ws.receive_text())["type"])
            assert set(kinds[:-1]) == {"content"}
        fake = SlowQwen()
        app.state.qwen = fake
        with client.websocket_connect("/chat") as ws:
            ws.send_text(json.dumps({"prompt": "long"}))
            assert json.loads(ws.receive_text()) == {"type": "content", "text": "w1 "}
            ws.send_text(json.dumps({"prompt": "short"}))  # interrupts, then is answered
            kinds = []
            while not kinds or kinds[-1] != "done":
                kinds.append(json.loads(ws.receive_text())["type"])
            long, short = fake.streams
            assert long.closed
            assert long.sent < 1_000
            assert kinds[-5:] == ["stopped", "content", "content", "content", "done"]
            assert short.closed

            ws.send_text("long")  # a plain-text prompt; then the client goes away
            json.loads(ws.receive_text())
        assert fake.streams[-1].closed  # leaving the block waited for the handler to end
        assert fake.streams[-1].sent < 1_000
