"""``qwenkit serve --log-format json`` as users start it (a process, in front of the emulator over
HTTP): every stderr line is one JSON object, uvicorn's included; one access line per request with
the request id, key id, status, timings, tokens and cost; the gateway's own lines carry the
request id; and no prompt text, upstream key, virtual key or master key anywhere. And without any
configuration the gateway never imports OpenTelemetry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_server import free_port, restored_config, serve

from qwenkit.cli._serve import _log_options
from qwenkit.emulator import create_app as emulator_app
from qwenkit.gateway._logging import JsonFormatter, access_fields, bind_request_id

UPSTREAM_KEY = "sk-upstream-secret-7f3a9c"
MASTER = "qk-master-logs-5b8e1d2c4a"
PROMPT = "Summarise the saffron comet of Loghaven for me."


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "QWENKIT_"))}
    env.pop("DASHSCOPE_API_KEY", None)
    env["QWENKIT_HOME"] = str(home)
    return env


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve(emulator_app()) as url:
        yield url


@pytest.fixture(scope="module")
def gateway_logs(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the gateway, send the requests, stop it; its stderr lines, parsed, and what was sent."""
    home = tmp_path_factory.mktemp("gateway-logs")
    env = clean_env(home) | {
        "DASHSCOPE_API_KEY": UPSTREAM_KEY,
        "QWENKIT_BASE_URL": upstream,
        "QWENKIT_MASTER_KEY": MASTER,
        "QWENKIT_LOG_FORMAT": "json",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stdout, stderr = home / "stdout.log", home / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "qwenkit", "serve", "--port", str(port), "--log-level", "info"],
            env=env,
            stdout=out,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the gateway exited:\n{stderr.read_text()}")
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the gateway did not start")
            time.sleep(0.1)
        sent = exercise(url, upstream)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    text = stderr.read_text(encoding="utf-8")
    return {"text": text, "stdout": stdout.read_text(), **sent}


def exercise(url: str, upstream: str) -> dict[str, Any]:
    master = {"authorization": f"Bearer {MASTER}"}
    created = httpx.post(
        url + "/admin/keys", json={"name": "logs-app", "environment": "prod"}, headers=master
    )
    assert created.status_code == 201, created.text
    key, key_id = created.json()["key"], created.json()["id"]
    auth = {"authorization": f"Bearer {key}", "x-qwenkit-endpoint": "summaries"}
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": PROMPT}]}
    whole = httpx.post(url + "/v1/chat/completions", json=body, headers=auth, timeout=30)
    assert whole.status_code == 200, whole.text
    with httpx.stream(
        "POST",
        url + "/v1/chat/completions",
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
        headers=auth,
        timeout=30,
    ) as streamed:
        chunks = [line for line in streamed.iter_lines() if line.startswith("data:")]
    refused = httpx.post(
        url + "/v1/chat/completions",
        json=body,
        headers={"authorization": "Bearer qk-wrong-key"},
        timeout=30,
    )
    assert refused.status_code == 401
    with (
        httpx.Client(base_url=upstream) as control,
        restored_config(control, {"faults": {"fail_first": 1, "error_status": 503}}),
    ):
        retried = httpx.post(url + "/v1/chat/completions", json=body, headers=auth, timeout=30)
    assert retried.status_code == 200, retried.text
    return {
        "key": key,
        "key_id": key_id,
        "whole": whole.json(),
        "chunks": chunks,
        "refused_id": refused.headers["x-request-id"],
    }


def test_every_stderr_line_is_one_json_object_uvicorns_too(gateway_logs: dict[str, Any]) -> None:
    lines = [line for line in gateway_logs["text"].splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in parsed)
    loggers = {line["logger"] for line in parsed}
    assert "uvicorn.error" in loggers  # "Uvicorn running on ...", "Application startup complete"
    assert "uvicorn.access" not in loggers  # replaced by the gateway's access lines
    assert "qwenkit gateway on" in gateway_logs["stdout"]  # the banner stays on stdout


def access_lines(gateway_logs: dict[str, Any]) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in gateway_logs["text"].splitlines() if line.strip()]
    return [line for line in parsed if line["logger"] == "qwenkit.gateway.access"]


