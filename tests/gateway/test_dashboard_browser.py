"""The gateway's dashboard in a real browser: headless Chromium (Playwright) signs in with the
master key, reads every page and its charts, filters the request log, revokes a key and signs
out, over real HTTP, against a ledger written by real calls through the gateway.

One emulator and one gateway (uvicorn in threads) for the module, in front of each other as in
``test_gateway_http.py``; the ledger is seeded through the gateway with the official ``openai``
SDK (several keys, endpoints and models, streams, thinking, a 401 and a 429) before the browser
starts (Playwright's sync API holds the test thread's event loop while it runs). Every page is
saved as a screenshot in the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import openai
import pytest
from browser import new_page, require_chromium
from emulator_server import serve
from openai.types.chat import ChatCompletionMessageParam

from qwenkit import Settings
from qwenkit.emulator import create_app as emulator_app
from qwenkit.gateway import Gateway, GatewayConfig, create_app
from qwenkit.storage import Limits, Store

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Response

pytestmark = pytest.mark.browser

MASTER = "qk-master-dashboard-0123456789"
PROMPT_MARKER = "zebra-sapphire-4417"  # in every prompt: the dashboard must never show it
SYSTEM = "You summarise support tickets for the qwenkit dashboard test. " + (
    "Answer in one short plain sentence, without lists or headings. " * 40
)
PAGES = {  # screenshot name -> path
    "overview": "/dashboard",
    "endpoints": "/dashboard/endpoints",
    "models": "/dashboard/models",
    "keys": "/dashboard/keys",
    "requests": "/dashboard/requests",
}
NAV = ["Overview", "Endpoints", "Models", "Keys", "Requests"]
RANGES = ["24h", "7d", "30d"]
CHARTS = {  # page -> {data-chart: number of series}
    "overview": {"spend": 1, "requests": 1, "errors": 1, "latency": 2, "ttft": 2},
    "endpoints": {"prompt-growth": 2, "cache-hits": 2},
    "models": {"tokens": 4, "cost-share": 3},  # qwen-plus, qwen-flash and qwen-max have cost
}
MARKS = "g.series path, g.series rect, g.series polyline, g.series circle, g.series line"
MIN_SCREENSHOT = 10_000  # bytes: a blank page is a few KB


@dataclass
class Dashboard:
    url: str
    upstream: str
    gateway: Gateway
    keys: dict[str, tuple[str, str]]  # name -> (key, id)
    calls: dict[str, int]  # what the ledger holds: "model:qwen-flash", "endpoint:extract", ...
    revoked: set[str] = field(default_factory=set)

    def called(self, *tags: str) -> None:
        """Count a call in ``calls`` under each of ``tags``."""
        for tag in tags:
            self.calls[tag] = self.calls.get(tag, 0) + 1

    def flush(self) -> None:
        """Wait until the gateway's ledger has written what it queued."""
        ledger = self.gateway.store.ledger
        assert ledger is not None
        assert ledger.flush(timeout=10)

    def openai(self, name: str) -> openai.OpenAI:
        return openai.OpenAI(
            api_key=self.keys[name][0], base_url=self.url + "/compatible-mode/v1", max_retries=0
        )


def create_keys(store_url: str) -> dict[str, tuple[str, str]]:
    daily = Limits(daily_cost=Decimal("5"))
    wanted = {
        "web": {"environment": "prod", "limits": daily},
        "batch": {"environment": "prod", "limits": daily},
        "mobile": {},
        "tiny": {"limits": Limits(daily_cost=Decimal("0.0000001"))},
        "doomed": {"limits": daily},
        "idle": {},
    }

    async def create() -> dict[str, tuple[str, str]]:
        store = Store.open(store_url, parts=["keys"])
        try:
            assert store.keys is not None
            made = {}
            for name, options in wanted.items():
                created = await store.keys.create(name, **options)  # type: ignore[arg-type]
                made[name] = (created.key, created.info.id)
            return made
        finally:
            await store.aclose()

    return asyncio.run(create())


