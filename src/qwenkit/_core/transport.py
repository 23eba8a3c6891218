"""``Upstream``: one HTTP attempt of a call, as canonical events (the I/O edge of the pipeline).

An ``Upstream`` builds the HTTP request for ``call.request``, sends it with the client's one shared
``httpx.AsyncClient`` and yields canonical events. Flavours differ only in URL, headers and
parameter translation; the codecs of ``qwenkit.wire`` do the rest:

- ``dashscope`` in ``compat`` mode: ``POST {compat_url}/chat/completions``, Qwen parameters
  top-level, ``stream_options.include_usage`` on streams (so usage and cost are known);
- ``dashscope`` in ``native`` mode: ``POST {native_url}/services/aigc/{text|multimodal}-generation/
  generation`` (the endpoint from the model's profile; ``text`` for unknown models), streaming by
  header with ``incremental_output: true`` and ``result_format: "message"``;
- ``openai-compatible`` (vLLM, SGLang, llama.cpp serving Qwen): the compatible wire at
  ``compat_url``, with ``enable_thinking`` and ``thinking_budget`` moved into
  ``chat_template_kwargs`` (where Qwen's chat template reads them), and a ``tool_choice`` naming
  a function sent as ``"required"`` with ``tools`` narrowed to that function (llama.cpp ignores a
  named choice; see ``_to_required_choice``); the API key is optional.

Both modes of ``dashscope`` send ``Authorization: Bearer <key>`` and, when a workspace is set,
``X-DashScope-WorkSpace``.

**Inline reasoning** (``openai-compatible`` only): reasoning a server left inside ``content``
(``<think>...</think>``, no reasoning parser) is split out by ``qwenkit.streaming.think_tags``,
streamed or not, with the call's thinking (``call.state["thinking"]``).

**One path.** A non-streaming response is converted into the events a stream of the same answer
would give (``response_events``), so every consumer handles one shape. **One usage event.** Native
streams report cumulative usage in every chunk; only the last report matters, so usage is held
back and passed on once, just before ``Finished`` (or at the end), in both modes: half as many
events go through the pipeline. **Errors** become the
``APIError`` tree with the response's headers (``Retry-After``, ``x-should-retry``) and request
id: an error status (JSON or SSE-framed body), an error event inside a stream, httpx transport
errors (``APIConnectionError``; timeouts ``APITimeoutError``), and a stream that ends before it is
complete (no ``[DONE]``, an unfinished native choice) or a body that is not whole JSON, which both
mean the connection was lost (``APIConnectionError``). Whether to retry is not decided here.

Per-attempt timeouts (``timeout``: connect, read, write, pool) are set on every request, so they
hold with an HTTP client passed in too. ``call.timings.first_byte`` is stamped when the response
head arrives and ``call.request_id`` is set from the ``x-request-id`` header or the response
itself. The response is always closed, also when the consumer stops early (``aclose()`` of the
event stream closes the connection).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import httpx
import pydantic

from qwenkit._core.pipeline import Call, EventStream, closing
from qwenkit._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    WireError,
    error_from_info,
)
from qwenkit._settings import ConfigError, Settings
from qwenkit._timeouts import Timeout
from qwenkit.streaming.think_tags import split_think_tags
from qwenkit.types import (
    ChatResponse,
    ContentDelta,
    ErrorInfo,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    StreamError,
    ToolCallDelta,
    UsageReported,
    content_text,
)
from qwenkit.wire import compat, native
from qwenkit.wire.sse import SSEDecoder, aiter_sse

__all__ = ["Flavour", "Upstream", "response_events"]

Flavour = Literal["dashscope", "openai-compatible"]
_TEMPLATE_KWARGS = ("enable_thinking", "thinking_budget")
_SSE_START = (b"id:", b"event:", b"data:", b":")


class Upstream:
    """Send one attempt of a ``Call`` and yield its canonical events (see the module docstring)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: Settings,
        *,
        flavour: Flavour = "dashscope",
        timeout: Timeout | None = None,
    ) -> None:
        if flavour not in ("dashscope", "openai-compatible"):
            raise ConfigError(
                f"upstream must be 'dashscope' or 'openai-compatible', not {flavour!r}"
            )
        self.http = http
        self.settings = settings
        self.flavour: Flavour = flavour
        self._timeout = httpx.USE_CLIENT_DEFAULT if timeout is None else timeout.to_httpx()
        self._api_key = settings.resolved_api_key()
        if flavour == "dashscope" and not self._api_key:
            raise ConfigError(
                "no API key: set DASHSCOPE_API_KEY (or QWENKIT_API_KEY), pass api_key=..., "
                "or name a secrets file with api_key_file"
            )
        self.base_url = settings.url_for(self.wire)
        """The base URL of the wire spoken (checked here: a wrong ``base_url`` fails now)."""

    def describe(self) -> str:
        """Flavour, wire and base URL (never the key), for reprs and logs."""
        return f"{self.flavour} {self.wire} {self.base_url}"

    @property
    def wire(self) -> Literal["compat", "native"]:
        """The wire format spoken: the settings' mode for DashScope, ``compat`` otherwise."""
        return self.settings.mode if self.flavour == "dashscope" else "compat"

    def build_request(self, call: Call) -> httpx.Request:
        """The HTTP request of ``call`` as it stands (streamed if ``call.upstream_stream``)."""
        stream = _streams(call)
        headers: dict[str, str]
        if self.wire == "native":
            endpoint = call.profile.endpoint if call.profile is not None else "text"
            url = f"{self.base_url}/services/aigc/{endpoint}-generation/generation"
            body = native.encode_request(
                call.request,
                incremental_output=True if stream else None,
                multimodal=endpoint == "multimodal",
            )
            headers = native.request_headers(stream=stream)
        else:
            url = f"{self.base_url}/chat/completions"
            body = compat.encode_request(call.request)
            body.pop("stream", None)
            body.pop("stream_options", None)
            if stream:
                body["stream"] = True
                body["stream_options"] = {"include_usage": True}
            if self.flavour == "openai-compatible":
                _to_template_kwargs(body)
                _to_required_choice(body)
            accept = "text/event-stream" if stream else "application/json"
            headers = {"Content-Type": "application/json", "Accept": accept}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if self.flavour == "dashscope" and self.settings.workspace:
            headers["X-DashScope-WorkSpace"] = self.settings.workspace
        return self.http.build_request(
            "POST", url, json=body, headers=headers, timeout=self._timeout
        )

    async def events(self, call: Call) -> EventStream:
        """One attempt: the events of the answer; raises an ``APIError`` when it fails."""
        request = self.build_request(call)
        call.request_id = None
        with _translated():
            response = await _send(self.http, request)
        try:
            call.timings.first_byte = time.perf_counter()
            call.request_id = response.headers.get("x-request-id")
            with _translated():
                if response.status_code >= 400:
                    raise await self._error_response(response)
                if _streams(call):
                    events: EventStream = self._stream(response, call)
                else:
                    events = _replay(await self._body(response, call))
                if self.flavour == "openai-compatible":  # reasoning left inline in content
                    events = split_think_tags(
                        events,
                        thinking=call.state.get("thinking"),
                        closing_tag=self.settings.think_tag_in_prompt,
                    )
                async with closing(events) as stream:
                    async for event in stream:
                        yield event
        finally:
            await response.aclose()

    async def _stream(self, response: httpx.Response, call: Call) -> EventStream:
        decoder: compat.StreamDecoder | native.StreamDecoder
        if self.wire == "native":
            decoder = native.StreamDecoder(
                model=call.request.model, incremental=True, live_usage=False
            )
        else:
            decoder = compat.StreamDecoder()
        usage: UsageReported | None = None  # held back: see the module docstring
        async for sse in aiter_sse(response.aiter_bytes()):
            for event in decoder.feed(sse):
                if isinstance(event, UsageReported):
                    usage = event
                    continue
                if isinstance(event, StreamError):
                    raise _api_error(event.error, response, call.request_id, None)
                if isinstance(event, ResponseStarted) and call.request_id is None:
                    call.request_id = event.request_id
                if isinstance(event, Finished) and usage is not None:
                    yield usage
                    usage = None
                yield event
        if usage is not None:
            yield usage
        if not decoder.done:
            raise APIConnectionError(
                "the stream ended before it was complete (connection lost)",
                request_id=call.request_id,
            )

    async def _body(self, response: httpx.Response, call: Call) -> list[Event]:
        raw = await response.aread()
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise APIConnectionError(
                "the response body is not complete JSON (connection lost?)",
                request_id=call.request_id,
            ) from exc
        try:
            if self.wire == "native":
                answer = native.decode_response(data, model=call.request.model)
            else:
                answer = compat.decode_response(data)
        except pydantic.ValidationError as exc:
            raise WireError(f"the response body is not a chat completion: {exc}") from exc
        if call.request_id is None:
            call.request_id = answer.request_id
        return response_events(answer)

    async def _error_response(self, response: httpx.Response) -> APIStatusError:
        raw = await response.aread()
        text = _first_sse_data(raw)
        decode = native.decode_error if self.wire == "native" else compat.decode_error
        info = decode(response.status_code, text)
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text.decode("utf-8", "replace")
        return _api_error(info, response, None, body)


