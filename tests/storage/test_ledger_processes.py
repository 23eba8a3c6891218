"""The ledger in a process that ends: SIGKILL loses at most the flush window and leaves the
database intact; SIGTERM (with Python's default handler or the application's own) loses nothing.

Each test runs ``ledger_child.py`` in a real child process against a real SQLite file or
PostgreSQL database."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from qwenkit.storage import parse_store_url
from qwenkit.storage._schema import usage
from qwenkit.storage._sql import sync_engine

CHILD = Path(__file__).with_name("ledger_child.py")
RATE = 5000
FLUSH_INTERVAL = 0.2
BATCH_SIZE = 500


def child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(CHILD), *args], stdout=subprocess.PIPE, text=True)


def read_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the child ended early with status {process.wait(10)}"
    return line.strip()


def stored(url: str) -> int:
    engine = sync_engine(parse_store_url(url, part="ledger"))
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(usage)).scalar_one())
    finally:
        engine.dispose()


def migrated(url: str) -> str:
    from qwenkit.storage import upgrade_store

    upgrade_store(url)
    return url


def test_sigkill_loses_at_most_the_flush_window_and_the_database_is_intact(
    sql_url: str, tmp_path: Path
) -> None:
    spill = tmp_path / "spill.jsonl"
    with child("run", migrated(sql_url), str(spill)) as process:
        assert read_line(process) == "ready"
        emitted = 0
        while emitted < 2 * RATE:  # two seconds of traffic
            emitted = int(read_line(process))
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
    rows = stored(sql_url)
    lost_at_most = RATE * FLUSH_INTERVAL + BATCH_SIZE
    assert emitted - lost_at_most <= rows
    if sql_url.startswith("sqlite"):
        database = parse_store_url(sql_url, part="ledger").sqlite_path
        with sqlite3.connect(database) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not spill.exists()  # nothing needed to spill: the database kept up


@pytest.mark.parametrize("handler", ["default", "own-handler"])
def test_sigterm_flushes_every_record_before_the_process_ends(
    sql_url: str, tmp_path: Path, handler: str
) -> None:
    spill = tmp_path / "spill.jsonl"
    extra = [handler] if handler == "own-handler" else []
    with child("burst", migrated(sql_url), str(spill), "3000", *extra) as process:
        assert read_line(process) == "ready"
        assert read_line(process) == "emitted 3000"
        process.send_signal(signal.SIGTERM)  # the last records are still queued
        if handler == "own-handler":
            assert read_line(process) == "own handler"
            assert process.wait(15) == 3
        else:
            assert process.wait(15) == -signal.SIGTERM
    assert stored(sql_url) == 3000
    assert not spill.exists()
