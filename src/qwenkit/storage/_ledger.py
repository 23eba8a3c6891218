"""The usage ledger on SQLite or PostgreSQL: every ``UsageRecord`` appended, off the request path.

``emit`` (the ``UsageSink`` side) only appends the record to an in-memory queue: no I/O, no lock,
a few hundred nanoseconds. One daemon writer thread with a sync SQLAlchemy engine takes what
queued, in batches of ``batch_size``, whenever a batch is full or ``flush_interval`` passed, and
stores each batch in one transaction (``INSERT ... ON CONFLICT (record_id) DO NOTHING``, so a
record replayed twice is stored once).

**Never a silent drop.** When the queue holds ``queue_size`` records, ``emit`` waits up to
``block_timeout`` for room, then appends the record to the spill file (``qwenkit.storage._spill``)
instead; while the writer has not taken anything since such a timeout, further emits spill at
once rather than each waiting again. When the database fails, the writer spills the batch,
logs one warning for the outage, and keeps draining the queue to the spill file, retrying the
database after a backoff (0.25 s doubling to 2 s); when a write succeeds again it logs that the
database is back and replays the spill file. Opening a ledger replays the spill file of earlier
runs. Rows the database refuses as data (a value too long for its column) are isolated by
splitting the batch, logged as errors and kept in the ``.rejected.jsonl`` file; they never block
the rest. ``stats`` counts queued, written, spilled, replayed and dropped records; ``dropped``
grows only when even the spill file cannot be written (a full disk), and that is logged.

**Shutdown.** ``close()`` writes everything queued (or spills it when the database is down) and
stops the writer. At interpreter exit every open ledger is closed (``atexit``). On ``SIGTERM``
the ledgers are flushed first: when the process had Python's default handler, the ledger's
handler closes them and then lets the default action end the process; when the application had
its own handler, the ledgers are flushed and that handler is called. The handler is installed
only from the main thread, and never over an ignored signal. An open ledger stays alive (its
writer thread refers to it) until closed; the per-process registry used at exit and on
``SIGTERM`` holds ledgers weakly, so a closed ledger is not kept.

Why a ``deque`` and not ``queue.Queue``: ``Queue.put`` takes a lock on every call, and a signal
handler that flushes runs on the main thread, possibly between that lock's acquire and release
in an interrupted ``emit``: it would wait forever for a lock its own thread holds. ``deque``
appends are atomic without a lock, so the handler only appends a flush marker and waits for the
writer, which notices within ``flush_interval``. The wait for room when the queue is full polls
(every millisecond) for the same reason.

Why ``COPY`` on PostgreSQL: a batch is copied into a temporary table and moved with one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` (``COPY`` itself cannot skip conflicts). That
costs the client about a third of the CPU of an ``executemany`` of the same rows and is what
takes the ledger past 20,000 records/s. SQLite, in process, takes SQLAlchemy's ``executemany``.

A process forked from one with an open ledger (a pre-forking server) has no writer thread: in the
child the ledger spills everything it is given (replayed on the next start); open one ledger per
worker after the fork instead.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, cast

from sqlalchemy import Connection, exc
from sqlalchemy.dialects import sqlite

from qwenkit._core.usage import UsageRecord
from qwenkit.storage._migrate import upgrade_store
from qwenkit.storage._protocols import LedgerStats
from qwenkit.storage._rows import record_to_row
from qwenkit.storage._schema import usage
from qwenkit.storage._spill import SpillFile, claim, encode_row, rejected_path, replay
from qwenkit.storage._sql import check_reachable, immediate, sync_engine
from qwenkit.storage._urls import StoreURL, default_store_url, parse_store_url

__all__ = ["SQLLedger", "default_spill_path", "open_ledger"]

_log = logging.getLogger(__name__)

Row = dict[str, Any]
_COLUMNS = tuple(column.name for column in usage.columns)
_COLUMN_LIST = ", ".join(_COLUMNS)
_STAGE = "qk_usage_staging"
_CREATE_STAGE = f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (LIKE qk_usage) ON COMMIT DELETE ROWS"
_COPY = f"COPY {_STAGE} ({_COLUMN_LIST}) FROM STDIN"
_MOVE = (
    f"INSERT INTO qk_usage ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM {_STAGE} "
    "ON CONFLICT (record_id) DO NOTHING"
)
_SQLITE_INSERT = sqlite.insert(usage).on_conflict_do_nothing(index_elements=["record_id"])

_BACKOFF_START = 0.25
_BACKOFF_MAX = 2.0
_ROOM_POLL = 0.001
_SIGNAL_TIMEOUT = 5.0
"""Seconds all ledgers together get to flush on ``SIGTERM``."""
_EXIT_TIMEOUT = 10.0
"""Seconds each ledger gets to flush at interpreter exit."""


class _Flush:
    """A marker in the queue: set once every record queued before it is written or spilled."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


