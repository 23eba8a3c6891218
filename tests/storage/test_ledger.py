"""The usage ledger on SQLite and PostgreSQL: every field stored exactly, 5,000 records/s for 10 s
with nothing lost on close, a full queue that spills and replays (twice, without duplicates), a
corrupt spill file, an unreachable database at start, and a database that dies mid-run.

Process-level behaviour (SIGKILL, SIGTERM) is in ``test_ledger_processes.py``."""

from __future__ import annotations

import contextlib
import logging
import select
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, make_url
from sqlalchemy import select as sql_select

from qwenkit import StorageError, UsageRecord
from qwenkit.storage import parse_store_url
from qwenkit.storage._ledger import SQLLedger, default_spill_path
from qwenkit.storage._reports import recent_records
from qwenkit.storage._rows import record_to_row
from qwenkit.storage._schema import usage
from qwenkit.storage._spill import encode_row, rejected_path
from qwenkit.storage._sql import sync_engine

LEDGER_LOG = "qwenkit.storage._ledger"
RECORD = UsageRecord(
    timestamp=datetime(2026, 12, 6, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8))),
    request_id="req-1", model="qwen-plus", task="chat", endpoint="faq", key_id="k1",
    region="ap-southeast-1", stream=True, prompt_tokens=1200, completion_tokens=80,
    cached_tokens=1024, cache_creation_tokens=16, reasoning_tokens=40,
    cost=Decimal("0.000123457"), currency="USD", latency_s=1.25, ttft_s=0.31, status="ok",
    http_status=200, error_code=None, cache_hit=False, attempts=2, finish_reason="stop",
    environment="prod", prompt='[{"role":"user","content":"hi ***"}]',
)  # fmt: skip


def records(count: int, **changes: object) -> list[UsageRecord]:
    """``count`` distinct records (new ``record_id`` each)."""
    base = replace(RECORD, **changes)  # type: ignore[arg-type]
    return [replace(base, request_id=f"req-{i}", record_id=f"{i:032x}") for i in range(count)]


def stored(url: str) -> int:
    engine = sync_engine(parse_store_url(url, part="ledger"))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sql_select(func.count()).select_from(usage)).scalar_one())
    finally:
        engine.dispose()


def stored_ids(url: str) -> list[str]:
    engine = sync_engine(parse_store_url(url, part="ledger"))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sql_select(usage.c.record_id)).scalars())
    finally:
        engine.dispose()


def ledger(url: str, tmp_path: Path, **options: object) -> SQLLedger:
    return SQLLedger(url, spill_path=tmp_path / "spill.jsonl", **options)  # type: ignore[arg-type]


def emit_paced(target: SQLLedger, batch: list[UsageRecord], rate: float) -> float:
    """Emit ``batch`` at ``rate`` records/s (in 10 ms slices); the slowest single emit, in s."""
    start, slowest = time.monotonic(), 0.0
    for index, record in enumerate(batch):
        due = start + index / rate
        ahead = due - time.monotonic()
        if ahead > 0.01:
            time.sleep(ahead)
        began = time.perf_counter()
        target.emit(record)
        slowest = max(slowest, time.perf_counter() - began)
    return slowest


# -- what is stored ---------------------------------------------------------------------------


def test_every_field_of_a_record_round_trips_exactly(sql_url: str, tmp_path: Path) -> None:
    error = replace(
        RECORD, record_id="e" * 32, status="error", http_status=429, error_code="Throttling",
        cost=None, currency=None, ttft_s=None, prompt=None, attempts=3, finish_reason=None,
        task=None, endpoint=None, key_id=None, region=None, environment=None, request_id=None,
    )  # fmt: skip
    cancelled = replace(RECORD, record_id="c" * 32, status="cancelled", cost=Decimal(0))
    hit = replace(RECORD, record_id="h" * 32, cache_hit=True, attempts=0, cost=Decimal(0))
    with ledger(sql_url, tmp_path) as target:
        for record in (RECORD, error, cancelled, hit):
            target.emit(record)
    back = {r.record_id: r for r in recent_records(sql_url, limit=10)}
    assert back == {r.record_id: r for r in (RECORD, error, cancelled, hit)}
    assert back[RECORD.record_id].cost == Decimal("0.000123457")  # exact, not a float
    assert back[RECORD.record_id].timestamp.utcoffset() is not None
    assert back[RECORD.record_id].prompt == RECORD.prompt


