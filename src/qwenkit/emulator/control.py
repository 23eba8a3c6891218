"""The control API under ``/_emulator/`` (no key needed): inspect and steer a running emulator.

================================  =================================================================
``GET /_emulator/health``         ``{"status": "ok", "models", "requests", "tasks", "uptime_seconds"}``
``GET /_emulator/config``         the configuration as JSON
``PATCH /_emulator/config``       deep-merge a JSON object into it (validated; a bad patch is a 400
                                  and changes nothing); affects the requests that follow
``POST /_emulator/reset``         forget context caches, per-key counters, throttle windows, tasks
                                  and the request log
``GET /_emulator/requests``       the request log, oldest first (``?limit=N``: the last N); a
                                  stream's entry gains ``ended`` (epoch seconds) and
                                  ``disconnected`` (the client left first) when it stops
``POST /_emulator/scenarios``     replace every scenario rule (a list, or ``{"scenarios": [...]}``)
================================  =================================================================

Errors here are ``{"error": "<message>"}`` with status 400: this is the emulator's own API, not
DashScope's.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from qwenkit._exceptions import QwenError
from qwenkit.emulator.state import emulator_state
from qwenkit.emulator.streaming import json_response

__all__ = ["control_routes"]


def _bad(message: str) -> Response:
    return json_response(400, {"error": message})


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"the body is not JSON: {exc}") from None


class _BadRequest(Exception):
    pass


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


async def health(request: Request) -> Response:
    state = emulator_state(request)
    body = {
        "status": "ok",
        "models": len(state.catalog),
        "requests": len(state.log),
        "tasks": len(state.tasks),
        "uptime_seconds": round(time.time() - state.started, 3),
    }
    return json_response(200, body)


async def get_config(request: Request) -> Response:
    return json_response(200, emulator_state(request).config.model_dump(mode="json"))


async def patch_config(request: Request) -> Response:
    state = emulator_state(request)
    try:
        patch = await _json(request)
        if not isinstance(patch, dict):
            return _bad("the patch must be a JSON object")
        config = state.patch_config(patch)
    except _BadRequest as exc:
        return _bad(str(exc))
    except ValidationError as exc:
        return _bad(_describe(exc))
    except (QwenError, OSError) as exc:  # a catalog file that cannot be used, for example
        return _bad(str(exc))
    return json_response(200, config.model_dump(mode="json"))


async def reset(request: Request) -> Response:
    emulator_state(request).reset()
    return json_response(200, {"reset": True})


async def requests(request: Request) -> Response:
    state = emulator_state(request)
    raw = request.query_params.get("limit")
    limit: int | None = None
    if raw is not None:
        try:
            limit = max(0, int(raw))
        except ValueError:
            return _bad(f"limit must be an integer, not {raw!r}")
    return json_response(200, {"requests": state.log.last(limit), "total": len(state.log)})


async def scenarios(request: Request) -> Response:
    state = emulator_state(request)
    try:
        data = await _json(request)
        if not isinstance(data, (list, dict)):
            return _bad("expected a list of rules or {'scenarios': [...]}")
        count = state.replace_scenarios(data)
    except _BadRequest as exc:
        return _bad(str(exc))
    except QwenError as exc:  # UsageError from the scenario loader names the rule and the field
        return _bad(str(exc))
    return json_response(200, {"rules": count})


def control_routes() -> list[BaseRoute]:
    """The ``/_emulator/...`` routes."""
    return [
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/_emulator/config", get_config, methods=["GET"]),
        Route("/_emulator/config", patch_config, methods=["PATCH"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/requests", requests, methods=["GET"]),
        Route("/_emulator/scenarios", scenarios, methods=["POST"]),
    ]