async def _send(http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send ``request``; once more at once when the connection broke before any answer came.

    A pooled keep-alive connection the server closed after its last response fails the next
    request on it: llama.cpp's server closes the connection after every streamed response while
    announcing ``Keep-Alive``, and the close races the client's next request. The client sees
    the end of the stream ("Server disconnected without sending a response",
    ``RemoteProtocolError``), a reset when its request reached the closed socket ("Connection
    reset by peer", ``ReadError``), or, with aiohttp, "Can not write request body"
    (``WriteError``). The server never handled that request, so it is sent again on a fresh
    connection, as the same attempt (no backoff: nothing failed but the reuse). A second failure
    is the attempt's error, which the retry policy sees.

    A ``ReadError`` raised here came before any byte of the answer (``send`` returns when the
    headers are in), so a server that got the request and then reset the connection is also
    sent it a second time: the same risk any retry of a connection error takes."""
    try:
        return await http.send(request, stream=True)
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
        return await http.send(request, stream=True)


async def _replay(events: list[Event]) -> EventStream:
    """A non-streaming answer's events as a stream."""
    for event in events:
        yield event


def _streams(call: Call) -> bool:
    """Whether the upstream request streams: as the policies decided, else as the caller asked."""
    return call.stream if call.upstream_stream is None else call.upstream_stream


def _api_error(
    info: ErrorInfo, response: httpx.Response, request_id: str | None, body: Any
) -> APIStatusError:
    if info.request_id is None:
        fallback = request_id or response.headers.get("x-request-id")
        info = dataclasses.replace(info, request_id=fallback)
    return error_from_info(info, body=body, headers=response.headers)


def _first_sse_data(raw: bytes) -> bytes:
    """An SSE-framed error body (a rejected stream) as the data of its first event."""
    if not raw.lstrip().startswith(_SSE_START):
        return raw
    decoder = SSEDecoder()
    events = decoder.feed(raw) + decoder.close()
    return events[0].data.encode() if events else raw


def _to_template_kwargs(body: dict[str, Any]) -> None:
    """Move Qwen's thinking switches into ``chat_template_kwargs`` (vLLM, SGLang)."""
    kwargs: dict[str, Any] = dict(body.get("chat_template_kwargs") or {})
    for name in _TEMPLATE_KWARGS:
        if name in body:
            kwargs.setdefault(name, body.pop(name))
    if kwargs:
        body["chat_template_kwargs"] = kwargs


def _to_required_choice(body: dict[str, Any]) -> None:
    """A named ``tool_choice`` as ``"required"`` with ``tools`` narrowed to that one function.

    llama.cpp's server reads ``tool_choice`` only as a string (``"auto"``, ``"none"``,
    ``"required"``): an object gets "Wrong type supplied for parameter 'tool_choice'" in its log
    and ``"auto"``, so a call forced by name (``extract()``) silently gets no call. ``"required"``
    over just that function means the same (the model must call it), and vLLM and SGLang accept
    it too. ``parallel_tool_calls`` is set to ``false`` unless the caller set it, as a named choice
    implies one call. A name that is not among the tools is left as it is.
    """
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    chosen = [tool for tool in body.get("tools") or () if _tool_name(tool) == name]
    if name is None or not chosen:
        return
    body["tools"] = chosen
    body["tool_choice"] = "required"
    body.setdefault("parallel_tool_calls", False)


def _tool_name(tool: Any) -> Any:
    function = tool.get("function") if isinstance(tool, dict) else None
    return function.get("name") if isinstance(function, dict) else None


@contextmanager
def _translated() -> Iterator[None]:
    """Turn httpx's transport errors into ``APIConnectionError`` / ``APITimeoutError``."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise APITimeoutError(f"Request timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise APIConnectionError(f"Connection error ({type(exc).__name__}): {exc}") from exc


def response_events(response: ChatResponse) -> list[Event]:
    """The events a stream of ``response`` would carry: the inverse of ``assemble``."""
    events: list[Event] = [
        ResponseStarted(
            id=response.id,
            model=response.model,
            created=response.created,
            request_id=response.request_id,
        )
    ]
    for choice in response.choices:
        message, index = choice.message, choice.index
        if message.reasoning_content:
            events.append(ReasoningDelta(message.reasoning_content, index))
        text = content_text(message.content)
        if text:
            events.append(ContentDelta(text, index))
        for position, call in enumerate(message.tool_calls or ()):
            events.append(
                ToolCallDelta(
                    index=position if call.index is None else call.index,
                    id=call.id or None,
                    name=call.function.name or None,
                    arguments=call.function.arguments,
                    choice=index,
                )
            )
        if choice.finish_reason:
            events.append(Finished(choice.finish_reason, index))
    if response.usage is not None:
        events.append(UsageReported(response.usage))
    return events
