"""The dashboard over real HTTP (no browser: ``test_dashboard_browser.py`` drives Chromium):
sign-in with the master key in a form, never a URL; the session cookie's flags; CSRF on every
state-changing form; wrong keys refused then rate-limited; every page behind the session, with
its charts and a Content-Security-Policy that allows no script; user-controlled names escaped;
the revoke flow; the request log's filters. The ledger is seeded by real calls through the
gateway (the openai SDK) in front of the emulator."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from emulator_server import serve

from qwenkit import Settings
from qwenkit.emulator import create_app as emulator_app
from qwenkit.gateway import Gateway, GatewayConfig, create_app

MASTER = "qk-master-dashboard-0123456789"
PROMPT = "Tell me about the grey cat of the lighthouse."
HOSTILE = '<script>alert("x")</script>'
UNUSED = Settings(api_key="sk-never-called", base_url="http://127.0.0.1:9")
PAGES = ["/dashboard", "/dashboard/endpoints", "/dashboard/models", "/dashboard/keys",
         "/dashboard/requests"]  # fmt: skip


@dataclass
class Site:
    url: str
    gateway: Gateway
    keys: dict[str, tuple[str, str]]  # name -> (key, id)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, follow_redirects=False)


def cookie(response: httpx.Response, name: str) -> str | None:
    """The value a response sets for ``name`` (httpx keeps ``Secure`` cookies off plain HTTP,
    so the tests carry them by hand, as a browser on localhost does)."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header.split(";", 1)[0].split("=", 1)[1].strip('"')
    return None


def sign_in(client: httpx.Client, key: str = MASTER) -> httpx.Response:
    form = client.get("/dashboard/login")
    csrf = cookie(form, "qk_csrf")
    assert csrf is not None
    return client.post(
        "/dashboard/login",
        data={"master_key": key, "csrf": csrf},
        headers={"cookie": f"qk_csrf={csrf}"},
    )


def hidden_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder: Path = tmp_path_factory.mktemp("dashboard")
    with serve(emulator_app()) as upstream:
        settings = Settings(api_key="sk-emulator-upstream", base_url=upstream)
        config = GatewayConfig(store_url=f"sqlite:///{folder / 'store.db'}", master_key=MASTER)
        gateway = Gateway(config, settings=settings)
        with serve(create_app(gateway)) as url:
            keys: dict[str, tuple[str, str]] = {}
            for name, budget in (("billing", "5"), ("search", None), ("tiny", "0.0000001")):
                body = {"name": name, "environment": "prod"}
                if budget is not None:
                    body["daily_budget"] = budget
                made = httpx.post(
                    url + "/admin/keys", json=body, headers={"authorization": f"Bearer {MASTER}"}
                )
                assert made.status_code == 201, made.text
                keys[name] = (made.json()["key"], made.json()["id"])
            calls = [("billing", "faq", "qwen-plus"), ("billing", "faq", "qwen-flash"),
                     ("search", "search", "qwen-max"), ("search", HOSTILE, "qwen-plus")]  # fmt: skip
            for name, endpoint, model in calls:
                with openai.OpenAI(api_key=keys[name][0], base_url=url + "/v1") as sdk:
                    sdk.chat.completions.create(
                        model=model, messages=[{"role": "user", "content": PROMPT}],
                        max_tokens=16, extra_headers={"x-qwenkit-endpoint": endpoint},
                    )  # fmt: skip
            with (
                openai.OpenAI(api_key=keys["tiny"][0], base_url=url + "/v1", max_retries=0) as sdk,
                pytest.raises(openai.RateLimitError),
            ):
                sdk.chat.completions.create(
                    model="qwen-plus", messages=[{"role": "user", "content": PROMPT}]
                )
            assert gateway.store.ledger is not None
            assert gateway.store.ledger.flush(timeout=10)
            yield Site(url, gateway, keys)


