"""The OpenAI-compatible Batch API: files and batches under ``/compatible-mode/v1``.

=================================================  ==============================================
``POST /compatible-mode/v1/files``                 multipart upload (``file``, ``purpose=batch``)
``GET  /compatible-mode/v1/files/{file_id}``       the file object
``GET  /compatible-mode/v1/files/{file_id}/content``  the file's bytes
``POST /compatible-mode/v1/batches``               ``{"input_file_id", "endpoint",
                                                   "completion_window"}`` → the batch object
``GET  /compatible-mode/v1/batches/{batch_id}``    the batch object
``POST /compatible-mode/v1/batches/{batch_id}/cancel``  cancel a batch not yet finished
=================================================  ==============================================

The shapes are OpenAI's Batch API; DashScope documents the interface as OpenAI-compatible, but its
timings, accepted endpoints and windows, and its validation errors are UNCONFIRMED (the
``batches`` config section sets them). A batch is ``validating`` for
``batches.validating_seconds``; a file that is not valid JSONL (a line not a JSON object, no
``custom_id``, a repeated ``custom_id``, no object ``body``, a ``url`` other than the batch's
endpoint) makes it ``failed`` with ``errors``. Otherwise it is ``in_progress`` (at least
``batches.in_progress_seconds``) while each line's ``body`` goes through the emulator's own
``/chat/completions`` handler (``routes_chat.compat_chat``, in process, with the batch creator's
``Authorization``: the same answers, usage, throttling and faults), then ``finalizing`` and
``completed`` with an output file (answered lines) and an error file (failed lines), each line
``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}``. Errors are
in the compatible envelope; unknown ids are 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message

from qwenkit.emulator import routes_chat
from qwenkit.emulator.batch_store import StoredBatch, StoredFile
from qwenkit.emulator.messages import Wire
from qwenkit.emulator.state import EmulatorState, emulator_state
from qwenkit.emulator.streaming import error_response, json_response
from qwenkit.emulator.validation import auth_error
from qwenkit.types import ErrorInfo

__all__ = ["cancel_batch", "create_batch", "file_content", "get_batch", "get_file", "upload_file"]

CHAT_PATH = "/compatible-mode/v1/chat/completions"
_FINISHED = ("completed", "failed", "cancelled", "expired")


def _error(status: int, message: str, code: str, param: str | None = None) -> Response:
    kind = "invalid_request_error"
    error = ErrorInfo(status, code, message, compat_code=code, compat_type=kind, param=param)
    return error_response(error, wire="compat", stream=False, request_id=str(uuid.uuid4()))


def _auth(request: Request) -> tuple[EmulatorState, Response | None]:
    state = emulator_state(request)
    key, failure = state.check_key(request.headers.get("authorization"))
    if key is None or failure is not None:
        wire: Wire = "native" if failure == "missing" else "compat"
        error = auth_error(wire=wire, reason=failure or "missing")
        return state, error_response(error, wire=wire, stream=False, request_id=str(uuid.uuid4()))
    return state, None


def _ok(body: Any) -> Response:
    return json_response(200, body, {"x-request-id": str(uuid.uuid4())})


# -- files ----------------------------------------------------------------------------------


async def upload_file(request: Request) -> Response:
    state, denied = _auth(request)
    if denied is not None:
        return denied
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return _error(400, "The upload must be multipart/form-data.", "invalid_request_error")
    limit = state.config.batches.max_file_bytes
    async with request.form(max_files=1, max_part_size=limit) as form:
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, UploadFile):
            return _error(400, "Missing required parameter: 'file'.", "invalid_request_error")
        if purpose != "batch":
            return _error(400, f"Invalid purpose {purpose!r}: use 'batch'.", "invalid_value")
        content = await upload.read()
        name = upload.filename or "upload.jsonl"
    if len(content) > limit:
        return _error(400, f"The file is larger than {limit} bytes.", "invalid_request_error")
    return _ok(state.batches.add_file(name, "batch", content).to_json())


def _file(request: Request) -> tuple[StoredFile | None, Response | None]:
    state, denied = _auth(request)
    if denied is not None:
        return None, denied
    stored = state.batches.files.get(request.path_params["file_id"])
    if stored is None:
        return None, _error(404, "No such file.", "not_found")
    return stored, None


async def get_file(request: Request) -> Response:
    stored, failed = _file(request)
    return failed or _ok(stored.to_json() if stored else None)


async def file_content(request: Request) -> Response:
    stored, failed = _file(request)
    if failed is not None or stored is None:
        return failed or _error(404, "No such file.", "not_found")
    return Response(stored.content, 200, {"x-request-id": str(uuid.uuid4())}, "application/jsonl")


# -- batches --------------------------------------------------------------------------------


async def create_batch(request: Request) -> Response:
    state, denied = _auth(request)
    if denied is not None:
        return denied
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _error(400, "The body is not JSON.", "invalid_request_error")
    if not isinstance(body, dict):
        return _error(400, "The body must be a JSON object.", "invalid_request_error")
    config = state.config.batches
    file_id = body.get("input_file_id")
    if not isinstance(file_id, str) or file_id not in state.batches.files:
        return _error(404, f"No such file: {file_id!r}.", "not_found", "input_file_id")
    if body.get("endpoint") not in config.endpoints:
        message = f"Invalid endpoint {body.get('endpoint')!r}: use one of {config.endpoints}."
        return _error(400, message, "invalid_value", "endpoint")
    if body.get("completion_window") not in config.completion_windows:
        window = body.get("completion_window")
        message = f"Invalid completion_window {window!r}: use one of {config.completion_windows}."
        return _error(400, message, "invalid_value", "completion_window")
    now = int(time.time())
    stored = state.batches.add_batch(
        {
            "object": "batch", "endpoint": body["endpoint"], "errors": None,
            "input_file_id": file_id, "completion_window": body["completion_window"],
            "status": "validating", "output_file_id": None, "error_file_id": None,
            "created_at": now, "in_progress_at": None, "expires_at": now + 86_400,
            "finalizing_at": None, "completed_at": None, "failed_at": None, "expired_at": None,
            "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
    )  # fmt: skip
    authorization = request.headers.get("authorization", "")
    stored.task = asyncio.create_task(_run(request.app, state, stored, authorization))
    return _ok(stored.data)


def _batch(request: Request) -> tuple[EmulatorState, StoredBatch | None, Response | None]:
    state, denied = _auth(request)
    if denied is not None:
        return state, None, denied
    stored = state.batches.batches.get(request.path_params["batch_id"])
    if stored is None:
        return state, None, _error(404, "No such batch.", "not_found")
    return state, stored, None


async def get_batch(request: Request) -> Response:
    _, stored, failed = _batch(request)
    return failed or _ok(stored.data if stored else None)


async def cancel_batch(request: Request) -> Response:
    state, stored, failed = _batch(request)
    if failed is not None or stored is None:
        return failed or _error(404, "No such batch.", "not_found")
    if stored.data["status"] in _FINISHED:
        message = f"Cannot cancel a batch with status {stored.data['status']!r}."
        return _error(400, message, "invalid_request_error")
    stored.data.update(status="cancelling", cancelling_at=int(time.time()))
    if stored.task is not None and not stored.task.done():
        stored.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stored.task
    _write_files(state, stored)
    stored.data.update(status="cancelled", cancelled_at=int(time.time()))
    return _ok(stored.data)


# -- running a batch ------------------------------------------------------------------------


def _parse(content: bytes, endpoint: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The lines of an input file, or the first problem (an OpenAI ``errors.data`` entry)."""
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return [], {"code": "invalid_file", "message": "The file is not UTF-8.", "line": None}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            return [], _problem("invalid_json_line", "This line is not valid JSON.", number)
        if not isinstance(line, dict):
            return [], _problem("invalid_json_line", "This line is not a JSON object.", number)
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            return [], _problem("missing_custom_id", "This line has no 'custom_id'.", number)
        if custom_id in seen:
            return [], _problem("duplicate_custom_id", f"custom_id {custom_id!r} repeated.", number)
        if not isinstance(line.get("body"), dict):
            return [], _problem("missing_body", "This line has no object 'body'.", number)
        if line.get("url", endpoint) != endpoint:
            return [], _problem("mismatched_url", f"The url is not {endpoint!r}.", number)
        seen.add(custom_id)
        lines.append(line)
    if not lines:
        return [], {"code": "empty_file", "message": "The file has no request.", "line": None}
    return lines, None


