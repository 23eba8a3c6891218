"""The generation endpoints: one handler for the compatible and both native routes.

Every request goes through the same steps, each able to answer with an error in the caller's
format (``streaming.error_response``): API key → body size and JSON → wire decoding (codec errors
are 400s) → catalog lookup → endpoint check (native) → prompt rendering → ``validate_request`` →
rate limits → the fault plan → the engine → usage (prompt, context cache, completion) → the
answer, streamed or not, or an asynchronous task.

Native endpoint mismatch (a ``multimodal`` catalog model on the text-generation path or the
reverse): 400 ``InvalidURL`` "Invalid URL provided in your request." The docs only say such a call
"returns a url error"; code and text are the documented ``InvalidURL``, 400 is the status of the
status-code table (UNCONFIRMED for this case). A missing key gets the native 401 body on both
wires (a capture shows the compatible route answering it natively).

The answer's seed is a stable hash of the canonical request (without ``stream`` and
``stream_options``, so both forms answer alike) and ``faults.seed``: the same request always gets
the same answer, on either wire. Each request is recorded in the state's request log.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from qwenkit.emulator.engine import EngineContext, tool_rounds
from qwenkit.emulator.engine.base import request_digest
from qwenkit.emulator.engine.quirks import (
    NAMED_TOOL_CHOICE_IGNORED,
    ignore_named_tool_choice,
    noted,
)
from qwenkit.emulator.generation import Fault, Generation
from qwenkit.emulator.messages import Wire
from qwenkit.emulator.render import (
    build_response,
    count_output,
    encode_body,
    make_usage,
    plan_events,
)
from qwenkit.emulator.routes_tasks import submit_task
from qwenkit.emulator.state import EmulatorState, emulator_state
from qwenkit.emulator.streaming import (
    EventStream,
    error_response,
    json_answer,
    paced_body,
    stream_encoder,
)
from qwenkit.emulator.throttle import retry_after_header
from qwenkit.emulator.usage import render_prompt
from qwenkit.emulator.validation import (
    async_not_supported_error,
    auth_error,
    check_body,
    effective_thinking,
    validate_request,
)
from qwenkit.types import ChatRequest, ErrorInfo, ResponseStarted, Usage
from qwenkit.wire import compat, native
from qwenkit.wire.errors import make_error

__all__ = ["INVALID_URL", "compat_chat", "invalid_url", "native_multimodal", "native_text"]

Endpoint = Literal["text", "multimodal"]
Endpoint_ = Callable[[Request], Awaitable[Response]]
INVALID_URL = "Invalid URL provided in your request."


def invalid_url(status: int = 400) -> ErrorInfo:
    return make_error("InvalidURL", INVALID_URL, status=status)


_LOGGED = ("request_id", "wire", "path", "model", "stream", "body", "key_id")


@dataclass
class _Call:
    """One request on its way through the handler; ``fail`` and ``record`` log it."""

    state: EmulatorState
    wire: Wire
    path: str
    stream: bool
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    key_id: str | None = None
    body: dict[str, Any] | None = None
    model: str | None = None

    def record(
        self, status: int, generation: Generation | None, usage: Usage | None
    ) -> dict[str, Any]:
        entry = {name: getattr(self, name) for name in _LOGGED}
        entry.update(time=time.time(), status=status, usage=usage and usage.model_dump())
        entry.update(source=generation and generation.source)
        entry.update(notes=list(generation.notes) if generation else [])
        self.state.log.add(entry)
        return entry

    @property
    def headers(self) -> dict[str, str]:
        if not self.state.config.quirks.request_id_header:
            return {}
        return {"x-request-id": self.request_id}

    def fail(self, error: ErrorInfo, generation: Generation | None = None) -> Response:
        self.record(error.status, generation, None)
        quirks = self.state.config.quirks
        headers = retry_after_header(quirks) if error.status == 429 else {}
        return error_response(
            error,
            wire=self.wire,
            stream=self.stream,
            request_id=self.request_id,
            headers=headers,
            envelope=quirks.error_envelope,
            request_id_header=quirks.request_id_header,
        )


def _endpoint(wire: Wire, endpoint: Endpoint | None) -> Endpoint_:
    async def handle(request: Request) -> Response:
        return await _handle(request, wire, endpoint)

    return handle


compat_chat = _endpoint("compat", None)  # /compatible-mode/v1/chat/completions
native_text = _endpoint("native", "text")  # /api/v1/services/aigc/text-generation/generation
native_multimodal = _endpoint("native", "multimodal")  # .../multimodal-generation/generation


def _native_stream_header(request: Request) -> bool:
    sse = request.headers.get("x-dashscope-sse", "").strip().lower() == "enable"
    return sse or "text/event-stream" in request.headers.get("accept", "").lower()


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, but never much more than ``limit`` bytes of it (``check_body`` rejects that)."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            break
    return bytes(data)


def _decode_compat(body: dict[str, Any]) -> ChatRequest | ErrorInfo:
    if body.get("model") is None:
        return make_error(
            "BadRequest.EmptyModel", 'Required parameter "model" missing from request.'
        )
    if body.get("messages") is None:
        return make_error("BadRequest.EmptyInput", "Required input parameter missing from request.")
    try:
        return compat.decode_request(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        text = f"{where}: {first['msg']}" if where else str(first["msg"])
        return ErrorInfo(400, "InvalidParameter", text, compat_code="invalid_parameter_error")


async def _handle(request: Request, wire: Wire, endpoint: Endpoint | None) -> Response:
    state = emulator_state(request)
    config = state.config
    if config.pacing.slow_upstream_ms:
        await anyio.sleep(config.pacing.slow_upstream_ms / 1000)
    call = _Call(state, wire, request.url.path, wire == "native" and _native_stream_header(request))
    key_id, failure = state.check_key(request.headers.get("authorization"))
    if key_id is None or failure is not None:
        if failure == "missing":  # captured: the compatible route answers this one natively too
            call.wire = "native"
        return call.fail(auth_error(wire=wire, reason=failure or "missing"))
    call.key_id = key_id
    body, error = check_body(
        await _read_body(request, config.limits.max_body_bytes),
        max_body_bytes=config.limits.max_body_bytes,
    )
    if body is None:
        return call.fail(error or make_error("InvalidParameter", "Required body invalid."))
    call.body = body
    native_request: native.NativeRequest | None = None
    if wire == "native":
        try:
            native_request = native.decode_request(body, dict(request.headers))
        except native.NativeRequestError as exc:
            return call.fail(exc.error)
        chat = native_request.request
        call.stream = native_request.stream
        if native_request.async_task:
            if endpoint != "text" or not config.tasks.text_generation_async:
                return call.fail(async_not_supported_error())
            call.stream = False  # a task is answered later, never streamed
    else:
        decoded = _decode_compat(body)
        if isinstance(decoded, ErrorInfo):
            return call.fail(decoded)
        chat = decoded
        call.stream = chat.stream is True
    call.model = chat.model
    return await _answer(call, chat, native_request, endpoint)


async def _answer(
    call: _Call,
    chat: ChatRequest,
    native_request: native.NativeRequest | None,
    endpoint: Endpoint | None,
) -> Response:
    state, config, key_id = call.state, call.state.config, call.key_id or ""
    profile = state.profile(chat.model)
    if endpoint is not None and profile is not None and profile.endpoint != endpoint:
        return call.fail(invalid_url())
    chat, choice_ignored = ignore_named_tool_choice(chat, wire=call.wire, quirks=config.quirks)
    tokenizer = state.tokenizer(profile)
    prompt = render_prompt(chat, tokenizer.family)
    error = validate_request(
        chat,
        wire=call.wire,
        stream=call.stream,
        profile=profile,
        config=config,
        prompt_tokens=len(prompt.ids),
    ) or state.limiter.admit(key_id, len(prompt.ids), wire=call.wire)
    if error is not None or profile is None:
        return call.fail(error or make_error("ModelNotFound", "Model can not be found."))
    drawn = state.faults.draw(key_id, state.next_request_number(key_id))
    if isinstance(drawn, ErrorInfo):
        return call.fail(drawn)
    thinking = effective_thinking(chat, profile)
    seed = int(request_digest(chat)[:15], 16) + config.faults.seed
    context = EngineContext(profile, thinking, config, seed, tool_rounds(chat), call.wire)
    generation = state.engine.generate(chat, context)
    if choice_ignored:
        generation = noted(generation, NAMED_TOOL_CHOICE_IGNORED)
    is_task = native_request is not None and native_request.async_task
    if generation.error is not None and not is_task:
        return call.fail(generation.error, generation)
    cache = state.cache.observe(key_id, profile.name, prompt.ids, prompt.marks)
    out = count_output(tokenizer, generation)
    state.limiter.charge(key_id, out.completion)
    usage = make_usage(
        prompt=len(prompt.ids),
        completion=out.completion,
        reasoning=out.reasoning,
        cached=cache.cached_tokens,
        cache_creation=cache.cache_creation_tokens,
        report_cache=call.wire == "compat",
    )
    entry = call.record(200, generation, usage)
    drawn_fault = drawn if isinstance(drawn, Fault) and call.stream else None  # stream faults
    fault = generation.fault or drawn_fault
    result_format: Literal["text", "message"] = "message"
    if native_request is not None:
        result_format = native_request.result_format or config.result_format_for(chat.model)
    created = int(time.time())
    if call.stream:
        incremental = native_request.incremental_output if native_request else None
        encoder = stream_encoder(
            call.wire,
            include_usage=chat.includes_usage,
            thinking=thinking,
            result_format=result_format,
            incremental=(thinking if incremental is None else incremental)
            and not config.quirks.cumulative_native_stream,
        )
        started = ResponseStarted(
            "chatcmpl-" + call.request_id, chat.model, created, call.request_id
        )
        plan = plan_events(
            generation,
            tokenizer=tokenizer,
            chunk_tokens=config.pacing.chunk_tokens,
            usage=usage,
            started=started,
            cumulative=call.wire == "native",
        )
        body_chunks = paced_body(plan, encoder, config.pacing, fault)

        def ended(disconnected: bool) -> None:
            entry.update(ended=time.time(), disconnected=disconnected)

        return EventStream(body_chunks, headers=call.headers, on_end=ended)
    response = build_response(
        generation, usage=usage, request_id=call.request_id, model=chat.model, created=created
    )
    body = encode_body(
        response, wire=call.wire, result_format=result_format, multimodal=endpoint == "multimodal"
    )
    if is_task:
        return submit_task(
            state,
            request_id=call.request_id,
            key_id=key_id,
            model=chat.model,
            body=None if generation.error else body,
            error=generation.error,
        )
    return await json_answer(
        body,
        wire=call.wire,
        request_id=call.request_id,
        pacing=config.pacing,
        completion_tokens=out.completion,
        fault=fault,
        envelope=config.quirks.error_envelope,
        request_id_header=config.quirks.request_id_header,
    )
