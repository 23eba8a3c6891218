"""Malformed requests never get a 5xx: 10,000 generated bodies and headers (hypothesis) against
the gateway over real HTTP, on the compatible and the native route.

The bodies range from bytes that are not JSON, through JSON that is not an object, to requests
that are nearly right: every field of a chat request given a value of a wrong type, messages
with unknown roles or content of the wrong shape, tools that are not tools, and valid requests
with one or two parameters changed (these reach the pipeline and the upstream). Each answer must be a
4xx with a JSON body in the route's format (or a 200 when the body happened to be valid); the
connection is never dropped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emulator_server import serve
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from qwenkit import Settings
from qwenkit.emulator import create_app as emulator_app
from qwenkit.gateway import Gateway, GatewayConfig, create_app

MASTER = "qk-master-fuzz-0123456789"
ROUTES = {
    "compat": "/v1/chat/completions",
    "native": "/api/v1/services/aigc/text-generation/generation",
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
roles = st.sampled_from(["system", "user", "assistant", "tool", "developer", "robot", ""]) | values
contents = st.text(max_size=30) | st.lists(
    st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "bogus"]) | values},
                          optional={"text": values, "image_url": values}),
    max_size=3,
) | values  # fmt: skip
messages = st.lists(
    st.fixed_dictionaries(
        {"role": roles},
        optional={
            "content": contents,
            "tool_calls": values,
            "tool_call_id": values,
            "name": values,
        },
    )
    | values,
    max_size=4,
)
FIELDS = {
    "temperature": values | st.floats(-5, 5),
    "top_p": values | st.floats(-1, 2),
    "max_tokens": values | st.integers(-10, 10**7),
    "n": values,
    "stop": values,
    "seed": values,
    "tools": st.lists(values, max_size=3) | values,
    "tool_choice": values | st.sampled_from(["auto", "none", "required"]),
    "response_format": values | st.just({"type": "json_object"}),
    "enable_thinking": values,
    "thinking_budget": values,
    "stream": values | st.booleans(),
    "stream_options": values,
    "presence_penalty": values,
    "parallel_tool_calls": values,
}
models = st.sampled_from(["qwen-plus", "qwen-flash", "no-such-model", ""]) | values
compat_bodies = st.fixed_dictionaries(
    {"model": models, "messages": messages},
    optional=FIELDS,
)
native_bodies = st.fixed_dictionaries(
    {"model": models, "input": st.fixed_dictionaries({}, optional={"messages": messages,
                                                                    "prompt": values}) | values},
    optional={"parameters": st.fixed_dictionaries({}, optional=FIELDS) | values},
)  # fmt: skip
raw_bodies = st.binary(max_size=200) | values.map(lambda v: json.dumps(v).encode())


VALID = {"model": "qwen-plus", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
nearly_valid_compat = st.dictionaries(
    st.sampled_from(sorted(FIELDS)), st.one_of(*FIELDS.values()), min_size=1, max_size=2
).map(lambda changed: {**VALID, **changed})
nearly_valid_native = st.dictionaries(
    st.sampled_from(sorted(FIELDS)), st.one_of(*FIELDS.values()), min_size=1, max_size=2
).map(lambda changed: {"model": "qwen-plus", "input": {"messages": VALID["messages"]},
                       "parameters": {"max_tokens": 8, **changed}})  # fmt: skip


def encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


requests = st.one_of(
    st.tuples(st.just("compat"), nearly_valid_compat.map(encoded)),
    st.tuples(st.just("native"), nearly_valid_native.map(encoded)),
    st.tuples(st.just("compat"), compat_bodies.map(encoded)),
    st.tuples(st.just("native"), native_bodies.map(encoded)),
    st.tuples(st.sampled_from(["compat", "native"]), raw_bodies),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "x-dashscope-sse": st.sampled_from(["enable", "disable", "ENABLE", "x"]),
        "x-qwenkit-task": st.sampled_from(["chat", "extract", "reason", "bogus", ""]),
        "x-qwenkit-endpoint": st.text(
            st.characters(min_codepoint=33, max_codepoint=126), max_size=40
        ),
        "content-type": st.sampled_from(["application/json", "text/plain", ""]),
    },
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    store_url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'store.db'}"
    with serve(emulator_app()) as upstream:
        gateway = Gateway(
            GatewayConfig(store_url=store_url, master_key=MASTER),
            settings=Settings(api_key="sk-emulator-upstream", base_url=upstream),
        )
        with (
            serve(create_app(gateway)) as url,
            httpx.Client(
                base_url=url, timeout=30, headers={"authorization": f"Bearer {MASTER}"}
            ) as http,
        ):
            yield http


@settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(request=requests, extra=headers)
def test_malformed_requests_never_get_a_5xx(
    client: httpx.Client, request: tuple[str, bytes], extra: dict[str, str]
) -> None:
    wire, body = request
    response = client.post(ROUTES[wire], content=body, headers=extra)
    assert response.status_code < 500, (response.status_code, body, response.text)
    event(f"{wire} {response.status_code}")
    if response.status_code >= 400:
        assert "x-request-id" in response.headers
        if response.headers.get("content-type", "").startswith("application/json"):
            error = response.json()
            message = error["error"]["message"] if wire == "compat" else error["message"]
            assert message
