"""The WebSocket relay (``WS /v1/chat/completions/ws``) over real TCP, in front of the emulator
over real HTTP, driven by the ``websockets`` library's client: the same chunks as the SSE route,
several requests on one socket, the key on the handshake or in the first message, a bad key
closing with 1008, the reasoning kept from the client, errors that leave the socket open, and
a client that leaves (or cancels) ending the upstream call as ``cancelled`` in the ledger.

One emulator and one gateway (uvicorn in threads, the gateway with ``websockets-sansio``) per
module; the gateway's store is a SQLite file of the module's tmp dir; each test makes its own
keys."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_server import restored_config, serve
from gateway_site import GatewaySite
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from qwenkit import Settings, UsageRecord
from qwenkit.emulator import create_app as emulator_app
from qwenkit.gateway import Gateway, GatewayConfig, _websocket, create_app

MASTER = "qk-master-test-0123456789"
MESSAGES = [{"role": "user", "content": "Say hello to the WebSocket relay."}]
ROUTE = "/v1/chat/completions/ws"
TIMEOUT = 10.0


class Served(GatewaySite):
    def socket(self, key: str | None = None, route: str = ROUTE) -> ClientConnection:
        """A socket to the relay, with ``key`` on the handshake when given."""
        headers = {"Authorization": f"Bearer {key}"} if key is not None else None
        url = "ws" + self.url.removeprefix("http") + route
        return connect(url, additional_headers=headers, open_timeout=TIMEOUT)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder: Path = tmp_path_factory.mktemp("gateway-ws")
    store_url = f"sqlite:///{folder / 'store.db'}"
    with serve(emulator_app()) as upstream:
        settings = Settings(api_key="sk-emulator-upstream", base_url=upstream)
        config = GatewayConfig(store_url=store_url, master_key=MASTER)
        gateway = Gateway(config, settings=settings)
        with serve(create_app(gateway), ws="websockets-sansio") as url:
            yield Served(url, store_url, gateway, upstream)


def body(content: str = "Say hello to the WebSocket relay.", **options: Any) -> dict[str, Any]:
    return {"model": "qwen-plus", "messages": [{"role": "user", "content": content}],
            "temperature": 0, **options}  # fmt: skip


def receive(ws: ClientConnection) -> dict[str, Any]:
    message = ws.recv(timeout=TIMEOUT)
    assert isinstance(message, str), message
    parsed: dict[str, Any] = json.loads(message)
    return parsed


def answer(ws: ClientConnection) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The messages of one request up to its ``done`` (``(messages, done)``)."""
    messages = []
    while (message := receive(ws)).get("type") != "done":
        messages.append(message)
    return messages, message


