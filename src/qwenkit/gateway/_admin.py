"""The admin API behind the master key: keys, environment limits, budgets, reports, requests.

Every route needs ``Authorization: Bearer <master key>`` (401 otherwise; a virtual key is not
enough) and answers JSON; errors use the OpenAI envelope. They are thin: the work is done by
``qwenkit.storage`` (the same functions as the ``qwenkit keys``, ``budget`` and ``report``
commands), so the CLI, this API and the dashboard agree by construction.

| route | what |
| --- | --- |
| ``GET /admin/keys[?all=true]`` | the keys (never a key itself) |
| ``POST /admin/keys`` | ``{"name", "environment"?, "daily_budget"?, "rpm"?, "tpm"?,
  "models"?, "reasoning"?, "max_tokens"?}``: 201 with ``key``, shown this once |
| ``DELETE /admin/keys/{id}`` | revoke |
| ``PUT /admin/environments/{name}`` | ``{"daily_budget"?, "rpm"?, "tpm"?}``: the environment's limits |
| ``GET /admin/budgets[?key=ID][&env=NAME]`` | spent, reserved, limit, remaining, reset time |
| ``GET /admin/report?since=7d&by=endpoint&tz=UTC`` | the usage report (``qwenkit report --format json``) |
| ``GET /admin/requests?limit=100&endpoint=&model=&key_id=&status=`` | the newest usage records |
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Literal

import anyio.to_thread
import pydantic
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qwenkit.gateway._auth import authenticate
from qwenkit.gateway._errors import GatewayError
from qwenkit.gateway._responses import error_response, json_response
from qwenkit.storage import Limits, Store
from qwenkit.storage._status import budget_states

__all__ = ["admin_routes"]

Handler = Callable[[Request], Awaitable[Response]]
_GROUPS = ("endpoint", "model", "key", "env", "day", "hour")


class _LimitsBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    daily_budget: Decimal | None = pydantic.Field(None, ge=0)
    rpm: int | None = pydantic.Field(None, ge=1)
    tpm: int | None = pydantic.Field(None, ge=1)

    def limits(self) -> Limits:
        return Limits(
            daily_cost=self.daily_budget, requests_per_minute=self.rpm, tokens_per_minute=self.tpm
        )


class _NewKey(_LimitsBody):
    name: str = pydantic.Field(min_length=1, max_length=200)
    environment: str | None = pydantic.Field(None, min_length=1, max_length=64)
    models: list[str] | None = None
    reasoning: Literal["strip", "pass", "log"] | None = None
    max_tokens: int | None = pydantic.Field(None, ge=1)


def admin_routes(store: Store, master_key: str | None) -> list[Route]:
    """The admin routes over ``store``; all refuse everyone without ``master_key``."""
    return _Admin(store, master_key).routes()


async def _body_of(request: Request, model: type[pydantic.BaseModel]) -> Any:
    try:
        return model.model_validate_json(await request.body())
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise GatewayError.of("InvalidParameter", f"{where}: {first['msg']}") from None


class _Admin:
    def __init__(self, store: Store, master_key: str | None) -> None:
        self.store = store
        self.master_key = master_key

    def routes(self) -> list[Route]:
        guarded = self._guarded
        return [
            Route("/admin/keys", guarded(self.list_keys), methods=["GET"]),
            Route("/admin/keys", guarded(self.create_key), methods=["POST"]),
            Route("/admin/keys/{key_id}", guarded(self.revoke_key), methods=["DELETE"]),
            Route("/admin/environments/{name}", guarded(self.set_environment), methods=["PUT"]),
            Route("/admin/budgets", guarded(self.budgets), methods=["GET"]),
            Route("/admin/report", guarded(self.report), methods=["GET"]),
            Route("/admin/requests", guarded(self.requests), methods=["GET"]),
        ]

    def _guarded(self, handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            try:
                caller = await authenticate(
                    request, keys=None, master_key=self.master_key, required=True
                )
                if not caller.master:
                    raise GatewayError.of(
                        "InvalidApiKey", "The admin API needs the master key.", status=401
                    )
                return await handler(request)
            except GatewayError as exc:
                return error_response(exc.error, wire="compat", stream=False, request_id=request_id)

        return run

    def _keys(self) -> Any:
        if self.store.keys is None:
            raise GatewayError.of("InvalidParameter", "This gateway has no keys store.", status=404)
        return self.store.keys

    def _ledger_url(self) -> Any:
        url = self.store.urls.get("ledger")
        if url is None:
            raise GatewayError.of("InvalidParameter", "This gateway has no ledger.", status=404)
        return url

    async def list_keys(self, request: Request) -> Response:
        everything = request.query_params.get("all", "").lower() in ("1", "true", "yes")
        found = await self._keys().list(include_revoked=everything)
        return json_response(200, {"keys": [info.to_dict() for info in found]})

    async def create_key(self, request: Request) -> Response:
        new: _NewKey = await _body_of(request, _NewKey)
        created = await self._keys().create(
            new.name,
            environment=new.environment,
            limits=new.limits(),
            models=new.models,
            reasoning=new.reasoning,
            max_tokens=new.max_tokens,
        )
        return json_response(201, {"key": created.key, **created.info.to_dict()})

    async def revoke_key(self, request: Request) -> Response:
        key_id = request.path_params["key_id"]
        if not await self._keys().revoke(key_id):
            raise GatewayError.of("InvalidParameter", f"No active key {key_id!r}.", status=404)
        return json_response(200, {"id": key_id, "revoked": True})

    async def set_environment(self, request: Request) -> Response:
        name = request.path_params["name"]
        given: _LimitsBody = await _body_of(request, _LimitsBody)
        await self._keys().set_environment(name, given.limits())
        return json_response(200, {"environment": name, **given.model_dump(mode="json")})

    async def budgets(self, request: Request) -> Response:
        if self.store.budgets is None:
            raise GatewayError.of("InvalidParameter", "This gateway has no budgets.", status=404)
        params = request.query_params
        try:
            states = await budget_states(
                self._keys(), self.store.budgets, key_id=params.get("key"), env=params.get("env")
            )
        except LookupError as exc:
            raise GatewayError.of("InvalidParameter", str(exc), status=404) from None
        return json_response(200, {"budgets": [state.to_dict() for state in states]})

    async def report(self, request: Request) -> Response:
        from qwenkit.storage import parse_since, usage_report

        params = request.query_params
        by = params.get("by", "endpoint")
        if by not in _GROUPS:
            raise GatewayError.of(
                "InvalidParameter", "by must be endpoint, model, key, env, day or hour"
            )
        try:
            since = parse_since(params.get("since", "7d"))
            threshold = float(params.get("bloat_threshold", "1.5"))
        except ValueError as exc:
            raise GatewayError.of("InvalidParameter", str(exc)) from None
        url, zone = self._ledger_url(), params.get("tz", "UTC")
        result = await anyio.to_thread.run_sync(
            lambda: usage_report(url, since=since, by=by, tz=zone, bloat_threshold=threshold)  # type: ignore[arg-type]
        )
        return json_response(200, result.to_dict())

    async def requests(self, request: Request) -> Response:
        from qwenkit.storage import recent_records

        params = request.query_params
        try:
            limit = min(1000, max(1, int(params.get("limit", "100"))))
        except ValueError:
            raise GatewayError.of("InvalidParameter", "limit must be a number") from None
        url = self._ledger_url()
        found = await anyio.to_thread.run_sync(
            lambda: recent_records(
                url, limit=limit, endpoint=params.get("endpoint"), model=params.get("model"),
                key_id=params.get("key_id"), status=params.get("status"),
            )
        )  # fmt: skip
        return json_response(200, {"requests": [record.to_dict() for record in found]})
