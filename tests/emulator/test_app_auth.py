"""API keys: the real 401 bodies on both wires, key lists and region-scoped keys."""

from __future__ import annotations

import httpx
import pytest

from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator.auth import KeyRing, bearer_key, key_id

COMPAT = "/compatible-mode/v1/chat/completions"
TEXT = "/api/v1/services/aigc/text-generation/generation"
MESSAGES = [{"role": "user", "content": "hi"}]
COMPAT_BODY = {"model": "qwen-plus", "messages": MESSAGES}
NATIVE_BODY = {"model": "qwen-plus", "input": {"messages": MESSAGES}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def post(
    app_config: EmulatorConfig | None, path: str, body: object, headers: dict[str, str]
) -> httpx.Response:
    transport = httpx.ASGITransport(create_app(app_config))
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as client:
        return await client.post(path, json=body, headers=headers)


@pytest.mark.anyio
async def test_any_sk_key_is_accepted_by_default() -> None:
    r = await post(None, COMPAT, COMPAT_BODY, bearer("sk-0123abcdEF"))
    assert r.status_code == 200


@pytest.mark.anyio
async def test_bad_key_gets_the_compat_401() -> None:
    r = await post(None, COMPAT, COMPAT_BODY, bearer("not-a-key"))
    assert r.status_code == 401
    rid = r.headers["x-request-id"]
    assert r.json() == {
        "error": {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        },
        "request_id": rid,
    }  # no "id" on a gateway error


@pytest.mark.anyio
async def test_bad_key_gets_the_native_401() -> None:
    r = await post(None, TEXT, NATIVE_BODY, bearer("not-a-key"))
    assert r.status_code == 401
    assert r.json() == {
        "code": "InvalidApiKey",
        "message": "Invalid API-key provided.",
        "request_id": r.headers["x-request-id"],
    }


@pytest.mark.anyio
async def test_bad_key_on_a_native_stream_gets_the_sse_401() -> None:
    headers = {**bearer("nope"), "X-DashScope-SSE": "enable"}
    r = await post(None, TEXT, NATIVE_BODY, headers)
    assert r.status_code == 401
    assert r.text.startswith("id:1\nevent:error\n:HTTP_STATUS/401\ndata:{")


@pytest.mark.anyio
async def test_missing_key_is_answered_natively_on_both_wires() -> None:
    for path, body in ((COMPAT, COMPAT_BODY), (TEXT, NATIVE_BODY)):
        r = await post(None, path, body, {})
        assert r.status_code == 401
        assert r.json()["code"] == "InvalidApiKey"
        assert r.json()["message"] == "No API-key provided."


@pytest.mark.anyio
async def test_listed_keys_are_region_scoped() -> None:
    config = EmulatorConfig.model_validate(
        {
            "auth": {
                "region": "ap-southeast-1",
                "keys": [
                    {"key": "sk-intl-key", "region": "ap-southeast-1"},
                    {"key": "sk-beijing-key", "region": "cn-beijing"},
                    {"key": "sk-anywhere"},
                ],
            }
        }
    )
    assert (await post(config, COMPAT, COMPAT_BODY, bearer("sk-intl-key"))).status_code == 200
    assert (await post(config, COMPAT, COMPAT_BODY, bearer("sk-anywhere"))).status_code == 200
    beijing = await post(config, COMPAT, COMPAT_BODY, bearer("sk-beijing-key"))
    assert beijing.status_code == 401
    assert beijing.json()["error"]["code"] == "invalid_api_key"
    other = await post(config, TEXT, NATIVE_BODY, bearer("sk-some-other-key"))
    assert other.status_code == 401
    assert other.json()["code"] == "InvalidApiKey"


@pytest.mark.anyio
async def test_models_and_tasks_need_a_key_too() -> None:
    transport = httpx.ASGITransport(create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as client:
        models = await client.get("/compatible-mode/v1/models", headers=bearer("bad"))
        tasks = await client.get("/api/v1/tasks/abc", headers=bearer("bad"))
    assert models.status_code == 401
    assert models.json()["error"]["code"] == "invalid_api_key"
    assert tasks.status_code == 401
    assert tasks.json()["code"] == "InvalidApiKey"


def test_key_ids_are_short_hashes_and_keys_are_never_kept() -> None:
    ring = KeyRing.from_config(EmulatorConfig().auth)
    ident, failure = ring.check("Bearer sk-secret-value")
    assert failure is None
    assert ident == key_id("sk-secret-value")
    assert len(ident) == 16
    assert "secret" not in ident
    assert bearer_key("Basic abc") is None
    assert ring.check("Bearer ") == (None, "missing")
    assert ring.check(None) == (None, "missing")


@pytest.mark.anyio
async def test_keys_never_appear_in_the_request_log() -> None:
    app = create_app()
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as client:
        await client.post(COMPAT, json=COMPAT_BODY, headers=bearer("sk-very-secret-1234"))
        log = (await client.get("/_emulator/requests")).text
    assert "sk-very-secret-1234" not in log
    assert key_id("sk-very-secret-1234") in log