def test_flush_returns_once_everything_emitted_is_written(sql_url: str, tmp_path: Path) -> None:
    with ledger(sql_url, tmp_path, flush_interval=5.0) as target:
        for record in records(1234):
            target.emit(record)
        assert target.flush(timeout=10) is True
        assert stored(sql_url) == 1234
        stats = target.stats
        assert (stats.queued, stats.written, stats.spilled, stats.dropped) == (0, 1234, 0, 0)


def test_a_record_emitted_twice_is_stored_once(sql_url: str, tmp_path: Path) -> None:
    with ledger(sql_url, tmp_path) as target:
        target.emit(RECORD)
        target.flush(timeout=10)
        target.emit(RECORD)
    assert stored(sql_url) == 1


def test_records_emitted_after_close_spill_and_are_replayed(
    sqlite_url: str, tmp_path: Path
) -> None:
    target = ledger(sqlite_url, tmp_path)
    target.close()
    target.emit(RECORD)
    assert target.stats.spilled == 1
    assert stored(sqlite_url) == 0
    with ledger(sqlite_url, tmp_path) as again:
        assert again.stats.replayed == 1
    assert stored_ids(sqlite_url) == [RECORD.record_id]


def test_5000_records_per_second_for_10_seconds_nothing_lost_on_close(
    sql_url: str, tmp_path: Path
) -> None:
    batch = records(50_000)
    target = ledger(sql_url, tmp_path)
    emit_paced(target, batch, rate=5000)
    target.close()
    stats = target.stats
    assert (stats.spilled, stats.dropped, stats.queued) == (0, 0, 0)
    assert stats.written == 50_000
    assert stored(sql_url) == 50_000
    assert not target.spill_path.exists()


# -- the spill file ---------------------------------------------------------------------------


def test_a_full_queue_spills_and_the_next_start_replays_it_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    batch = records(3000)
    target = ledger(sqlite_url, tmp_path, queue_size=5, batch_size=1, block_timeout=0.0)
    for record in batch:  # far faster than one transaction per record
        target.emit(record)
    target.close()
    spilled = target.stats.spilled
    assert spilled > 0
    assert target.stats.written + spilled == 3000
    assert target.stats.dropped == 0
    assert stored(sqlite_url) == 3000 - spilled
    kept = tmp_path / "kept.jsonl"
    shutil.copy(target.spill_path, kept)

    with ledger(sqlite_url, tmp_path) as again:
        assert again.stats.replayed == spilled
    assert not target.spill_path.exists()
    assert sorted(stored_ids(sqlite_url)) == sorted(r.record_id for r in batch)

    shutil.copy(kept, target.spill_path)  # the same lines replayed a second time
    with ledger(sqlite_url, tmp_path) as third:
        assert third.stats.replayed == spilled
    assert stored(sqlite_url) == 3000  # no duplicates


def test_a_blocked_emit_waits_briefly_for_room_before_it_spills(
    sqlite_url: str, tmp_path: Path
) -> None:
    target = ledger(sqlite_url, tmp_path, queue_size=50, batch_size=50, block_timeout=1.0)
    for record in records(5000):
        target.emit(record)  # the writer makes room within the wait: nothing spills
    target.close()
    assert (target.stats.spilled, target.stats.written) == (0, 5000)