def _problem(code: str, message: str, line: int) -> dict[str, Any]:
    return {"code": code, "message": f"line {line}: {message}", "param": None, "line": line}


async def _run(app: ASGIApp, state: EmulatorState, batch: StoredBatch, authorization: str) -> None:
    try:
        await _process(app, state, batch, authorization)
    except Exception as exc:  # a bug must not leave the batch in_progress forever
        problem = {"code": "internal_error", "message": repr(exc), "param": None, "line": None}
        errors = {"object": "list", "data": [problem]}
        batch.data.update(status="failed", failed_at=int(time.time()), errors=errors)


async def _process(
    app: ASGIApp, state: EmulatorState, batch: StoredBatch, authorization: str
) -> None:
    config = state.config.batches
    await asyncio.sleep(config.validating_seconds)
    stored = state.batches.files.get(batch.data["input_file_id"])
    lines, problem = _parse(stored.content if stored else b"", batch.data["endpoint"])
    if problem is not None:
        errors = {"object": "list", "data": [problem]}
        batch.data.update(status="failed", failed_at=int(time.time()), errors=errors)
        return
    started = time.monotonic()
    counts = batch.data["request_counts"]
    counts["total"] = len(lines)
    batch.data.update(status="in_progress", in_progress_at=int(time.time()))
    slots = asyncio.Semaphore(config.concurrency)

    async def one(line: dict[str, Any]) -> None:
        async with slots:
            status, request_id, body = await _chat(app, line["body"], authorization)
        row: dict[str, Any] = {
            "id": f"batch_req_{uuid.uuid4().hex}", "custom_id": line["custom_id"],
            "response": {"status_code": status, "request_id": request_id, "body": body},
            "error": None,
        }  # fmt: skip
        if status == 200:
            batch.output.append(row)
            counts["completed"] += 1
        else:
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                row["error"] = {"code": error.get("code"), "message": error.get("message")}
            batch.errors.append(row)
            counts["failed"] += 1

    await asyncio.gather(*(one(line) for line in lines))
    await asyncio.sleep(max(0.0, config.in_progress_seconds - (time.monotonic() - started)))
    batch.data.update(status="finalizing", finalizing_at=int(time.time()))
    _write_files(state, batch)
    batch.data.update(status="completed", completed_at=int(time.time()))


