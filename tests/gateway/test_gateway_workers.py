"""``qwenkit serve --workers 2``: two processes on one port, and ``/metrics`` of either one
reports the requests of both (prometheus-client's multiprocess mode).

Each request goes on a new connection, so the kernel hands them to both workers; every scrape,
whichever worker answers it, must show the full count. The test gives the metrics directory
itself (``PROMETHEUS_MULTIPROC_DIR``) so it can also check that both workers wrote to it, which
is what makes a wrong per-process count visible."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from emulator_server import serve
from gateway_process import gateway_processes

from qwenkit.emulator import create_app as emulator_app

MASTER = "qk-master-workers-0123456789"
REQUESTS = 40
SCRAPES = 12


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    with serve(emulator_app()) as upstream:
        env = {
            **os.environ,
            "DASHSCOPE_API_KEY": "sk-emulator-upstream",
            "QWENKIT_BASE_URL": upstream,
            "QWENKIT_STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
            "QWENKIT_MASTER_KEY": MASTER,
            "QWENKIT_HOME": str(tmp_path),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        }
        with gateway_processes(env, tmp_path, [["--workers", "2"]]) as [url]:
            yield url, metrics


def requests_total(exposition: str) -> float:
    pattern = r'^qwenkit_gateway_requests_total\{[^}]*status="ok"[^}]*\} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, exposition, flags=re.MULTILINE))


def test_metrics_of_any_worker_count_the_requests_of_all(workers: tuple[str, Path]) -> None:
    url, metrics = workers
    body = {"model": "qwen-plus", "max_tokens": 4,
            "messages": [{"role": "user", "content": "Count me once."}]}  # fmt: skip
    for _ in range(REQUESTS):
        answer = httpx.post(  # a new connection each time: both workers take some
            url + "/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {MASTER}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text

    master = {"authorization": f"Bearer {MASTER}"}
    scrapes = [httpx.get(url + "/metrics", headers=master, timeout=5) for _ in range(SCRAPES)]
    assert {scrape.status_code for scrape in scrapes} == {200}
    counts = [requests_total(scrape.text) for scrape in scrapes]
    assert counts == [REQUESTS] * SCRAPES
    writers = {path.stem.rsplit("_", 1)[-1] for path in metrics.glob("counter_*.db")}
    assert len(writers) == 2, sorted(p.name for p in metrics.iterdir())
    live = {path.stem.rsplit("_", 1)[-1] for path in metrics.glob("gauge_livesum_*.db")}
    assert live == writers  # the supervisor's own gateway (built for the banner) does not count