def ask(
    ws: ClientConnection, request: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    ws.send(json.dumps(request))
    return answer(ws)


def content(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def closed_with(ws: ClientConnection) -> int | None:
    """The close code the server sent, once it closed the socket."""
    try:
        extra = ws.recv(timeout=TIMEOUT)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None
    raise AssertionError(f"the socket is still open (it sent {extra!r})")


def sse_chunks(served: Served, key: str, request: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``data:`` objects of the same request on the SSE route."""
    with httpx.Client(base_url=served.url, timeout=TIMEOUT) as client:
        response = client.post(
            "/v1/chat/completions",
            json={**request, "stream": True},
            headers={"authorization": f"Bearer {key}"},
        )
    assert response.status_code == 200, response.text
    data = [line.removeprefix("data: ") for line in response.text.splitlines() if line]
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]


def upstream_entry(served: Served, *, ended: bool = False) -> dict[str, Any]:
    """The emulator's log entry of the last upstream request (waiting for its end)."""
    deadline = time.monotonic() + 5
    while True:
        log = httpx.get(served.upstream + "/_emulator/requests", params={"limit": 1}).json()
        [entry] = log["requests"] if isinstance(log, dict) else log
        if not ended or "ended" in entry or time.monotonic() > deadline:
            return dict(entry)
        time.sleep(0.05)


def same_shape(chunk: dict[str, Any]) -> dict[str, Any]:
    """A chunk without what differs between two calls (its id and creation time)."""
    return {name: value for name, value in chunk.items() if name not in ("id", "created")}


# -- answers --------------------------------------------------------------------------------------


def test_a_streamed_answer_is_the_sse_routes_answer_chunk_for_chunk(served: Served) -> None:
    key, key_id = served.key()
    request = body(stream_options={"include_usage": True})
    with served.socket(key) as ws:
        chunks, done = ask(ws, {**request, "id": "ref-7f3a"})
    sent_on = upstream_entry(served)
    expected = sse_chunks(served, key, request)
    assert content(chunks)
    assert content(chunks) == content(expected)
    assert [same_shape(c) for c in chunks] == [same_shape(c) for c in expected]
    assert chunks[-1]["usage"]["completion_tokens"] > 0  # include_usage as on the SSE route
    assert done["id"] == "ref-7f3a"
    assert sent_on["stream"] is True  # stream is implied
    assert "ref-7f3a" not in json.dumps(sent_on["body"])  # the id stays in the gateway
    assert done["status"] == 200
    assert done["request_id"]
    records = served.records(key_id)
    assert [(r.status, r.stream, r.model) for r in records] == [("ok", True, "qwen-plus")] * 2
    assert records[1].completion_tokens == chunks[-1]["usage"]["completion_tokens"]


def test_requests_in_sequence_and_queued_on_one_socket_are_answered_in_order(
    served: Served,
) -> None:
    key, key_id = served.key()
    with served.socket(key, route="/compatible-mode/v1/chat/completions/ws") as ws:
        first, first_done = ask(ws, {**body("One."), "id": 1})
        second, second_done = ask(ws, {**body("Two."), "id": 2})
        ws.send(json.dumps({**body("Three."), "id": 3}))  # sent before 3 is answered
        ws.send(json.dumps({**body("Four."), "id": 4}))
        third, third_done = answer(ws)
        fourth, fourth_done = answer(ws)
        ws.send(json.dumps({"type": "ping", "id": "p"}))
        pong = receive(ws)
    assert [first_done["id"], second_done["id"], third_done["id"], fourth_done["id"]] == [
        1,
        2,
        3,
        4,
    ]
    answers = [content(chunks) for chunks in (first, second, third, fourth)]
    assert all(answers)
    assert len(set(answers)) == 4  # each done closes its own answer
    assert pong == {"type": "pong", "id": "p"}
    assert [r.status for r in served.records(key_id)] == ["ok"] * 4


# -- keys -----------------------------------------------------------------------------------------


def test_a_browser_sends_its_key_in_the_first_message(served: Served) -> None:
    key, key_id = served.key(environment="web")
    with served.socket() as ws:
        ws.send(json.dumps({"type": "auth", "key": key}))
        assert receive(ws) == {"type": "authenticated"}
        chunks, done = ask(ws, body())
        ws.send(json.dumps({"type": "auth", "key": key}))  # once only
        late, late_done = answer(ws)
    assert content(chunks)
    assert done["status"] == 200
    assert late[0]["error"]["code"] == "invalid_parameter_error"
    assert late_done["status"] == 400
    [record] = served.records(key_id)
    assert (record.status, record.environment) == ("ok", "web")


def test_a_bad_key_on_the_handshake_is_an_error_then_close_1008_and_is_recorded(
    served: Served,
) -> None:
    before = len(served.records())
    with served.socket("qk-000000000000-wrong") as ws:
        error = receive(ws)
        code = closed_with(ws)
    assert error["error"]["code"] == "invalid_api_key"
    assert error["request_id"]
    assert code == 1008
    records = served.records()
    assert len(records) == before + 1
    assert (records[0].status, records[0].http_status) == ("error", 401)


def test_a_bad_key_in_the_auth_message_and_a_missing_key_close_with_1008(served: Served) -> None:
    before = len(served.records())
    with served.socket() as ws:
        ws.send(json.dumps({"type": "auth", "key": "qk-000000000000-wrong"}))
        wrong = receive(ws)
        wrong_code = closed_with(ws)
    with served.socket() as ws:  # a request without any key
        ws.send(json.dumps(body()))
        missing = receive(ws)
        missing_code = closed_with(ws)
    assert (wrong["error"]["code"], wrong_code) == ("invalid_api_key", 1008)
    assert (missing["error"]["code"], missing_code) == ("invalid_api_key", 1008)
    assert "No API-key" in missing["error"]["message"]
    records = served.records()
    assert len(records) == before + 2
    assert all(r.http_status == 401 for r in records[:2])


def test_a_socket_that_never_sends_its_key_is_closed(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_websocket, "AUTH_TIMEOUT", 0.2)
    with served.socket() as ws:
        error = receive(ws)
        code = closed_with(ws)
    assert error["error"]["code"] == "invalid_api_key"
    assert code == 1008


def test_a_key_in_the_url_query_is_not_read(served: Served) -> None:
    key, _ = served.key()
    with served.socket(route=f"{ROUTE}?key={key}&api_key={key}") as ws:
        ws.send(json.dumps(body()))
        error = receive(ws)
        code = closed_with(ws)
    assert (error["error"]["code"], code) == ("invalid_api_key", 1008)


def test_a_key_revoked_while_its_socket_is_open_stops_working(served: Served) -> None:
    key, key_id = served.key()
    with served.socket(key) as ws:
        chunks, _ = ask(ws, body("Before."))
        response = httpx.delete(
            f"{served.url}/admin/keys/{key_id}", headers={"authorization": f"Bearer {MASTER}"}
        )
        assert response.status_code < 300, response.text
        ws.send(json.dumps(body("After.")))
        error = receive(ws)
        code = closed_with(ws)
    assert content(chunks)
    assert (error["error"]["code"], code) == ("invalid_api_key", 1008)


# -- the reasoning --------------------------------------------------------------------------------


def test_the_reasoning_never_reaches_the_socket_unless_the_key_passes_it(served: Served) -> None:
    strip, _ = served.key()
    passing, _ = served.key(reasoning="pass")
    request = body("Think about the relay.", enable_thinking=True)
    with served.socket(strip) as ws:
        stripped, _ = ask(ws, request)
    with served.socket(passing) as ws:
        passed, _ = ask(ws, request)
    assert content(stripped)
    deltas = [c["choices"][0]["delta"] for c in stripped if c["choices"]]
    assert not any(d.get("reasoning_content") for d in deltas)
    passed_deltas = [c["choices"][0]["delta"] for c in passed if c["choices"]]
    assert any(d.get("reasoning_content") for d in passed_deltas)  # the test can fail


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"model": "qwen-plus"}', "missing"),
        ('{"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], '
         '"temperature": "hot"}', "temperature"),
    ],
)  # fmt: skip
def test_a_bad_message_is_an_error_message_and_the_socket_answers_the_next_one(
    served: Served, message: str, needle: str
) -> None:
    key, key_id = served.key()
    with served.socket(key) as ws:
        ws.send(message)
        errors, done = answer(ws)
        chunks, next_done = ask(ws, body())
    [error] = errors
    assert needle.lower() in error["error"]["message"].lower()
    assert done["status"] == 400
    assert content(chunks)
    assert next_done["status"] == 200
    newest, rejected = served.records(key_id)
    assert (rejected.status, rejected.http_status) == ("error", 400)
    assert newest.status == "ok"


