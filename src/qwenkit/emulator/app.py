"""The emulator's ASGI app: ``create_app(config, scenarios=...)``.

Routes (reference §12):

=======================================================  =========================================
``POST /compatible-mode/v1/chat/completions``            OpenAI-compatible chat (``routes_chat``)
``GET  /compatible-mode/v1/models``                      the catalog as an OpenAI model list
``/compatible-mode/v1/files``, ``.../batches``             the Batch API (``routes_batches``)
``POST /api/v1/services/aigc/text-generation/generation``        native text generation
``POST /api/v1/services/aigc/multimodal-generation/generation``  native multimodal generation
``GET  /api/v1/tasks/{task_id}``                         an asynchronous task (``routes_tasks``)
``POST /api/v1/tasks/{task_id}/cancel``                  cancel a PENDING task
``GET  /api/v1/tasks``                                   list tasks
``/_emulator/...``                                       the control API (``control``)
=======================================================  =========================================

Any other path, or a known path with another method, is 404 ``InvalidURL`` "Invalid URL provided
in your request." in the native envelope (the service's documented code for a bad URL; which
status it really uses for an unknown path is UNCONFIRMED).

The app is Starlette routing over plain endpoint functions; streams are pure ASGI responses
(``streaming.EventStream``); the one middleware is a quirk's (``connections.CloseAfterStream``).
All state lives in one ``EmulatorState`` on ``app.state.emulator``, built here, so two apps in
one process are fully independent. The lifespan loads the tokenizers ahead of the first request
(in-process clients that skip the lifespan load them on first use instead).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qwenkit.emulator import routes_batches, routes_chat, routes_tasks
from qwenkit.emulator.config import EmulatorConfig
from qwenkit.emulator.connections import CloseAfterStream
from qwenkit.emulator.control import control_routes
from qwenkit.emulator.messages import Wire
from qwenkit.emulator.state import EmulatorState, ScenarioSource, emulator_state
from qwenkit.emulator.streaming import error_response, json_response
from qwenkit.emulator.validation import auth_error

__all__ = ["COMPAT_PREFIX", "NATIVE_PREFIX", "app_state", "create_app"]

COMPAT_PREFIX = "/compatible-mode/v1"
NATIVE_PREFIX = "/api/v1"
_AIGC = NATIVE_PREFIX + "/services/aigc"


async def list_models(request: Request) -> Response:
    """``GET /compatible-mode/v1/models``: every catalog model, in the OpenAI list shape."""
    state = emulator_state(request)
    key, failure = state.check_key(request.headers.get("authorization"))
    if key is None or failure is not None:
        wire: Wire = "native" if failure == "missing" else "compat"
        error = auth_error(wire=wire, reason=failure or "missing")
        return error_response(error, wire=wire, stream=False, request_id=str(uuid.uuid4()))
    created = int(state.started)
    data = [
        {"id": profile.name, "object": "model", "created": created, "owned_by": "system"}
        for profile in state.catalog
    ]
    return json_response(200, {"object": "list", "data": data}, {"x-request-id": str(uuid.uuid4())})


async def _not_found(request: Request, exc: Exception) -> Response:
    """Unknown path or method: the native ``InvalidURL`` error (status 404)."""
    error = routes_chat.invalid_url(status=404)
    return error_response(error, wire="native", stream=False, request_id=str(uuid.uuid4()))


def create_app(
    config: EmulatorConfig | None = None, *, scenarios: ScenarioSource | None = None
) -> Starlette:
    """A new emulator app with its own state.

    ``config``: the configuration (defaults: a well-behaved service, see ``EmulatorConfig``).
    ``scenarios``: extra scenario rules, a YAML/JSON file path or parsed data (a list of rules or
    ``{"scenarios": [...]}``), tried after the config's own rules.
    """
    state = EmulatorState(config if config is not None else EmulatorConfig(), scenarios=scenarios)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(state.warm)
        yield

    routes = [
        Route(COMPAT_PREFIX + "/chat/completions", routes_chat.compat_chat, methods=["POST"]),
        Route(COMPAT_PREFIX + "/models", list_models, methods=["GET"]),
        Route(COMPAT_PREFIX + "/files", routes_batches.upload_file, methods=["POST"]),
        Route(COMPAT_PREFIX + "/files/{file_id}", routes_batches.get_file, methods=["GET"]),
        Route(
            COMPAT_PREFIX + "/files/{file_id}/content",
            routes_batches.file_content,
            methods=["GET"],
        ),
        Route(COMPAT_PREFIX + "/batches", routes_batches.create_batch, methods=["POST"]),
        Route(COMPAT_PREFIX + "/batches/{batch_id}", routes_batches.get_batch, methods=["GET"]),
        Route(
            COMPAT_PREFIX + "/batches/{batch_id}/cancel",
            routes_batches.cancel_batch,
            methods=["POST"],
        ),
        Route(_AIGC + "/text-generation/generation", routes_chat.native_text, methods=["POST"]),
        Route(
            _AIGC + "/multimodal-generation/generation",
            routes_chat.native_multimodal,
            methods=["POST"],
        ),
        Route(NATIVE_PREFIX + "/tasks", routes_tasks.list_tasks, methods=["GET"]),
        Route(NATIVE_PREFIX + "/tasks/", routes_tasks.list_tasks, methods=["GET"]),
        Route(NATIVE_PREFIX + "/tasks/{task_id}", routes_tasks.get_task, methods=["GET"]),
        Route(
            NATIVE_PREFIX + "/tasks/{task_id}/cancel", routes_tasks.cancel_task, methods=["POST"]
        ),
        *control_routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _not_found},
        middleware=[Middleware(CloseAfterStream, state=state)],
    )
    app.router.redirect_slashes = False
    app.state.emulator = state
    return app


def app_state(app: Starlette) -> EmulatorState:
    """The ``EmulatorState`` of an app made by ``create_app`` (for tests and embedding)."""
    state: EmulatorState = app.state.emulator
    return state
