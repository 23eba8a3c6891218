"""Service tasks of ``submit(server=True)``: ``X-DashScope-Async`` submission and the task API.

1. The client's request policies run as for ``chat`` (the pipeline's ``BeforeCall`` policies:
   route, ``max_tokens``, thinking, history, parameters, context window). A task cannot stream,
   so it cannot think: thinking is off unless asked for, and asking (or a model that only
   streams) is a ``ValidationError``.
2. The native body goes to ``{native}/services/aigc/{endpoint}-generation/generation`` with
   ``X-DashScope-Async: enable`` through the client's ``http_client``, whatever the client's
   mode. A refused submission (the 403 ``AccessDenied`` of a service that runs no tasks) raises
   at once; it and validation errors are written as usage records.
3. ``GET {native}/tasks/{id}`` follows the task and ``POST {native}/tasks/{id}/cancel`` cancels
   it (reference §4). Polls failing with a retryable error (503, 504, no response) are tried
   again at the next delay; other errors raise.
4. The outcome is written once, when ``result()`` first reads it, by running the answer's
   events through the client's ``UsagePolicy``: usage sinks and costs work as for ``chat``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from qwenkit._core.pipeline import Call, EventStream, Pipeline
from qwenkit._core.policies import BeforeCall
from qwenkit._core.transport import response_events
from qwenkit._core.usage import UsagePolicy
from qwenkit._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    QwenError,
    UsageError,
    ValidationError,
    error_from_info,
)
from qwenkit._settings import Settings
from qwenkit.client._result import AsyncChatStream, ChatResult, Finish
from qwenkit.client._tasks import TERMINAL, AsyncTask, PollSchedule, Sleep, TaskError
from qwenkit.wire import native

__all__ = ["ServerTask", "TaskContext", "submit_server"]

_TASK_KEYS = ("task_id", "task_status", "submit_time", "scheduled_time", "end_time", "task_metrics")


@dataclass(frozen=True)
class TaskContext:
    """What service tasks use of their client: where to send, how, and how results are made."""

    settings: Settings
    http: httpx.AsyncClient
    pipeline: Pipeline
    dashscope: bool
    """Whether the upstream is DashScope (tasks exist only there)."""
    finish: Finish


async def submit_server(context: TaskContext, call: Call) -> ServerTask:
    """Submit ``call`` (made with thinking off unless asked for) as a service task; see the
    module docstring. A failure is recorded by the client's usage policy, then raised."""
    try:
        return await _submit(context, call)
    except QwenError as exc:
        for policy in context.pipeline.policies:
            if isinstance(policy, UsagePolicy):
                policy.record_rejection(call, exc)
        raise


async def _submit(context: TaskContext, call: Call) -> ServerTask:
    if not context.dashscope:
        raise UsageError("server tasks need DashScope (upstream='dashscope')")
    for policy in context.pipeline.policies:
        if isinstance(policy, BeforeCall):
            policy.prepare(call)
    if call.upstream_stream:
        raise ValidationError(
            "an asynchronous task cannot stream, and this call would (thinking is on, or the "
            "model only streams): pass thinking=False or pick another model",
            param="enable_thinking",
        )
    endpoint = call.profile.endpoint if call.profile is not None else "text"
    url = f"{context.settings.native_url}/services/aigc/{endpoint}-generation/generation"
    body = native.encode_request(
        call.request, incremental_output=None, multimodal=endpoint == "multimodal"
    )
    data = await _request(context, "POST", url, body, async_task=True)
    output = data.get("output") or {}
    if not output.get("task_id"):
        raise APIError("the submission was accepted without a task_id", body=data)
    call.request_id = data.get("request_id")
    return ServerTask(context, call, str(output["task_id"]))


