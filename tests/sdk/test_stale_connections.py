"""A pooled connection the server closed after a stream (llama.cpp's server does it after every
streamed answer while announcing keep-alive): the next request on it gets no answer, and the SDK
sends it again at once on a fresh connection, as the same attempt.

The emulator's ``quirks.close_after_stream`` makes the close deterministic (the next request on
the connection is not answered), over real HTTP (uvicorn); the SDK's own client (httpx's pool)
and the gateway's upstream client (aiohttp's pool) both meet it, with retries switched off so
only the resend can save the call."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from emulator_server import restored_config, serve

from qwenkit import APIConnectionError, AsyncQwen, RetryPolicy, Settings
from qwenkit._core.transport import Flavour
from qwenkit.emulator import create_app as emulator_app
from qwenkit.gateway._upstream_client import upstream_client

pytestmark = pytest.mark.anyio

NO_RETRIES = RetryPolicy(max_attempts=1)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve(emulator_app()) as url:
        yield url


@pytest.fixture(params=[True, "reset"], ids=["closed", "reset"])
def mode(request: pytest.FixtureRequest) -> bool | str:
    """The quirk's mode: the connection closed, or reset."""
    value: bool | str = request.param
    return value


@pytest.fixture
def closing(upstream: str, mode: bool | str) -> Iterator[str]:
    quirk = {"quirks": {"close_after_stream": mode}}
    with httpx.Client(base_url=upstream) as control, restored_config(control, quirk):
        yield upstream


def requests_seen(upstream: str) -> int:
    log = httpx.get(upstream + "/_emulator/requests", params={"limit": 100}).json()
    return len(log["requests"] if isinstance(log, dict) else log)


def test_the_quirk_leaves_the_request_after_a_stream_unanswered(
    closing: str, mode: bool | str
) -> None:
    """Closed: the client reads the end of the stream; reset: its read fails. Either way, every
    time (a body in its own packet, still unread when the connection goes, must not turn the
    close into a reset)."""
    expected = httpx.ReadError if mode == "reset" else httpx.RemoteProtocolError
    text = "Hi " * 5_000  # httpcore writes the headers and this body separately
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": text}], "max_tokens": 4}
    headers = {"authorization": "Bearer sk-test"}
    with httpx.Client(base_url=closing, headers=headers) as client:
        for _ in range(10):
            stream_body = {**body, "stream": True}
            path = "/compatible-mode/v1/chat/completions"
            with client.stream("POST", path, json=stream_body) as r:
                r.read()
            assert "close" not in r.headers.get("connection", "")  # keep-alive was announced
            with pytest.raises(expected):
                client.post(path, json=body)
            assert client.post(path, json=body).status_code == 200


@pytest.mark.parametrize("pool", ["httpx", "aiohttp"])
@pytest.mark.parametrize("flavour", ["openai-compatible", "dashscope"])
async def test_a_call_after_a_stream_is_sent_again_on_a_new_connection(
    closing: str, pool: str, flavour: Flavour
) -> None:
    http = httpx.AsyncClient() if pool == "httpx" else upstream_client()
    url = closing + "/compatible-mode/v1" if flavour == "openai-compatible" else closing
    settings = Settings(api_key="sk-test", base_url=url)
    async with (
        http,
        AsyncQwen(settings=settings, upstream=flavour, http_client=http, retry=NO_RETRIES) as q,
    ):
        for _ in range(3):
            async with q.stream("Hi", model="qwen-plus", max_tokens=4) as stream:
                streamed = await stream.get_result()
            after = await q.chat("Hi again", model="qwen-plus", max_tokens=4)
            assert streamed.content
            assert after.content
            assert after.attempts == ()  # the resend is not a retry
    assert requests_seen(closing) == 6  # the unanswered requests never reached a handler


@pytest.mark.parametrize(
    "broken",
    [httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError],
    ids=lambda e: e.__name__,
)
async def test_the_resend_is_one_and_a_second_break_is_the_attempts_error(
    broken: type[httpx.TransportError],
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise broken("connection reset by peer", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    settings = Settings(api_key="sk-test", base_url="http://upstream.test")
    async with http, AsyncQwen(settings=settings, http_client=http, retry=NO_RETRIES) as q:
        with pytest.raises(APIConnectionError, match=broken.__name__):
            await q.chat("Hi", model="qwen-plus", max_tokens=4)
    assert len(sent) == 2
    assert sent[0].content == sent[1].content