def seed(dash: Dashboard) -> None:
    """Real calls through the gateway: three endpoints, three models, streams (with a TTFT),
    thinking (reasoning tokens), a repeated long system prompt (prefix-cache hits), a 401 and a
    429."""

    def messages(question: str) -> list[ChatCompletionMessageParam]:
        return [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{question} ({PROMPT_MARKER})"},
        ]

    plan = [  # key, endpoint, model, stream, thinking
        ("web", "summarize", "qwen-plus", False, False),
        ("web", "summarize", "qwen-plus", False, False),
        ("web", "summarize", "qwen-plus", True, False),
        ("web", "summarize", "qwen-plus", True, False),
        ("batch", "extract", "qwen-flash", False, False),
        ("batch", "extract", "qwen-flash", True, False),
        ("batch", "extract", "qwen-flash", False, False),
        ("mobile", "chat", "qwen-max", False, False),
        ("mobile", "chat", "qwen-max", True, False),
        ("mobile", "chat", "qwen-plus", True, True),
        ("doomed", "chat", "qwen-plus", False, False),
    ]
    for number, (name, endpoint, model, stream, thinking) in enumerate(plan):
        headers = {"X-Qwenkit-Endpoint": endpoint}
        body = messages(f"Ticket {number}: the printer on floor {number} is out of toner.")
        extra = {"enable_thinking": True} if thinking else None
        with dash.openai(name) as client:
            if stream:
                chunks = list(
                    client.chat.completions.create(
                        model=model,
                        messages=body,
                        stream=True,
                        extra_headers=headers,
                        stream_options={"include_usage": True},
                        extra_body=extra,
                    )
                )
                assert chunks[-1].usage is not None
            else:
                answer = client.chat.completions.create(
                    model=model, messages=body, extra_headers=headers, extra_body=extra
                )
                assert answer.choices[0].message.content
        dash.called(f"model:{model}", f"endpoint:{endpoint}", f"key:{name}", "status:ok")
    chat = {"X-Qwenkit-Endpoint": "chat"}
    wrong = openai.OpenAI(
        api_key="qk-000000000000-wrong", base_url=dash.url + "/compatible-mode/v1", max_retries=0
    )
    with wrong, pytest.raises(openai.AuthenticationError):  # no such key: 401
        wrong.chat.completions.create(
            model="qwen-plus", messages=messages("Who am I?"), extra_headers=chat
        )
    with dash.openai("tiny") as client, pytest.raises(openai.RateLimitError):  # over budget: 429
        client.chat.completions.create(
            model="qwen-plus", messages=messages("Over budget."), extra_headers=chat
        )
    dash.called("status:error")
    dash.called("status:error")
    dash.flush()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    require_chromium()  # before the seeding, which takes a few seconds
    store_url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'store.db'}"
    with serve(emulator_app()) as upstream:
        settings = Settings(api_key="sk-emulator-upstream", base_url=upstream)
        gateway = Gateway(GatewayConfig(store_url=store_url, master_key=MASTER), settings=settings)
        with serve(create_app(gateway)) as url:
            dash = Dashboard(url, upstream, gateway, create_keys(store_url), {})
            seed(dash)
            yield dash


# -- helpers ----------------------------------------------------------------------------------


def check_headers(response: Response | None) -> None:
    """The dashboard's security headers: a CSP that allows no script and no framing."""
    assert response is not None
    policy = response.headers.get("content-security-policy", "")
    directives = {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }
    assert directives.get("default-src") == ["'none'"], policy
    assert directives.get("script-src", ["'none'"]) == ["'none'"], policy
    assert directives.get("frame-ancestors") == ["'none'"], policy


def check_page(page: Page, response: Response | None, shots: Path, name: str) -> None:
    """Security headers, no script element, and a full-page screenshot of some substance."""
    check_headers(response)
    assert page.locator("script").count() == 0
    path = shots / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > MIN_SCREENSHOT, (name, path.stat().st_size)


def check_chart(page: Page, name: str, series: int) -> None:
    chart = page.locator(f'svg.chart[data-chart="{name}"]')
    assert chart.count() == 1, name
    assert chart.is_visible(), name
    box = chart.bounding_box()
    assert box is not None, name
    assert box["width"] > 0, name
    assert box["height"] > 0, name
    assert chart.get_attribute("data-series") == str(series), name
    assert chart.locator("g.series").count() == series, name
    assert chart.locator(MARKS).count() > 0, f"chart {name} draws nothing"


