"""SQLAlchemy engines for a store URL: the sync engine (the ledger's writer thread, migrations,
the CLI) and the async one (budgets, cache and keys on the request path), set up the same way.

SQLite: every connection gets ``journal_mode=WAL`` (readers never block the writer),
``busy_timeout`` (a writer waits for another instead of failing with "database is locked") and
``synchronous=NORMAL`` (durable at each checkpoint; safe with WAL). pysqlite's own transaction
handling is switched off and ``BEGIN`` emitted by SQLAlchemy's ``begin`` event, so a transaction
that writes can start as ``BEGIN IMMEDIATE`` (``engine.execution_options(sqlite_begin=
"IMMEDIATE")``): it takes the write lock first, and two of them never deadlock on an upgrade.
This is the recipe of SQLAlchemy's SQLite dialect documentation ("Serializable isolation /
Savepoints / Transactional DDL").

PostgreSQL: psycopg 3 with a connect timeout, so an unreachable server is an error after a few
seconds, never a hang.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from qwenkit._exceptions import StorageError
from qwenkit.storage._urls import StoreURL

__all__ = [
    "CONNECT_TIMEOUT",
    "BackgroundCheckpoints",
    "Engines",
    "LoopEngines",
    "ThreadedEngines",
    "async_engine",
    "check_reachable",
    "immediate",
    "storage_errors",
    "sync_engine",
]

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a database server before a store is declared unreachable."""
BUSY_TIMEOUT_MS = 5000
_log = logging.getLogger(__name__)
_T = TypeVar("_T")


def sync_engine(url: StoreURL, *, pool_size: int = 5) -> Engine:
    """A sync engine for ``url`` (SQLite or PostgreSQL)."""
    url.require_driver()
    if url.backend == "sqlite":
        _sqlite_dir(url)
        engine = create_engine(url.sqlalchemy(asyncio=False), connect_args={"timeout": 5.0})
        _sqlite_events(engine)
        return engine
    return create_engine(
        url.sqlalchemy(asyncio=False),
        pool_size=pool_size,
        pool_pre_ping=True,
        connect_args={"connect_timeout": int(CONNECT_TIMEOUT)},
    )


def async_engine(url: StoreURL, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine for ``url``: aiosqlite or psycopg 3 (async). Bound to the event loop that
    first uses it; open one per loop."""
    url.require_driver()
    if url.backend == "sqlite":
        _sqlite_dir(url)
        engine = create_async_engine(url.sqlalchemy(asyncio=True), connect_args={"timeout": 5.0})
        _sqlite_events(engine.sync_engine)
        return engine
    return create_async_engine(
        url.sqlalchemy(asyncio=True),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"connect_timeout": int(CONNECT_TIMEOUT)},
    )


def immediate(engine: Engine) -> Engine:
    """``engine`` whose transactions start with ``BEGIN IMMEDIATE`` on SQLite (same pool)."""
    return engine.execution_options(sqlite_begin="IMMEDIATE")


def check_reachable(engine: Engine, url: StoreURL) -> None:
    """Connect once; a ``StorageError`` naming the (masked) URL when that fails."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise StorageError(
            f"cannot reach the store at {url.masked}: {_first_line(exc)}", url=url.masked
        ) from exc


class Engines(NamedTuple):
    """The engine of one event loop: ``read`` for lookups, ``write`` for transactions that write
    (on SQLite they start with ``BEGIN IMMEDIATE``: the write lock first, no upgrade deadlock)."""

    read: AsyncEngine
    write: AsyncEngine