def test_one_access_line_per_request_with_its_ids_timings_tokens_and_cost(
    gateway_logs: dict[str, Any],
) -> None:
    lines = access_lines(gateway_logs)
    assert len(lines) == 4
    whole, streamed, refused, retried = lines
    usage = gateway_logs["whole"]["usage"]
    assert whole["level"] == "info"
    assert whole["request_id"]
    assert (whole["method"], whole["path"]) == ("POST", "/v1/chat/completions")
    assert whole["upstream_request_id"]
    assert whole["key_id"] == gateway_logs["key_id"]
    assert (whole["environment"], whole["endpoint"], whole["model"]) == (
        "prod",
        "summaries",
        "qwen-plus",
    )
    assert (whole["status"], whole["http_status"], whole["error_code"]) == ("ok", 200, None)
    assert whole["prompt_tokens"] == usage["prompt_tokens"]
    assert whole["completion_tokens"] == usage["completion_tokens"]
    assert whole["latency_ms"] > 0
    assert whole["ttft_ms"] is None or whole["ttft_ms"] >= 0
    assert float(whole["cost"]) > 0
    assert (whole["cache_hit"], whole["attempts"], whole["stream"]) == (False, 1, False)
    assert streamed["stream"] is True
    assert streamed["ttft_ms"] > 0
    last = json.loads(gateway_logs["chunks"][-2].removeprefix("data:"))  # before [DONE]
    assert streamed["completion_tokens"] == last["usage"]["completion_tokens"]
    assert (refused["status"], refused["http_status"], refused["error_code"]) == (
        "error", 401, "InvalidApiKey",
    )  # fmt: skip
    assert refused["request_id"] == gateway_logs["refused_id"]
    assert refused["key_id"] is None
    assert retried["attempts"] == 2
    assert len({line["request_id"] for line in lines}) == 4


def test_the_gateways_own_lines_carry_the_request_id(gateway_logs: dict[str, Any]) -> None:
    parsed = [json.loads(line) for line in gateway_logs["text"].splitlines() if line.strip()]
    [retry] = [line for line in parsed if line["logger"] == "qwenkit.retries"]
    assert "retrying" in retry["message"]
    assert retry["request_id"] == access_lines(gateway_logs)[3]["request_id"]


def test_no_prompt_text_and_no_key_reach_the_logs(gateway_logs: dict[str, Any]) -> None:
    text = gateway_logs["text"]
    assert text
    for secret in (PROMPT, "saffron comet", UPSTREAM_KEY, gateway_logs["key"], MASTER):
        assert secret not in text
    assert "qk-wrong-key" not in text
    answer = gateway_logs["whole"]["choices"][0]["message"]["content"]
    assert answer[:40] not in text


def test_the_formatter_adds_the_request_id_and_the_traceback() -> None:
    import logging

    formatter = JsonFormatter()
    bind_request_id("req-42")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("qwenkit.gateway", logging.ERROR, __file__, 1, "failed %s",
                                   ("x",), sys.exc_info())  # fmt: skip
    line = json.loads(formatter.format(record))
    assert (line["message"], line["level"], line["request_id"]) == ("failed x", "error", "req-42")
    assert line["exc_type"] == "ValueError"
    assert "boom" in line["exception"]
    assert "prompt" not in access_fields.__code__.co_names


def test_text_stays_the_default_and_the_config_file_can_ask_for_json(tmp_path: Path) -> None:
    assert _log_options(None, None, "warning") == {}
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nlog_format = "json"\n')
    options = _log_options(None, str(config), "warning")
    assert options["access_log"] is False
    assert options["log_config"]["formatters"]["json"]["()"].endswith("JsonFormatter")
    assert _log_options("text", str(config), "warning") == {}  # the flag (or env) wins


def test_with_nothing_configured_the_gateway_never_imports_opentelemetry(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        import httpx
        from qwenkit.cli._serve import build_app

        async def main():
            app, facts = build_app(None, None)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app)
                async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                    answer = await client.post(
                        "/v1/chat/completions",
                        headers={"authorization": "Bearer " + facts["master_key"]},
                        json={"model": "qwen-plus", "messages": [{"role": "user", "content": "Hi"}]},
                    )
                    assert answer.status_code == 200, answer.text
            print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