def default_spill_path(url: StoreURL) -> Path:
    """Where the ledger of ``url`` spills by default: ``<db>.spill.jsonl`` next to a SQLite
    file; otherwise ``ledger-spill-<hash of the masked URL>.jsonl`` in the folder of the
    default store (``$QWENKIT_HOME``, else the XDG data folder)."""
    if url.backend == "sqlite":
        database = Path(url.sqlite_path).absolute()
        return database.with_name(f"{database.name}.spill.jsonl")
    home = Path(parse_store_url(default_store_url(), part="ledger").sqlite_path).parent
    digest = hashlib.sha256(url.masked.encode()).hexdigest()[:12]
    return home / f"ledger-spill-{digest}.jsonl"


def open_ledger(url: str | StoreURL, **options: Any) -> SQLLedger:
    """Open the ledger at ``url`` (see ``SQLLedger`` for the options)."""
    return SQLLedger(url, **options)


class SQLLedger:
    """The ``Ledger`` on SQLite or PostgreSQL; see the module docstring.

    Opening migrates the database (unless ``migrate=False``), raises ``StorageError`` naming the
    URL when it cannot be reached (after at most the connect timeout), replays the spill file
    and starts the writer. ``spill_path`` defaults to ``default_spill_path(url)``."""

    def __init__(
        self,
        url: str | StoreURL,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        queue_size: int = 10_000,
        block_timeout: float = 0.05,
        spill_path: str | Path | None = None,
        migrate: bool = True,
    ) -> None:
        if batch_size < 1 or queue_size < 1:
            raise ValueError("batch_size and queue_size must be at least 1")
        if flush_interval <= 0 or block_timeout < 0:
            raise ValueError("flush_interval must be positive and block_timeout not negative")
        self.url = parse_store_url(url, part="ledger")
        self.spill_path = Path(spill_path) if spill_path else default_spill_path(self.url)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._queue_size = queue_size
        self._block_timeout = block_timeout
        self._buf: deque[UsageRecord | _Flush] = deque()
        self._wake = threading.Event()
        self._closed = False
        """Emits spill from now on (set by ``close``)."""
        self._stopping = False
        """The writer stops once the queue is empty."""
        self._finished = False
        self._forked = False
        self._congested = False
        self._close_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._written = self._spilled = self._replayed = self._rejected = self._dropped = 0
        self._disk_failing = False
        self._inflight: list[Row] | None = None
        self._outage_since: float | None = None
        self._retry_at = 0.0
        self._backoff = _BACKOFF_START
        self._spill = SpillFile(self.spill_path)
        self._rejects = SpillFile(rejected_path(self.spill_path))
        if migrate:
            upgrade_store(self.url)
        self._engine = sync_engine(self.url, pool_size=1)
        try:
            check_reachable(self._engine, self.url)
            self._replay_spill()
        except BaseException:
            self._engine.dispose()
            raise
        self._thread = threading.Thread(
            target=self._run, name=f"qwenkit-ledger {self.url.masked}", daemon=True
        )
        self._thread.start()
        _register(self)

    # -- the request path -------------------------------------------------------------------

    def emit(self, record: UsageRecord) -> None:
        """Queue ``record`` for the writer (or spill it: queue full past ``block_timeout``, or
        the ledger closed)."""
        buf = self._buf
        if self._closed or (len(buf) >= self._queue_size and not self._room()):
            self._spill_records((record,))
            return
        buf.append(record)
        if len(buf) >= self._batch_size and not self._wake.is_set():
            self._wake.set()
        if self._closed:  # closed between the check and the append: the writer may be gone
            self._drain_to_spill()

    def _room(self) -> bool:
        """Wait up to ``block_timeout`` for the queue to have room; ``False`` when it did not
        (and then further emits do not wait until the writer takes records again)."""
        if self._congested or self._block_timeout <= 0:
            return False
        deadline = time.monotonic() + self._block_timeout
        self._wake.set()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._congested = True
                return False
            time.sleep(min(_ROOM_POLL, remaining))
            if len(self._buf) < self._queue_size:
                return True

    # -- flush, close, stats ----------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record emitted before this call is written (or spilled); ``False``
        when ``timeout`` seconds passed first."""
        if self._closed and not self._thread.is_alive():
            self._drain_to_spill()
            return True
        marker = _Flush()
        self._buf.append(marker)
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
            if marker.done.wait(step):
                return True
            if not self._thread.is_alive():
                self._drain_to_spill()
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def close(self, timeout: float | None = None) -> None:
        """Write everything queued (spill it when the database is down), stop the writer and
        release the connections. Safe to call twice. When the writer is still busy after
        ``timeout`` seconds (a database that hangs), what it holds is spilled as well: a replay
        skips whatever did reach the database."""
        with self._close_lock:
            if self._finished:
                return
            self._closed = True
            self._stopping = True
            self._wake.set()
            if not self._forked:
                self._thread.join(timeout)
            self._finish()

    def _finish(self) -> None:
        if self._thread.is_alive() and not self._forked:
            _log.warning(
                "usage ledger %s: the writer did not finish in time; what it holds goes to %s",
                self.url.masked,
                self.spill_path,
            )
            inflight = self._inflight
            if inflight:
                self._spill_rows(list(inflight))
        elif not self._forked:
            self._engine.dispose()
        self._drain_to_spill()
        self._spill.close()
        self._rejects.close()
        _open_ledgers.discard(self)
        self._finished = True

    @property
    def stats(self) -> LedgerStats:
        return LedgerStats(
            queued=len(self._buf),
            written=self._written,
            spilled=self._spilled,
            replayed=self._replayed,
            dropped=self._dropped,
        )

    @property
    def rejected(self) -> int:
        """Records the database refused as data (kept in the ``.rejected.jsonl`` file)."""
        return self._rejected

    def __enter__(self) -> SQLLedger:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLLedger({self.url.masked!r})"

    # -- signals and forks (no locks: see the module docstring) ------------------------------

    def _close_for_signal(self, deadline: float) -> None:
        self._closed = True
        self._stopping = True  # the writer sees it within flush_interval
        if not self._forked:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            inflight = self._inflight
            if self._thread.is_alive() and inflight:
                self._spill_rows(list(inflight))
        self._drain_to_spill()

    def _flush_for_signal(self, deadline: float) -> None:
        if self._closed or self._forked:
            self._drain_to_spill()
            return
        marker = _Flush()
        self._buf.append(marker)
        marker.done.wait(max(0.0, deadline - time.monotonic()))

    def _after_fork(self) -> None:
        """In a forked child: no writer thread; everything emitted spills."""
        self._forked = True
        self._closed = True
        self._stopping = True
        self._buf.clear()  # the parent's writer stores these
        self._close_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._spill.reset_after_fork()
        self._rejects.reset_after_fork()

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._drain()
            if self._stopping and not self._buf:
                return
            if len(self._buf) < self._batch_size:
                self._wake.wait(self._flush_interval)
                self._wake.clear()

    def _drain(self) -> None:
        """Write (or spill) everything queued, one batch at a time."""
        while self._buf:
            records, markers = self._take(self._batch_size)
            self._congested = False
            try:
                if records:
                    self._write(records)
            except Exception:  # a bug must not stop the writer nor lose the batch
                _log.exception("usage ledger %s: writing a batch failed", self.url.masked)
                self._spill_records(records)
            finally:
                for marker in markers:
                    marker.done.set()

    def _take(self, limit: int | None) -> tuple[list[UsageRecord], list[_Flush]]:
        records: list[UsageRecord] = []
        markers: list[_Flush] = []
        buf = self._buf
        try:
            while limit is None or len(records) < limit:
                item = buf.popleft()
                if isinstance(item, _Flush):
                    markers.append(item)
                else:
                    records.append(item)
        except IndexError:
            pass
        return records, markers

    def _write(self, records: list[UsageRecord]) -> None:
        rows = self._rows(records)
        if not rows:
            return
        self._inflight = rows
        try:
            if self._outage_since is not None and time.monotonic() < self._retry_at:
                self._spill_rows(rows)
                return
            try:
                stored = self._insert(rows)
            except Exception as error:
                self._on_failure(error)
                self._spill_rows(rows)
                return
            self._written += stored
            if self._outage_since is not None:
                self._on_recovery()
        finally:
            self._inflight = None

    def _on_failure(self, error: BaseException) -> None:
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
            self._backoff = _BACKOFF_START
            _log.warning(
                "usage ledger %s: cannot write to the database (%s); records go to %s until "
                "it is back",
                self.url.masked,
                _first_line(error),
                self.spill_path,
            )
        else:
            self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
        self._retry_at = now + self._backoff

    def _on_recovery(self) -> None:
        assert self._outage_since is not None
        down = time.monotonic() - self._outage_since
        self._outage_since = None
        _log.info(
            "usage ledger %s: the database is back after %.1f s; replaying %s",
            self.url.masked,
            down,
            self.spill_path,
        )
        self._replay_spill()

    # -- the database -----------------------------------------------------------------------

    def _insert(self, rows: list[Row]) -> int:
        """Store ``rows``; rows the database refuses as data are isolated by halving the batch
        and set aside. Returns how many were stored (or already there); raises on any other
        failure (the database is unreachable, the table is missing...)."""
        try:
            if self.url.backend == "postgresql":
                self._insert_postgres(rows)
            else:
                with immediate(self._engine).begin() as conn:
                    conn.execute(_SQLITE_INSERT, rows)
        except Exception as error:
            if not _refused(error):
                raise
            if len(rows) == 1:
                self._reject([encode_row(rows[0])], _first_line(error), rows[0]["record_id"])
                return 0
            half = len(rows) // 2
            return self._insert(rows[:half]) + self._insert(rows[half:])
        return len(rows)

    def _insert_postgres(self, rows: list[Row]) -> None:
        import psycopg

        with self._engine.begin() as conn:
            raw = cast("psycopg.Connection[Any]", _dbapi(conn))
            try:
                with raw.cursor() as cursor:
                    cursor.execute(_CREATE_STAGE)
                    with cursor.copy(_COPY) as copy:
                        for row in rows:
                            copy.write_row([row[name] for name in _COLUMNS])
                    cursor.execute(_MOVE)
            except psycopg.Error:
                if raw.closed or raw.broken:
                    conn.invalidate()  # raw driver errors bypass SQLAlchemy's own detection
                raise

    def _replay_spill(self) -> None:
        """Replay the spill file (and unfinished earlier replays) into the database."""
        for path in claim(self.spill_path):
            try:
                result = replay(
                    path, self._insert, batch_size=self._batch_size, rejected=self._rejects
                )
            except Exception as error:
                _log.info("usage ledger %s: %s is kept for a later replay", self.url.masked, path)
                self._on_failure(error)
                return
            self._replayed += result.replayed
            if result.bad:
                more = "" if result.bad == len(result.bad_lines) else ", ..."
                _log.warning(
                    "usage ledger %s: skipped %d unreadable lines of the spill file %s (line "
                    "%s%s; first: %s); they are kept in %s",
                    self.url.masked,
                    result.bad,
                    self.spill_path,
                    ", ".join(map(str, result.bad_lines)),
                    more,
                    result.reasons[0],
                    self._rejects.path,
                )
            if result.replayed:
                _log.info(
                    "usage ledger %s: replayed %d records from %s",
                    self.url.masked,
                    result.replayed,
                    path,
                )

    # -- spilling ---------------------------------------------------------------------------

    def _rows(self, records: Iterable[UsageRecord]) -> list[Row]:
        rows: list[Row] = []
        for record in records:
            try:
                rows.append(record_to_row(record))
            except Exception as error:  # not a UsageRecord: kept for a human, never stored
                self._reject([encode_row({"unreadable": repr(record)})], _first_line(error), None)
        return rows

    def _spill_records(self, records: Iterable[UsageRecord]) -> None:
        self._spill_rows(self._rows(records))

    def _spill_rows(self, rows: list[Row]) -> None:
        if not rows:
            return
        try:
            self._spill.append(encode_row(row) for row in rows)
        except Exception as error:
            with self._count_lock:
                self._dropped += len(rows)
                first = not self._disk_failing
                self._disk_failing = True
            if first:
                _log.error(
                    "usage ledger %s: cannot write the spill file %s (%s): usage records are "
                    "being lost (stats.dropped counts them)",
                    self.url.masked,
                    self.spill_path,
                    _first_line(error),
                )
            return
        with self._count_lock:
            self._spilled += len(rows)
            recovered = self._disk_failing
            self._disk_failing = False
        if recovered:
            _log.info("usage ledger %s: the spill file is writable again", self.url.masked)

    def _drain_to_spill(self) -> None:
        records, markers = self._take(None)
        self._spill_records(records)
        for marker in markers:
            marker.done.set()

    def _reject(self, lines: list[str], reason: str, record_id: str | None) -> None:
        with self._count_lock:
            self._rejected += len(lines)
        _log.error(
            "usage ledger %s: the database refused record %s (%s); it is kept in %s",
            self.url.masked,
            record_id or "(not a usage record)",
            reason,
            self._rejects.path,
        )
        try:
            self._rejects.append(lines)
        except OSError as error:
            with self._count_lock:
                self._dropped += len(lines)
            _log.error(
                "usage ledger %s: cannot write %s (%s): %d refused records lost",
                self.url.masked,
                self._rejects.path,
                error,
                len(lines),
            )


def _dbapi(conn: Connection) -> Any:
    return conn.connection.dbapi_connection


def _refused(error: BaseException) -> bool:
    """Whether the database (or its driver) refused the rows themselves (a value too long, a
    NUL byte, a missing required value, a type it cannot take), as opposed to failing as a
    service: refused rows are set aside, a failing service makes the batch spill."""
    if isinstance(error, (exc.DataError, exc.IntegrityError)):
        return True
    orig = error.orig if isinstance(error, exc.StatementError) else error
    state = getattr(orig, "sqlstate", None)
    if state:
        return str(state)[:2] in ("22", "23")  # data exception, integrity constraint violation
    if isinstance(orig, (TypeError, ValueError, sqlite3.ProgrammingError, sqlite3.InterfaceError)):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(
        orig, (psycopg.DataError, psycopg.ProgrammingError, psycopg.IntegrityError)
    )


def _first_line(error: BaseException) -> str:
    message = str(getattr(error, "orig", None) or error).strip().splitlines()
    return message[0] if message else type(error).__name__


# -- the per-process registry: exit, SIGTERM, fork ----------------------------------------------


class _Hooks:
    """What this process installed, once."""

    exit_registered = False
    sigterm_decided = False
    lock = threading.Lock()


_open_ledgers: weakref.WeakSet[SQLLedger] = weakref.WeakSet()


def _register(ledger: SQLLedger) -> None:
    _open_ledgers.add(ledger)
    with _Hooks.lock:
        if not _Hooks.exit_registered:
            atexit.register(_close_all_at_exit)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_after_fork_in_child)
            _Hooks.exit_registered = True
        if not _Hooks.sigterm_decided and threading.current_thread() is threading.main_thread():
            _install_sigterm()
            _Hooks.sigterm_decided = True


def _install_sigterm() -> None:
    current = signal.getsignal(signal.SIGTERM)
    if current is signal.SIG_DFL:
        previous: Callable[[int, FrameType | None], Any] | None = None
    elif callable(current):
        previous = current
    else:  # ignored, or set outside Python: not ours to change
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        deadline = time.monotonic() + _SIGNAL_TIMEOUT
        ledgers = list(_open_ledgers)
        if previous is None:
            for ledger in ledgers:
                ledger._close_for_signal(deadline)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)  # end as the default action would have
        else:
            for ledger in ledgers:
                ledger._flush_for_signal(deadline)
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def _close_all_at_exit() -> None:
    for ledger in list(_open_ledgers):
        ledger.close(_EXIT_TIMEOUT)


def _after_fork_in_child() -> None:
    _Hooks.lock = threading.Lock()  # the parent's may have been held at the fork
    for ledger in list(_open_ledgers):
        ledger._after_fork()
