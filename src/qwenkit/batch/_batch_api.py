"""``mode="batch-api"``: the pending lines through the OpenAI-compatible Batch interface.

The lines not yet in the output become one OpenAI batch file (``{"custom_id", "method": "POST",
"url", "body"}``, the line's model or the run's, ``stream`` removed), uploaded to
``{compat base}/files`` (``purpose=batch``); ``{compat base}/batches`` creates the batch
(``endpoint``, ``completion_window`` from ``BatchOptions``: DashScope's accepted values are
UNCONFIRMED); it is polled with a backoff (``poll_initial`` doubling up to ``poll_max``) until
``completed``, ``failed``, ``expired`` or ``cancelled``; then the output and error files are
downloaded and every row is written (usage, and cost at the catalog's Batch prices). Lines of a
``failed`` batch are written as error rows (``batch_failed``); lines left unanswered by an expired or
cancelled batch are not written, so a rerun sends them again. ``stop()`` cancels the batch and
writes what it had answered. Everything goes through the client's ``http_client`` with its
settings (compat base URL, ``Authorization: Bearer``, workspace).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from qwenkit._exceptions import APIConnectionError, QwenError, error_from_info
from qwenkit.batch._input import Item
from qwenkit.batch._output import error_row, success_row
from qwenkit.catalog import Cost, cost
from qwenkit.client import AsyncQwen
from qwenkit.types import Usage
from qwenkit.wire.compat.usage import decode_usage
from qwenkit.wire.errors import decode_compat_error

__all__ = ["BatchAPIRun", "batch_line"]

_DONE = ("completed", "failed", "expired", "cancelled")
Write = Callable[[dict[str, Any], Usage | None, Cost | None], None]


def batch_line(item: Item, model: str, endpoint: str) -> dict[str, Any]:
    """One line of the uploaded file."""
    body = {**item.params, "model": model, "messages": item.messages}
    body.pop("task", None)
    body.pop("stream", None)
    return {"custom_id": item.custom_id, "method": "POST", "url": endpoint, "body": body}


class BatchAPIRun:
    """Upload, create, poll, download and write; ``write(row, usage, cost)`` takes each row."""

    def __init__(
        self,
        client: AsyncQwen,
        *,
        model: str | None,
        task: str | None,
        endpoint: str,
        completion_window: str,
        poll_initial: float,
        poll_max: float,
        write: Write,
        stopping: asyncio.Event,
    ) -> None:
        self.client, self.model, self.task = client, model, task
        self.endpoint, self.window = endpoint, completion_window
        self.poll_initial, self.poll_max = poll_initial, poll_max
        self.write, self.stopping = write, stopping
        self.base = client.settings.compat_url
        self.batch: dict[str, Any] | None = None

    def _model(self, item: Item) -> str | None:
        model = item.params.get("model") or self.model
        task = item.params.get("task") or self.task
        if model is None and task is not None:
            try:
                model = self.client.router.route(str(task)).model
            except (QwenError, LookupError, ValueError):
                return None
        return str(model) if model else None

    async def run(self, items: Sequence[Item]) -> None:
        lines: list[str] = []
        models: dict[str, str] = {}
        for item in items:
            model = self._model(item)
            if model is None:
                message = "no model: give the line a model or task, or --model/--task"
                self.write(error_row(item.custom_id, "no_model", message), None, None)
                continue
            models[item.custom_id] = model
            lines.append(json.dumps(batch_line(item, model, self.endpoint), ensure_ascii=False))
        if not lines:
            return
        content = ("\n".join(lines) + "\n").encode()
        uploaded = await self._request(
            "POST",
            "/files",
            files={"file": ("batch.jsonl", content, "application/jsonl")},
            data={"purpose": "batch"},
        )
        created = {
            "input_file_id": uploaded["id"],
            "endpoint": self.endpoint,
            "completion_window": self.window,
        }
        self.batch = await self._request("POST", "/batches", json=created)
        batch = await self._poll(self.batch)
        if batch["status"] == "failed":
            errors = (batch.get("errors") or {}).get("data") or [{}]
            message = f"batch {batch['id']} failed: {errors[0].get('message') or 'no reason given'}"
            for custom_id in models:
                self.write(error_row(custom_id, "batch_failed", message), None, None)
            return
        for key in ("output_file_id", "error_file_id"):
            if batch.get(key):
                await self._download(str(batch[key]), models)

    async def _poll(self, batch: dict[str, Any]) -> dict[str, Any]:
        delay = self.poll_initial
        while batch["status"] not in _DONE:
            if self.stopping.is_set():
                return await self._request("POST", f"/batches/{batch['id']}/cancel")
            with contextlib.suppress(asyncio.TimeoutError):  # 3.10: not yet TimeoutError
                await asyncio.wait_for(self.stopping.wait(), timeout=delay)
            delay = min(delay * 2, self.poll_max)
            if not self.stopping.is_set():
                batch = await self._request("GET", f"/batches/{batch['id']}")
        return batch

    async def _download(self, file_id: str, models: dict[str, str]) -> None:
        response = await self._send("GET", f"/files/{file_id}/content")
        for raw in response.text.splitlines():
            if not raw.strip():
                continue
            row = json.loads(raw)
            custom_id = str(row.get("custom_id"))
            if custom_id not in models:
                continue
            self._row(custom_id, row, models[custom_id])

    def _row(self, custom_id: str, row: dict[str, Any], model: str) -> None:
        response = row.get("response") or {}
        body = response.get("body")
        status = response.get("status_code")
        if status == 200 and isinstance(body, dict):
            usage = decode_usage(body["usage"]) if isinstance(body.get("usage"), dict) else None
            price = self._cost(usage, str(body.get("model") or model))
            request_id = response.get("request_id")
            wire_usage = body.get("usage")
            self.write(
                success_row(
                    custom_id, body, request_id, wire_usage, str(price.total) if price else None
                ),
                usage,
                price,
            )
            return
        error = row.get("error") or (body.get("error") if isinstance(body, dict) else None) or {}
        code = str(error.get("code") or status or "batch_error")
        message = str(error.get("message") or "the batch did not answer this line")
        self.write(error_row(custom_id, code, message, status=status), None, None)

    def _cost(self, usage: Usage | None, model: str) -> Cost | None:
        if usage is None:
            return None
        region = self.client.settings.region.value
        try:
            return cost(usage, model, region, batch=True, catalog=self.client.catalog)
        except (QwenError, LookupError, ValueError):
            return None

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers: dict[str, str] = {}
        key = self.client.settings.resolved_api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if self.client.settings.workspace:
            headers["X-DashScope-WorkSpace"] = self.client.settings.workspace
        try:
            response = await self.client.http_client.request(
                method, self.base + path, headers=headers, **kwargs
            )
        except httpx.TransportError as exc:
            raise APIConnectionError(f"Connection error ({type(exc).__name__}): {exc}") from exc
        if response.status_code >= 400:
            info = decode_compat_error(response.status_code, response.content)
            raise error_from_info(info, headers=response.headers)
        return response

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._send(method, path, **kwargs)
        try:
            data: dict[str, Any] = response.json()
        except ValueError as exc:
            raise APIConnectionError("the response body is not complete JSON") from exc
        return data
