"""The Batch API routes over real HTTP: file upload/get/content, batch create/get/cancel."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emulator_server import serve

from qwenkit.emulator import EmulatorConfig, create_app

KEY = {"Authorization": "Bearer sk-test-batches"}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    config = EmulatorConfig.model_validate(
        {"batches": {"validating_seconds": 0.05, "in_progress_seconds": 0.05}}
    )
    with (
        serve(create_app(config)) as base,
        httpx.Client(base_url=base + "/compatible-mode/v1", headers=KEY) as http,
    ):
        yield http


def line(custom_id: str, text: str) -> str:
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": text}], "max_tokens": 8}
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    )


def upload(client: httpx.Client, content: str) -> dict[str, Any]:
    response = client.post(
        "/files", files={"file": ("in.jsonl", content.encode())}, data={"purpose": "batch"}
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def create(client: httpx.Client, file_id: str) -> dict[str, Any]:
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    response = client.post("/batches", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def wait(client: httpx.Client, batch_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        batch: dict[str, Any] = client.get(f"/batches/{batch_id}").json()
        if batch["status"] in ("completed", "failed", "cancelled"):
            return batch
        time.sleep(0.02)
    raise AssertionError("the batch did not finish")


def test_file_upload_get_and_content(client: httpx.Client) -> None:
    content = line("a", "hello") + "\n"
    uploaded = upload(client, content)
    assert set(uploaded) == {"id", "object", "bytes", "created_at", "filename", "purpose"}
    assert uploaded["object"] == "file"
    assert uploaded["purpose"] == "batch"
    assert uploaded["bytes"] == len(content.encode())
    assert uploaded["filename"] == "in.jsonl"
    assert client.get(f"/files/{uploaded['id']}").json() == uploaded
    assert client.get(f"/files/{uploaded['id']}/content").text == content


def test_upload_needs_purpose_batch(client: httpx.Client) -> None:
    response = client.post("/files", files={"file": ("x.jsonl", b"{}")}, data={"purpose": "x"})
    assert response.status_code == 400


def test_batch_runs_through_chat_and_matches_chat_completions(client: httpx.Client) -> None:
    uploaded = upload(client, "\n".join(line(f"r{n}", f"text {n}") for n in range(5)) + "\n")
    created = create(client, uploaded["id"])
    assert created["object"] == "batch"
    assert created["status"] == "validating"
    assert created["input_file_id"] == uploaded["id"]
    assert created["output_file_id"] is None
    batch = wait(client, created["id"])
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 5, "completed": 5, "failed": 0}
    assert batch["in_progress_at"] is not None
    assert batch["completed_at"] is not None
    assert batch["error_file_id"] is None
    output = client.get(f"/files/{batch['output_file_id']}/content").text.splitlines()
    rows = {row["custom_id"]: row for row in map(json.loads, output)}
    assert set(rows) == {f"r{n}" for n in range(5)}
    for n in range(5):
        row = rows[f"r{n}"]
        assert set(row) == {"id", "custom_id", "response", "error"}
        assert row["error"] is None
        assert row["response"]["status_code"] == 200
        assert row["response"]["request_id"]
        direct = client.post("/chat/completions", json=json.loads(line("x", f"text {n}"))["body"])
        expected = direct.json()["choices"][0]["message"]["content"]
        assert row["response"]["body"]["choices"][0]["message"]["content"] == expected


def test_failed_lines_go_to_the_error_file(client: httpx.Client) -> None:
    bad = json.dumps(
        {"custom_id": "bad", "url": "/v1/chat/completions", "body": {"model": "no-such-model",
         "messages": [{"role": "user", "content": "hi"}]}}
    )  # fmt: skip
    uploaded = upload(client, line("good", "hi") + "\n" + bad + "\n")
    batch = wait(client, create(client, uploaded["id"])["id"])
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    errors = [
        json.loads(raw)
        for raw in client.get(f"/files/{batch['error_file_id']}/content").text.splitlines()
    ]
    assert [row["custom_id"] for row in errors] == ["bad"]
    assert errors[0]["response"]["status_code"] == 404
    assert errors[0]["error"]["code"]


def test_malformed_file_fails_the_batch(client: httpx.Client) -> None:
    uploaded = upload(client, line("a", "x") + "\nnot json\n")
    batch = wait(client, create(client, uploaded["id"])["id"])
    assert batch["status"] == "failed"
    assert batch["failed_at"] is not None
    assert batch["errors"]["data"][0]["line"] == 2
    assert batch["output_file_id"] is None


def test_cancel(client: httpx.Client) -> None:
    uploaded = upload(client, line("a", "x") + "\n")
    created = create(client, uploaded["id"])
    cancelled = client.post(f"/batches/{created['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert client.get(f"/batches/{created['id']}").json()["status"] == "cancelled"
    again = client.post(f"/batches/{created['id']}/cancel")
    assert again.status_code == 400


def test_create_checks_endpoint_and_window(client: httpx.Client) -> None:
    file_id = upload(client, line("a", "x") + "\n")["id"]
    body = {"input_file_id": file_id, "endpoint": "/v1/embeddings", "completion_window": "24h"}
    assert client.post("/batches", json=body).status_code == 400
    body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "1h"}
    assert client.post("/batches", json=body).status_code == 400


def test_unknown_ids_are_404(client: httpx.Client) -> None:
    assert client.get("/files/file-nope").status_code == 404
    assert client.get("/files/file-nope/content").status_code == 404
    assert client.get("/batches/batch_nope").status_code == 404
    assert client.post("/batches/batch_nope/cancel").status_code == 404
    body = {"input_file_id": "file-nope", "endpoint": "/v1/chat/completions",
            "completion_window": "24h"}  # fmt: skip
    assert client.post("/batches", json=body).status_code == 404


def test_no_key_is_401(client: httpx.Client) -> None:
    bare = {"Authorization": ""}
    assert client.get("/batches/batch_x", headers=bare).status_code == 401
    assert client.get("/files/file-x", headers=bare).status_code == 401
    response = client.post("/files", headers=bare, files={"file": ("x", b"{}")},
                           data={"purpose": "batch"})  # fmt: skip
    assert response.status_code == 401


def test_reset_forgets_batches(client: httpx.Client) -> None:
    file_id = upload(client, line("a", "x") + "\n")["id"]
    root = str(client.base_url).removesuffix("/compatible-mode/v1/")
    httpx.post(root.rstrip("/") + "/_emulator/reset").raise_for_status()
    assert client.get(f"/files/{file_id}").status_code == 404