def submit_login(page: Page, url: str, key: str) -> Response:
    """Fill in the sign-in form and send it; the response to the form's POST."""
    page.fill('form[action="/dashboard/login"] input[name="master_key"]', key)
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url == url + "/dashboard/login"
    ) as posted:
        page.click('form[action="/dashboard/login"] [type="submit"]')
    page.wait_for_load_state()
    return posted.value


def sign_in(page: Page, url: str) -> None:
    page.goto(url + "/dashboard/login")
    assert submit_login(page, url, MASTER).status == 303
    page.wait_for_url(url + "/dashboard")


def watch_urls(page: Page) -> list[str]:
    """Every URL the page requests from now on."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def session_cookie(page: Page) -> str:
    [value] = [c["value"] for c in page.context.cookies() if c["name"] == "qk_session"]
    return value


@pytest.fixture(scope="module")
def signed_in(dashboard: Dashboard, browser: Browser) -> Iterator[Page]:
    """One signed-in page for the module's reading and revoking tests; no URL it requested
    holds the master key."""
    with new_page(browser) as page:
        urls = watch_urls(page)
        sign_in(page, dashboard.url)
        yield page
    assert urls
    assert not [u for u in urls if MASTER in u]


# -- signing in -------------------------------------------------------------------------------


def test_signing_in_takes_the_master_key_in_a_form_and_sets_a_strict_session_cookie(
    dashboard: Dashboard, page: Page, tmp_path: Path
) -> None:
    urls = watch_urls(page)
    response = page.goto(dashboard.url + "/dashboard/login")
    assert response is not None
    assert response.status == 200
    form = page.locator('form[method="post"][action="/dashboard/login"]')
    assert form.count() == 1
    assert form.locator('input[type="password"][name="master_key"]').count() == 1
    assert form.locator('input[type="hidden"][name="csrf"]').get_attribute("value")
    assert form.locator('button[type="submit"], input[type="submit"]').count() == 1
    check_page(page, response, tmp_path, "login")

    wrong = submit_login(page, dashboard.url, "qk-master-not-this-one")
    assert wrong.status == 401
    assert "Wrong master key" in page.content()
    check_page(page, wrong, tmp_path, "login-wrong")
    assert all(c["name"] != "qk_session" for c in page.context.cookies())

    right = submit_login(page, dashboard.url, MASTER)  # from the form of the 401 page
    assert right.status == 303
    assert right.headers["location"].endswith("/dashboard")
    page.wait_for_url(dashboard.url + "/dashboard")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "qk_session"]
    assert cookie["httpOnly"]
    assert cookie["secure"]
    assert cookie["sameSite"] == "Strict"
    assert MASTER not in cookie["value"]
    assert MASTER not in page.url
    assert urls
    assert not [u for u in urls if MASTER in u]


# -- reading ----------------------------------------------------------------------------------


def test_every_page_has_the_nav_the_ranges_its_charts_and_no_script(
    dashboard: Dashboard, signed_in: Page, tmp_path: Path
) -> None:
    page = signed_in
    for name, path in PAGES.items():
        response = page.goto(dashboard.url + path)
        assert response is not None
        assert response.status == 200, (path, response.status)
        assert page.url.startswith(dashboard.url + path)
        nav = page.locator("nav a")
        for text in NAV:
            assert nav.filter(has_text=re.compile(f"^{text}$")).count() == 1, (path, text)
        for span in RANGES:
            link = page.locator("a", has_text=re.compile(f"^{span}$"))
            assert link.count() == 1, (path, span)
            assert f"range={span}" in (link.get_attribute("href") or ""), (path, span)
        for chart, series in CHARTS.get(name, {}).items():
            check_chart(page, chart, series)
        check_page(page, response, tmp_path, name)
    # the spend chart draws the daily budgets (of web, batch, tiny, doomed until revoked) as
    # reference lines, not series: one line per limit, budgets of the same size sharing it
    page.goto(dashboard.url + "/dashboard")
    lines = page.locator('svg.chart[data-chart="spend"] g.reference')
    assert lines.count() == 2  # 5/day (three keys) and 0.0000001/day (tiny)
    names = [lines.nth(i).get_attribute("data-name") or "" for i in range(lines.count())]
    shared = next(name for name in names if name.endswith(": 5/day"))
    assert shared.count("(key ") >= 2, names


def test_the_range_links_redraw_the_charts_over_24_hours_and_30_days(
    dashboard: Dashboard, signed_in: Page, tmp_path: Path
) -> None:
    page = signed_in
    for name in ("overview", "models"):
        page.goto(dashboard.url + PAGES[name])
        for span in ("24h", "30d"):
            with page.expect_navigation() as navigated:
                page.locator("a", has_text=re.compile(f"^{span}$")).click()
            assert f"range={span}" in page.url
            for chart, series in CHARTS[name].items():
                check_chart(page, chart, series)
            check_page(page, navigated.value, tmp_path, f"{name}-{span}")


def test_the_nav_links_lead_to_each_page(dashboard: Dashboard, signed_in: Page) -> None:
    page = signed_in
    page.goto(dashboard.url + "/dashboard")
    for text, path in zip(NAV, PAGES.values(), strict=True):
        page.locator("nav a", has_text=re.compile(f"^{text}$")).click()
        page.wait_for_url(re.compile(re.escape(dashboard.url + path) + r"(\?.*)?$"))


def test_the_keys_page_shows_each_active_key_and_its_budget(
    dashboard: Dashboard, signed_in: Page
) -> None:
    page = signed_in
    page.goto(dashboard.url + "/dashboard/keys")
    shown = set(
        page.locator("tr[data-key-id]").evaluate_all("rows => rows.map(r => r.dataset.keyId)")
    )
    active = {key_id for _, key_id in dashboard.keys.values()} - dashboard.revoked
    assert shown == active
    row = page.locator(f'tr[data-key-id="{dashboard.keys["web"][1]}"]')
    text = row.inner_text()
    assert "web" in text
    assert re.search(r"\b5(\.0+)?\b", text), text  # the daily limit
    assert row.locator("a, button", has_text="Revoke").count() == 1
    idle = page.locator(f'tr[data-key-id="{dashboard.keys["idle"][1]}"]').inner_text()
    assert "never" in idle.lower(), idle  # last used
    for name, (key, _) in dashboard.keys.items():
        assert key not in page.content(), name


def test_the_request_log_filters_through_a_get_form_and_shows_no_prompt(
    dashboard: Dashboard, signed_in: Page, tmp_path: Path
) -> None:
    page = signed_in
    page.goto(dashboard.url + "/dashboard/requests")
    form = page.locator('form[method="get"]')
    for name in ("endpoint", "model", "key_id", "status"):
        assert form.locator(f'[name="{name}"]').count() == 1, name
    rows = page.locator("table tbody tr")
    assert rows.count() == sum(v for k, v in dashboard.calls.items() if k.startswith("status:"))
    assert PROMPT_MARKER not in page.content()
    assert "printer on floor" not in page.content()

    def apply(field: str, value: str) -> None:
        page.goto(dashboard.url + "/dashboard/requests")
        control = form.locator(f'[name="{field}"]')
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
        with page.expect_navigation():
            form.locator('[type="submit"]').click()
        assert f"{field}={value}" in page.url

    apply("model", "qwen-flash")
    assert rows.count() == dashboard.calls["model:qwen-flash"]
    assert all("qwen-flash" in text for text in rows.all_inner_texts())
    apply("endpoint", "extract")
    assert rows.count() == dashboard.calls["endpoint:extract"]
    apply("key_id", dashboard.keys["web"][1])
    assert rows.count() == dashboard.calls["key:web"]
    apply("status", "error")
    assert rows.count() == dashboard.calls["status:error"]
    texts = " ".join(rows.all_inner_texts())
    assert "401" in texts
    assert "429" in texts
    check_page(page, page.goto(page.url), tmp_path, "requests-errors")


# -- writing ----------------------------------------------------------------------------------


def test_revoking_a_key_asks_first_needs_the_csrf_token_and_refuses_the_key_at_once(
    dashboard: Dashboard, signed_in: Page, tmp_path: Path
) -> None:
    page = signed_in
    key_id = dashboard.keys["doomed"][1]
    action = f"/dashboard/keys/{key_id}/revoke"
    page.goto(dashboard.url + "/dashboard/keys")
    with page.expect_navigation() as navigated:
        page.locator(f'tr[data-key-id="{key_id}"]').locator("a, button", has_text="Revoke").click()
    assert page.url == dashboard.url + action
    check_page(page, navigated.value, tmp_path, "revoke")
    form = page.locator(f'form[method="post"][action="{action}"]')
    assert form.count() == 1
    assert form.locator('input[type="hidden"][name="csrf"]').get_attribute("value")
    button = form.locator('button[type="submit"], button:not([type])')
    assert button.inner_text().startswith("Revoke")

    # a forged POST (the session cookie but no token, or a wrong one) is refused
    cookie = {"cookie": f"qk_session={session_cookie(page)}"}
    for data in ({}, {"csrf": "0" * 64}):
        forged = httpx.post(dashboard.url + action, data=data, headers=cookie)
        assert forged.status_code == 403, (data, forged.status_code, forged.text)
    with dashboard.openai("doomed") as client:  # the key still works
        assert client.chat.completions.create(
            model="qwen-flash", messages=[{"role": "user", "content": "Still there?"}]
        ).choices
    dashboard.called("model:qwen-flash", "key:doomed", "status:ok")

    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        button.click()
    page.wait_for_load_state()
    assert posted.value.status == 303
    dashboard.revoked.add(key_id)
    assert page.url.startswith(dashboard.url + "/dashboard/keys")
    assert "revoked" in page.locator("main").inner_text().lower()
    assert page.locator(f'tr[data-key-id="{key_id}"]').count() == 0
    check_page(page, page.goto(page.url), tmp_path, "revoked")
    with dashboard.openai("doomed") as client, pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model="qwen-flash", messages=[{"role": "user", "content": "Still there?"}]
        )
    dashboard.called("status:error")
    dashboard.flush()  # the request log of a later test shows both calls


def test_signing_out_ends_the_session(dashboard: Dashboard, page: Page, tmp_path: Path) -> None:
    sign_in(page, dashboard.url)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.locator(
            'form[method="post"]', has=page.locator('input[type="hidden"][name="csrf"]')
        ).get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert posted.value.status == 303
    assert page.url.startswith(dashboard.url + "/dashboard/login")
    assert all(c["name"] != "qk_session" for c in page.context.cookies())
    response = page.goto(dashboard.url + "/dashboard")
    assert response is not None
    assert page.url.startswith(dashboard.url + "/dashboard/login")
    assert response.request.redirected_from is not None
    check_page(page, response, tmp_path, "signed-out")


def test_wrong_master_keys_from_one_client_are_refused_with_429_after_five(
    dashboard: Dashboard, page: Page, tmp_path: Path
) -> None:
    # A gateway of its own: the limit is per client address (all of ours are 127.0.0.1), and
    # this test must not lock the module's other sign-ins out.
    settings = Settings(api_key="sk-emulator-upstream", base_url=dashboard.upstream)
    config = GatewayConfig(store_url=f"sqlite:///{tmp_path / 'store.db'}", master_key=MASTER)
    with serve(create_app(Gateway(config, settings=settings))) as url:
        statuses = []
        for attempt in range(6):
            page.goto(url + "/dashboard/login")
            statuses.append(submit_login(page, url, f"qk-master-guess-{attempt}").status)
        assert statuses == [401] * 5 + [429]
        page.goto(url + "/dashboard/login")
        blocked = submit_login(page, url, MASTER)  # not even checked while blocked
        assert blocked.status == 429
        check_page(page, blocked, tmp_path, "login-blocked")
        assert all(c["name"] != "qk_session" for c in page.context.cookies())
