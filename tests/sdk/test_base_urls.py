"""``base_url`` as users paste it: a service root, ``.../compatible-mode/v1`` or ``.../api/v1``,
with or without a trailing slash, in both modes, over real HTTP against the emulator; the same
through ``QWENKIT_BASE_URL``; the ``.../v1`` of a self-hosted server in compat mode; and the URLs
that are refused when the client is made, with the forms that are accepted."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from qwenkit import ConfigError, Qwen
from qwenkit._settings import BaseURLs, Mode, Settings
from qwenkit.client._async import AsyncQwen
from qwenkit.emulator import EmulatorConfig, create_app

KEY = "sk-test-urls"
FORMS = ["", "/", "/compatible-mode/v1", "/compatible-mode/v1/", "/api/v1", "/api/v1/"]


class UnderV1:
    """The emulator's compatible-mode API at ``/v1`` only, like a vLLM or llama.cpp server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if not path.startswith("/v1/"):
                scope = {**scope, "path": "/nowhere"}
            else:
                scope = {**scope, "path": "/compatible-mode" + path, "raw_path": None}
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emulator"))
    from emulator_server import serve

    with serve(create_app(EmulatorConfig())) as url:
        yield url


@pytest.fixture(scope="module")
def v1_server() -> Iterator[str]:
    from emulator_server import serve

    with serve(UnderV1(create_app(EmulatorConfig()))) as url:
        yield url


@pytest.mark.anyio
@pytest.mark.parametrize("suffix", FORMS)
async def test_every_pasted_form_works_in_both_modes(server: str, suffix: str, mode: Mode) -> None:
    async with AsyncQwen(api_key=KEY, base_url=server + suffix, mode=mode) as client:
        assert client.upstream.base_url == server + (
            "/api/v1" if mode == "native" else "/compatible-mode/v1"
        )
        result = await client.chat("Why is the sky blue?")
        async with client.stream("Say hi", thinking=True) as stream:
            streamed = await stream.get_result()
    assert result.content
    assert result.usage is not None
    assert result.usage.prompt_tokens > 0
    assert streamed.content
    assert streamed.reasoning


@pytest.mark.parametrize("suffix", ["/compatible-mode/v1/", "/api/v1"])
def test_the_env_var_takes_the_same_forms(
    server: str, suffix: str, mode: Mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QWENKIT_BASE_URL", server + suffix)
    monkeypatch.setenv("QWENKIT_MODE", mode)
    with Qwen(api_key=KEY, usage_sinks=[]) as client:
        assert client.chat("Hello").content


@pytest.mark.anyio
async def test_a_self_hosted_v1_base_is_used_as_given_in_compat_mode(v1_server: str) -> None:
    async with AsyncQwen(api_key=KEY, base_url=v1_server + "/v1/", mode="compat") as client:
        assert client.upstream.base_url == v1_server + "/v1"
        assert (await client.chat("Hello")).content
    async with AsyncQwen(
        api_key=KEY, base_url=v1_server + "/v1", upstream="openai-compatible"
    ) as client:
        assert (await client.chat("Hello")).content


def test_a_self_hosted_v1_base_is_refused_in_native_mode_when_the_client_is_made() -> None:
    with pytest.raises(ConfigError, match=r"compat' only.*\.\.\./api/v1"):
        AsyncQwen(api_key=KEY, base_url="http://127.0.0.1:8000/v1", mode="native")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("127.0.0.1:8400", "not an http"),
        ("ftp://example.com/api/v1", "not an http"),
        ("http://h/compatible-mode/v1/chat/completions", "an endpoint"),
        ("http://h/api/v1/services/aigc/text-generation/generation", "an endpoint"),
        ("http://h/compatible-mode", "lacks its version"),
        ("http://h/api/", "lacks its version"),
        ("http://h/api/v1?x=1", "query"),
    ],
)
@pytest.mark.parametrize("mode", ["compat", "native"])
def test_unusable_urls_are_refused_at_construction_naming_the_forms(
    url: str, reason: str, mode: Mode
) -> None:
    with pytest.raises(ConfigError) as caught:
        AsyncQwen(api_key=KEY, base_url=url, mode=mode)
    message = str(caught.value)
    assert reason in message
    assert ".../compatible-mode/v1" in message
    assert ".../api/v1" in message


def test_parse_derives_the_other_base_and_keeps_a_path_prefix() -> None:
    assert BaseURLs.parse(" https://dashscope-intl.aliyuncs.com/compatible-mode/v1/ ") == BaseURLs(
        compat="https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        native="https://dashscope-intl.aliyuncs.com/api/v1",
        root="https://dashscope-intl.aliyuncs.com",
    )
    maas = BaseURLs.parse("https://ws1.ap-southeast-1.maas.aliyuncs.com/api/v1")
    assert maas.compat == "https://ws1.ap-southeast-1.maas.aliyuncs.com/compatible-mode/v1"
    behind = BaseURLs.parse("https://gateway.internal/qwen/")
    assert behind.compat == "https://gateway.internal/qwen/compatible-mode/v1"
    assert behind.native == "https://gateway.internal/qwen/api/v1"


def test_exact_urls_still_win_over_base_url() -> None:
    settings = Settings(
        base_url="http://h/api/v1",
        compat_base_url="http://other:8000/v1/",
        native_base_url="http://native/api/v1/",
    )
    assert settings.compat_url == "http://other:8000/v1"
    assert settings.native_url == "http://native/api/v1"