def test_an_unknown_message_type_is_an_error_not_a_request(served: Served) -> None:
    key, key_id = served.key()
    with served.socket(key) as ws:
        errors, done = ask(ws, {"type": "subscribe", "id": "s"})
    assert "subscribe" in errors[0]["error"]["message"]
    assert (done["status"], done["id"]) == (400, "s")
    assert served.records(key_id) == []  # not a chat request


def test_an_upstream_error_mid_stream_is_an_error_message_and_the_socket_stays_open(
    served: Served,
) -> None:
    key, _ = served.key()
    rule = {"match": {"last_user": "umbrella"},
            "text": "Take an umbrella, it will rain all day in Hangzhou.",
            "fault": {"kind": "error_mid_stream", "after_chunks": 2,
                      "error": {"status": 400, "code": "DataInspectionFailed",
                                "message": "Output data may contain inappropriate content."}}}  # fmt: skip
    with httpx.Client(base_url=served.upstream) as control:
        control.post("/_emulator/scenarios", json=[rule]).raise_for_status()
        try:
            with served.socket(key) as ws:
                failed, failed_done = ask(ws, body("Do I need an umbrella?"))
                chunks, done = ask(ws, body())
        finally:
            control.post("/_emulator/scenarios", json=[]).raise_for_status()
    assert content(failed[:-1])  # the answer had started
    assert failed[-1]["error"]["code"] == "data_inspection_failed"
    assert failed_done["status"] == 200  # as on the SSE route: the stream had started
    assert content(chunks)
    assert done["status"] == 200


# -- leaving --------------------------------------------------------------------------------------


PACED = {"pacing": {"tokens_per_second": 200, "chunk_tokens": 2}}


def wait_for_record(served: Served, key_id: str) -> UsageRecord:
    deadline = time.monotonic() + 5
    while not (records := served.records(key_id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    [record] = records
    return record


def test_a_client_that_closes_mid_stream_ends_the_call_as_cancelled(served: Served) -> None:
    key, key_id = served.key()
    with httpx.Client(base_url=served.upstream) as control, restored_config(control, PACED):
        with served.socket(key) as ws:
            ws.send(json.dumps(body("A long answer, please.", max_tokens=2000)))
            received = [receive(ws) for _ in range(4)]
        record = wait_for_record(served, key_id)
        upstream = upstream_entry(served, ended=True)
    assert content(received)
    assert upstream["disconnected"] is True  # the upstream request was closed, not read out
    assert record.status == "cancelled"
    assert record.latency_s < 5  # the call ended with the client, not with the answer


def test_a_cancel_message_ends_the_answer_and_the_socket_goes_on(served: Served) -> None:
    key, key_id = served.key()
    with (
        httpx.Client(base_url=served.upstream) as control,
        restored_config(control, PACED),
        served.socket(key) as ws,
    ):
        ws.send(json.dumps({**body("A long answer, please.", max_tokens=2000), "id": "x"}))
        received = [receive(ws) for _ in range(4)]
        ws.send(json.dumps({"type": "cancel", "id": "x"}))
        rest, done = answer(ws)
        cancelled = wait_for_record(served, key_id)
        upstream = upstream_entry(served, ended=True)
        chunks, next_done = ask(ws, body("Short, please.", max_tokens=20))
    assert content(received)
    assert not any("error" in message for message in rest)  # cut short, not failed
    assert (done["id"], done.get("cancelled")) == ("x", True)
    assert cancelled.status == "cancelled"
    assert cancelled.latency_s < 5
    assert upstream["disconnected"] is True
    assert content(chunks)
    assert "cancelled" not in next_done