class LoopEngines:
    """One async engine of ``url`` per event loop, created on first use in each."""

    def __init__(self, url: StoreURL, *, pool_size: int = 10) -> None:
        self.url = url
        self._pool_size = pool_size
        self._engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Engines] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> Engines:
        """The engines of the running event loop."""
        loop = asyncio.get_running_loop()
        engines = self._engines.get(loop)
        if engines is None:
            engine = async_engine(self.url, pool_size=self._pool_size)
            engines = Engines(engine, engine.execution_options(sqlite_begin="IMMEDIATE"))
            self._engines[loop] = engines
        return engines

    async def aclose(self) -> None:
        """Close the connections of every loop that is still running (a closed loop's
        connections cannot be closed any more: they went with it)."""
        current = asyncio.get_running_loop()
        opened, self._engines = list(self._engines.items()), weakref.WeakKeyDictionary()
        for loop, engines in opened:
            if loop is current:
                await engines.read.dispose()
            elif loop.is_running():
                done = asyncio.run_coroutine_threadsafe(engines.read.dispose(), loop)
                await asyncio.wrap_future(done)


class ThreadedEngines:
    """Sync engines of ``url`` whose transactions run in worker threads, for the request path.

    SQLAlchemy's asyncio adapters cost a round of greenlet and thread switches per statement
    (about 0.6 ms per statement with aiosqlite on a small machine); one thread hop per
    transaction, with the sync driver inside, costs a fraction of that. ``read`` is for lookups,
    ``write`` for transactions that write (``BEGIN IMMEDIATE`` on SQLite). At most ``threads``
    transactions of one event loop run at once (the pool's size; SQLite: 1, it has one writer
    anyway and a point lookup is faster than a second thread). Not bound to an event loop."""

    def __init__(self, url: StoreURL, *, threads: int = 10) -> None:
        self.url = url
        self.threads = 1 if url.backend == "sqlite" else threads
        self.read = sync_engine(url, pool_size=self.threads)
        self.write = immediate(self.read)
        self._limiters: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, anyio.CapacityLimiter
        ] = weakref.WeakKeyDictionary()

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` in a worker thread of this loop's limiter."""
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self.threads)
        return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.read.dispose)
        self._limiters.clear()


@asynccontextmanager
async def storage_errors(url: StoreURL, what: str) -> AsyncIterator[None]:
    """Turn a database failure inside the block into a ``StorageError`` naming ``url``."""
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        raise StorageError(
            f"the {what} at {url.masked} failed: {_first_line(exc)}", url=url.masked
        ) from exc


def _first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return message[0] if message else type(exc).__name__


def _sqlite_dir(url: StoreURL) -> None:
    parent = Path(url.sqlite_path).parent
    if not parent.exists():
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the directory of {url.masked}: {exc}", url=url.masked
            ) from exc


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


class BackgroundCheckpoints:
    """WAL checkpoints of one SQLite file, off the request path.

    A connection with ``wal_autocheckpoint=0`` never checkpoints on commit (a checkpoint syncs
    the WAL and the database file to disk: milliseconds, which would land on one request in a
    few hundred). Its owner calls ``committed()`` after each commit instead; every ``every``-th
    call starts a checkpoint on a connection of its own in a daemon thread (one at a time).

    The checkpoint runs in two passes. The first, ``PASSIVE``, takes no lock: it copies and
    syncs what the WAL holds while the owner goes on writing. But SQLite reuses the WAL from its
    start only once a checkpoint has caught up with the last commit, which a writer that never
    pauses prevents: the WAL would grow without bound. So the second pass runs with the owner's
    ``writer`` lock held (the lock its transactions take): it copies only the few commits made
    during the first pass, and the next commit starts the WAL over. A transaction that finds the
    lock held meanwhile runs in a worker thread, off the event loop (see ``_budgets_sql``)."""

    def __init__(self, path: str, *, writer: threading.Lock, every: int = 250) -> None:
        self.path = path
        self.every = every
        self.writer = writer
        self._commits = 0
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        self._commits += 1
        if self._commits < self.every:
            return
        thread = self._thread
        if thread is not None and thread.is_alive():
            return  # the previous one still runs: the next commit asks again
        self._commits = 0
        self._thread = threading.Thread(
            target=self._checkpoint, name="qwenkit-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Wait (up to ``timeout`` s) for a running checkpoint."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _checkpoint(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                with self.writer:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:  # the next one retries; the WAL only grows meanwhile
            _log.debug("WAL checkpoint of %s failed: %s", self.path, exc)