def test_a_corrupt_spill_file_replays_what_is_valid_and_names_the_bad_lines(
    sql_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = records(3)
    lines = [encode_row(record_to_row(r)) for r in good]
    spill = tmp_path / "spill.jsonl"
    spill.write_text(
        lines[0]
        + "this is not JSON\n"
        + lines[1]
        + '{"a": 1}\n'
        + "\n"
        + lines[2]
        + lines[0][: len(lines[0]) // 2],  # a last line cut short by a crash
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING, logger=LEDGER_LOG), ledger(sql_url, tmp_path) as t:
        assert t.stats.replayed == 3
    assert sorted(stored_ids(sql_url)) == sorted(r.record_id for r in good)
    assert "skipped 3 unreadable lines" in caplog.text
    assert "line 2, 4, 7" in caplog.text
    kept = rejected_path(spill).read_text(encoding="utf-8").splitlines()
    assert kept == ["this is not JSON", '{"a": 1}', lines[0][: len(lines[0]) // 2]]
    assert not spill.exists()


def test_the_default_spill_file_sits_next_to_a_sqlite_database(tmp_path: Path) -> None:
    url = parse_store_url(f"sqlite:///{tmp_path / 'usage.db'}", part="ledger")
    assert default_spill_path(url) == tmp_path / "usage.db.spill.jsonl"
    pg = parse_store_url("postgresql://u:secret@db.internal/app", part="ledger")
    assert "secret" not in str(default_spill_path(pg))
    assert default_spill_path(pg) != default_spill_path(
        parse_store_url("postgresql://u:secret@db.internal/other", part="ledger")
    )


# -- an unreachable database ------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a hung server)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield server.getsockname()[1]


@pytest.mark.parametrize("where", ["refused", "silent"])
def test_an_unreachable_postgres_at_start_is_an_error_naming_the_url_not_a_hang(
    tmp_path: Path, silent_port: int, where: str
) -> None:
    port = 1 if where == "refused" else silent_port
    url = f"postgresql://qwenkit:s3cret@127.0.0.1:{port}/usage"
    began = time.monotonic()
    with pytest.raises(StorageError) as caught:
        ledger(url, tmp_path)
    assert time.monotonic() - began < 10
    assert f"127.0.0.1:{port}/usage" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert caught.value.url is not None
    assert "s3cret" not in caught.value.url


def test_a_sqlite_file_that_cannot_be_created_is_an_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match=r"file/sub/usage\.db"):
        ledger(f"sqlite:///{blocker / 'sub' / 'usage.db'}", tmp_path)


# -- a database that dies mid-run -------------------------------------------------------------


class TCPProxy:
    """A TCP proxy in front of PostgreSQL that can be cut (every connection closed, new ones
    refused) and started again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self.port = server.getsockname()[1]
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            sockets, self._sockets = self._sockets, []
        if server is not None:
            server.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                if self._server is not server:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            a.close()
            b.close()


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TCPProxy]:
    parsed = make_url(postgres_url)
    proxy = TCPProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    proxy.start()
    yield proxy
    proxy.cut()


def _through(postgres_url: str, proxy: TCPProxy) -> str:
    parsed = make_url(postgres_url)
    return parsed.set(port=proxy.port).render_as_string(hide_password=False)


def test_a_database_that_dies_mid_run_spills_warns_once_and_catches_up_when_back(
    postgres_url: str, proxy: TCPProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    batch = records(8000)
    with caplog.at_level(logging.INFO, logger=LEDGER_LOG):
        target = ledger(_through(postgres_url, proxy), tmp_path)
        slowest = emit_paced(target, batch[:2000], rate=2000)  # 1 s up
        proxy.cut()
        slowest = max(slowest, emit_paced(target, batch[2000:6000], rate=2000))  # 2 s down
        spilled_while_down = target.stats.spilled
        proxy.start()  # back on the same port
        slowest = max(slowest, emit_paced(target, batch[6000:], rate=2000))
        deadline = time.monotonic() + 10
        while target.stats.replayed < spilled_while_down and time.monotonic() < deadline:
            time.sleep(0.05)
        target.close()
    assert spilled_while_down > 0
    assert slowest < 0.5  # emits never waited on the dead database
    warnings = [r for r in caplog.records if "cannot write to the database" in r.getMessage()]
    assert len(warnings) == 1
    assert "the database is back" in caplog.text
    assert target.stats.dropped == 0
    assert sorted(stored_ids(postgres_url)) == sorted(r.record_id for r in batch)


def test_records_spilled_while_the_database_was_down_are_replayed_at_the_next_start(
    postgres_url: str, proxy: TCPProxy, tmp_path: Path
) -> None:
    batch = records(600)
    target = ledger(_through(postgres_url, proxy), tmp_path)
    for record in batch[:100]:
        target.emit(record)
    target.flush(timeout=10)
    proxy.cut()
    for record in batch[100:]:
        target.emit(record)
    target.close(timeout=10)
    assert target.stats.spilled == 500
    assert stored(postgres_url) == 100
    with ledger(postgres_url, tmp_path) as again:
        assert again.stats.replayed == 500
    assert sorted(stored_ids(postgres_url)) == sorted(r.record_id for r in batch)
