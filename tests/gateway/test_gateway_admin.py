"""The admin API over real HTTP: only the master key gets in; keys created, listed (never the
key), revoked (the key stops working at once in this process); environment limits set and
enforced; budgets, the report and the request log read what real calls left.

One emulator and one gateway per module (uvicorn in threads), the store a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from emulator_server import serve

from qwenkit import Settings
from qwenkit.emulator import create_app as emulator_app
from qwenkit.gateway import Gateway, GatewayConfig, create_app

MASTER = "qk-master-admin-0123456789"
HI = {"model": "qwen-plus", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 20}


@dataclass
class Admin:
    http: httpx.Client
    gateway: Gateway

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {MASTER}", **options.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **options)

    def chat(self, key: str, **headers: str) -> httpx.Response:
        return self.http.post(
            "/v1/chat/completions", json=HI, headers={"authorization": f"Bearer {key}", **headers}
        )

    def flush(self) -> None:
        assert self.gateway.store.ledger is not None
        assert self.gateway.store.ledger.flush(timeout=10)


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    store_url = f"sqlite:///{tmp_path_factory.mktemp('admin') / 'store.db'}"
    with serve(emulator_app()) as upstream:
        gateway = Gateway(
            GatewayConfig(store_url=store_url, master_key=MASTER),
            settings=Settings(api_key="sk-emulator-upstream", base_url=upstream),
        )
        with serve(create_app(gateway)) as url, httpx.Client(base_url=url, timeout=30) as http:
            yield Admin(http, gateway)


def test_only_the_master_key_gets_in(admin: Admin) -> None:
    created = admin.call("POST", "/admin/keys", json={"name": "svc"}).json()
    for headers in (
        {},
        {"authorization": "Bearer nope"},
        {"authorization": f"Bearer {created['key']}"},
    ):
        response = admin.http.get("/admin/keys", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["message"]


def test_a_key_is_created_shown_once_listed_without_it_and_revoked(admin: Admin) -> None:
    response = admin.call(
        "POST", "/admin/keys",
        json={"name": "billing", "environment": "prod", "daily_budget": "5", "rpm": 60,
              "models": ["qwen-plus"], "reasoning": "log", "max_tokens": 256},
    )  # fmt: skip
    assert response.status_code == 201
    created = response.json()
    key, key_id = created["key"], created["id"]
    assert key.startswith(f"qk-{key_id}-")
    assert (created["daily_budget"], created["rpm"], created["models"]) == ("5", 60, ["qwen-plus"])
    assert (created["reasoning"], created["max_tokens"]) == ("log", 256)
    listed = admin.call("GET", "/admin/keys").json()["keys"]
    assert key_id in [row["id"] for row in listed]
    assert key not in admin.call("GET", "/admin/keys").text

    assert admin.chat(key).status_code == 200
    assert admin.call("DELETE", f"/admin/keys/{key_id}").json() == {"id": key_id, "revoked": True}
    assert admin.chat(key).status_code == 401  # at once in this process (the cache is dropped)
    assert admin.call("DELETE", f"/admin/keys/{key_id}").status_code == 404
    assert key_id not in [row["id"] for row in admin.call("GET", "/admin/keys").json()["keys"]]
    assert key_id in [row["id"] for row in admin.call("GET", "/admin/keys?all=true").json()["keys"]]


def test_bad_admin_input_is_a_400_that_names_the_field(admin: Admin) -> None:
    response = admin.call("POST", "/admin/keys", json={"name": "x", "rpm": 0})
    assert response.status_code == 400
    assert "rpm" in response.json()["error"]["message"]
    assert admin.call("POST", "/admin/keys", content=b"{").status_code == 400
    capped = admin.call("POST", "/admin/keys", json={"name": "x", "max_tokens": 0})
    assert capped.status_code == 400
    assert "max_tokens" in capped.json()["error"]["message"]
    assert (
        admin.call("POST", "/admin/keys", json={"name": "x", "reasoning": "show"}).status_code
        == 400
    )
    assert admin.call("GET", "/admin/report?by=colour").status_code == 400
    assert admin.call("GET", "/admin/report?since=yesterday").status_code == 400
    assert admin.call("GET", "/admin/budgets?key=000000000000").status_code == 404


def test_environment_limits_are_set_enforced_and_shown_in_the_budgets(admin: Admin) -> None:
    assert admin.call("PUT", "/admin/environments/staging", json={"rpm": 2}).status_code == 200
    key = admin.call("POST", "/admin/keys", json={"name": "s", "environment": "staging"}).json()
    statuses = [admin.chat(key["key"]).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    states = admin.call("GET", f"/admin/budgets?key={key['id']}").json()["budgets"]
    [rpm] = [s for s in states if s["scope"] == "env:staging"]
    assert (rpm["kind"], rpm["limit"], rpm["spent"]) == ("requests_per_minute", "2", "2")


def test_the_report_and_the_request_log_read_what_real_calls_left(admin: Admin) -> None:
    key = admin.call("POST", "/admin/keys", json={"name": "reporter"}).json()
    for _ in range(3):
        assert admin.chat(key["key"], **{"x-qwenkit-endpoint": "faq"}).status_code == 200
    admin.http.post(
        "/v1/chat/completions", content=b"nope", headers={"authorization": f"Bearer {key['key']}"}
    )
    admin.flush()
    report = admin.call("GET", "/admin/report?since=1d&by=endpoint").json()
    [faq] = [row for row in report["rows"] if row["group"] == "faq"]
    assert faq["requests"] == 3
    assert faq["prompt_tokens"] > 0
    by_key = admin.call("GET", "/admin/report?since=1d&by=key").json()
    [mine] = [row for row in by_key["rows"] if row["group"] == key["id"]]
    assert (mine["requests"], mine["errors"]) == (4, 1)
    log = admin.call("GET", f"/admin/requests?key_id={key['id']}&limit=10").json()["requests"]
    assert len(log) == 4
    assert {entry["status"] for entry in log} == {"ok", "error"}
    assert all(entry["prompt"] is None for entry in log)  # no prompt text unless opted in