def test_every_page_needs_a_session_and_the_sign_in_never_puts_the_key_in_a_url(
    site: Site,
) -> None:
    with site.client() as client:
        for page in PAGES:
            answer = client.get(page)
            assert answer.status_code == 303
            assert answer.headers["location"] == "/dashboard/login"
        form = client.get("/dashboard/login")
        assert form.status_code == 200
        assert '<form method="post" action="/dashboard/login"' in form.text
        assert 'type="password" id="master_key" name="master_key"' in form.text
        signed = sign_in(client)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/dashboard"
    assert MASTER not in signed.headers["location"]
    header = next(h for h in signed.headers.get_list("set-cookie") if h.startswith("qk_session="))
    flags = {part.strip().lower() for part in header.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/dashboard"} <= flags
    assert MASTER not in header


def test_a_wrong_key_is_a_401_page_then_the_sign_in_is_rate_limited(tmp_path: Path) -> None:
    config = GatewayConfig(store_url=f"sqlite:///{tmp_path / 'limited.db'}", master_key=MASTER)
    gateway = Gateway(config, settings=UNUSED)
    with serve(create_app(gateway)) as url, httpx.Client(base_url=url) as client:
        no_token = client.post("/dashboard/login", data={"master_key": MASTER})
        assert no_token.status_code == 403  # the sign-in form's CSRF token is missing
        statuses = [sign_in(client, "qk-master-wrong").status_code for _ in range(4)]
        wrong = sign_in(client, "qk-master-wrong-again")
        blocked = sign_in(client)  # even the right key, for a minute
    assert statuses == [401] * 4
    assert wrong.status_code == 401
    assert "Wrong master key" in wrong.text
    assert blocked.status_code == 429
    assert "Too many wrong keys" in blocked.text


@pytest.fixture
def session(site: Site) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    from qwenkit.gateway.dashboard._session import Sessions

    value = Sessions(MASTER).new()  # a session as the sign-in makes it (the limiter may be on)
    with site.client() as client:
        yield client, {"cookie": f"qk_session={value}"}


def test_every_page_has_its_charts_and_a_policy_that_allows_no_script(
    site: Site, session: tuple[httpx.Client, dict[str, str]]
) -> None:
    client, headers = session
    charts = {"/dashboard": {"spend": 1, "requests": 1, "errors": 1, "latency": 2, "ttft": 2,
                             "budgets": 2},
              "/dashboard/endpoints": {"prompt-growth": 2, "cache-hits": 2},
              "/dashboard/models": {"tokens": 4, "cost-share": 3}}  # fmt: skip
    for page in PAGES:
        for span in ("24h", "7d", "30d"):
            answer = client.get(page, params={"range": span}, headers=headers)
            assert answer.status_code == 200, (page, answer.text[:300])
            policy = answer.headers["content-security-policy"]
            assert "default-src 'none'" in policy
            assert "script-src" not in policy
            assert "frame-ancestors 'none'" in policy
            assert "<script" not in answer.text.lower()
            assert HOSTILE not in answer.text
            assert PROMPT not in answer.text  # no prompt text anywhere
            assert MASTER not in answer.text
            for name, count in charts.get(page, {}).items():
                found = re.search(rf'<svg[^>]*data-chart="{name}"[^>]*data-series="(\d+)"',
                                  answer.text)  # fmt: skip
                assert found is not None, (page, name)
                assert int(found.group(1)) == count, (page, name)
    endpoints = client.get("/dashboard/endpoints", headers=headers).text
    assert "&lt;script&gt;" in endpoints  # the hostile endpoint tag, escaped
    overview = client.get("/dashboard", params={"range": "7d"}, headers=headers).text
    assert 'class="reference"' in overview  # the daily budgets over the spend


def test_a_forged_or_stale_session_is_sent_to_the_sign_in(site: Site) -> None:
    from qwenkit.gateway.dashboard._session import Sessions

    stale = Sessions(MASTER, clock=lambda: 1_000.0).new()
    forged = Sessions("qk-master-another-key").new()
    with site.client() as client:
        for value in (stale, forged, "1.2.3", "garbage"):
            answer = client.get("/dashboard", headers={"cookie": f"qk_session={value}"})
            assert answer.status_code == 303


def test_revoking_a_key_needs_the_confirmation_and_its_csrf_token(
    site: Site, session: tuple[httpx.Client, dict[str, str]]
) -> None:
    client, headers = session
    key, key_id = site.keys["search"]
    listed = client.get("/dashboard/keys", headers=headers).text
    assert f'data-key-id="{key_id}"' in listed
    assert key not in listed
    confirm = client.get(f"/dashboard/keys/{key_id}/revoke", headers=headers)
    assert confirm.status_code == 200
    assert f'action="/dashboard/keys/{key_id}/revoke"' in confirm.text
    refused = client.post(f"/dashboard/keys/{key_id}/revoke", headers=headers, data={})
    assert refused.status_code == 403
    with openai.OpenAI(api_key=key, base_url=site.url + "/v1") as sdk:
        sdk.chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": "Hi"}])
    done = client.post(
        f"/dashboard/keys/{key_id}/revoke", headers=headers,
        data={"csrf": hidden_csrf(confirm.text)},
    )  # fmt: skip
    assert done.status_code == 303
    after = client.get(done.headers["location"], headers=headers).text
    assert f"Key {key_id} revoked." in after
    assert f'data-key-id="{key_id}"' not in after
    with (
        openai.OpenAI(api_key=key, base_url=site.url + "/v1", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError),
    ):
        sdk.chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": "Hi"}])


def test_the_request_log_filters_and_sign_out(
    site: Site, session: tuple[httpx.Client, dict[str, str]]
) -> None:
    client, headers = session
    everything = client.get("/dashboard/requests", headers=headers).text
    assert "qwen-max" in everything
    assert "qwen-flash" in everything
    faq = client.get("/dashboard/requests", params={"endpoint": "faq"}, headers=headers).text
    rows = re.findall(r"<tr class=\"(ok|error|cancelled)\">(.*?)</tr>", faq, flags=re.S)
    assert len(rows) == 2
    assert all("<td>faq</td>" in row for _, row in rows)
    errors = client.get("/dashboard/requests", params={"status": "error"}, headers=headers).text
    assert "<td>429</td>" in errors
    assert "range=7d&amp;status=error" in errors  # the range links keep the filters
    page = client.get("/dashboard", headers=headers).text
    out = client.post("/dashboard/logout", headers=headers, data={"csrf": hidden_csrf(page)})
    assert out.status_code == 303
    cleared = next(h for h in out.headers.get_list("set-cookie") if h.startswith("qk_session="))
    assert "max-age=0" in cleared.lower() or "expires=" in cleared.lower()


def test_without_a_master_key_the_dashboard_is_off(tmp_path: Path) -> None:
    config = GatewayConfig(store_url=f"sqlite:///{tmp_path / 'off.db'}", require_keys=False)
    with serve(create_app(Gateway(config, settings=UNUSED))) as url:
        answer = httpx.get(url + "/dashboard/login")
    assert answer.status_code == 404
    assert "needs a master key" in answer.text