def _write_files(state: EmulatorState, batch: StoredBatch) -> None:
    """The output and error files of what was answered (none for an empty list)."""
    for rows, key in ((batch.output, "output_file_id"), (batch.errors, "error_file_id")):
        if rows and batch.data[key] is None:
            content = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            name = f"{batch.id}_{key.removesuffix('_file_id')}.jsonl"
            batch.data[key] = state.batches.add_file(name, "batch_output", content.encode()).id


async def _chat(app: ASGIApp, body: dict[str, Any], authorization: str) -> tuple[int, str, Any]:
    """One line through the emulator's ``/chat/completions`` handler, in process."""
    payload = json.dumps({**body, "stream": False}).encode()
    scope: dict[str, Any] = {
        "type": "http", "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": CHAT_PATH, "raw_path": CHAT_PATH.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"authorization", authorization.encode()),
                    (b"content-type", b"application/json")],
        "client": None, "server": None, "app": app,
    }  # fmt: skip
    sent = False
    never = asyncio.Event()

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await never.wait()
        return {"type": "http.disconnect"}

    status, chunks, headers = 500, bytearray(), {}

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            chunks.extend(message.get("body", b""))

    response = await routes_chat.compat_chat(Request(scope, receive))
    await response(scope, receive, send)
    try:
        answer: Any = json.loads(bytes(chunks))
    except ValueError:
        answer = {
            "error": {"code": "internal_error", "message": bytes(chunks).decode(errors="replace")}
        }
    return status, headers.get("x-request-id", ""), answer