class ServerTask(AsyncTask):
    """A task of the service, followed through the task API."""

    server = True

    def __init__(self, context: TaskContext, call: Call, task_id: str) -> None:
        self.id = task_id
        self._context, self._call = context, call
        self._output: dict[str, Any] = {"task_status": "PENDING"}
        self._usage: Any = None
        self._settled: tuple[ChatResult | None, BaseException | None] | None = None

    @property
    def call(self) -> Call:
        """The submitted call (its model, tags and request id make the usage record)."""
        return self._call

    @property
    def _url(self) -> str:
        return f"{self._context.settings.native_url}/tasks/{self.id}"

    def snapshot(self) -> dict[str, Any]:
        """The task as the last ``status()`` saw it: ``{"output": ..., "usage": ...}`` in the
        native task API's shape (what a gateway relays)."""
        body: dict[str, Any] = {"output": {"task_id": self.id, **self._output}}
        if self._usage is not None:
            body["usage"] = self._usage
        return body

    async def status(self) -> str:
        data = await _request(self._context, "GET", self._url)
        self._output = dict(data.get("output") or {})
        self._usage = data.get("usage")
        return str(self._output.get("task_status", "UNKNOWN"))

    async def cancel(self) -> bool:
        try:
            await _request(self._context, "POST", f"{self._url}/cancel")
        except APIStatusError as exc:
            if exc.code == "UnsupportedOperation":  # no longer PENDING: too late
                return False
            raise
        return True

    async def _wait(self, timeout: float | None, poll: PollSchedule, sleep: Sleep) -> None:
        started, slept = time.monotonic(), 0.0
        for delay in poll.delays():
            try:
                status = await self.status()
            except APIError as exc:
                if not exc.retryable:
                    raise
                status = str(self._output.get("task_status", "UNKNOWN"))
            if status in TERMINAL:
                return
            left = None if timeout is None else timeout - max(time.monotonic() - started, slept)
            if left is not None and left <= 0:
                raise self._timeout(timeout, status)
            pause = delay if left is None else min(delay, left)
            await sleep(pause)
            slept += pause

    async def result(self) -> ChatResult:
        status = str(self._output.get("task_status"))
        if status not in TERMINAL:
            raise TaskError(
                f"task {self.id} is {status}: no result yet (use wait())",
                task_id=self.id,
                status=status,
            )
        if self._settled is None:  # first read of the outcome: through the usage policy, once
            policies = self._context.pipeline.policies
            usage = [p for p in policies if isinstance(p, UsagePolicy)]
            stream = AsyncChatStream(
                Pipeline(usage, self._replay).run(self._call), self._call, self._context.finish
            )
            try:
                self._settled = (await stream.get_result(), None)
            except QwenError as exc:
                self._settled = (None, exc)
        answer, error = self._settled
        if answer is None:
            raise error or TaskError(f"task {self.id}: no result", task_id=self.id, status=status)
        return answer

    async def _replay(self, call: Call) -> EventStream:
        output, status = self._output, str(self._output.get("task_status"))
        if status == "FAILED":
            message = str(output.get("message") or "the task failed")
            raise APIError(message, code=output.get("code"), request_id=call.request_id)
        if status != "SUCCEEDED":
            raise TaskError(
                f"task {self.id} is {status}: no result", task_id=self.id, status=status
            )
        body = {
            "output": {k: v for k, v in output.items() if k not in _TASK_KEYS},
            "request_id": call.request_id or "",
            **({"usage": self._usage} if isinstance(self._usage, dict) else {}),
        }
        for event in response_events(native.decode_response(body, model=call.request.model)):
            yield event


async def _request(
    context: TaskContext, method: str, url: str, body: Any = None, async_task: bool = False
) -> dict[str, Any]:
    """One request to the native API; the decoded JSON body, or the ``APIError``."""
    headers = native.request_headers(stream=False, async_task=async_task)
    key = context.settings.resolved_api_key()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if context.settings.workspace:
        headers["X-DashScope-WorkSpace"] = context.settings.workspace
    try:
        response = await context.http.request(method, url, json=body, headers=headers)
    except httpx.TransportError as exc:
        raise APIConnectionError(f"Connection error ({type(exc).__name__}): {exc}") from exc
    if response.status_code >= 400:
        info = native.decode_error(response.status_code, response.content)
        raise error_from_info(info, headers=response.headers)
    try:
        data: dict[str, Any] = response.json()
    except ValueError as exc:
        raise APIConnectionError("the response body is not complete JSON") from exc
    return data
