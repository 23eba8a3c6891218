"""Spill files: where a ledger's usage records go when they cannot go to the database now.

A record spills when the ledger's queue stays full past its short wait, when a database write
fails (the server is down), or when it is emitted after ``close()``. The file holds one JSON
object per line: the ``qk_usage`` row of the record (``record_to_row``) with the timestamp in
ISO 8601 and the cost as a decimal string, so it round-trips exactly. On the next start (and
when the database comes back) the file is *claimed* and replayed: valid lines are inserted with
``ON CONFLICT (record_id) DO NOTHING``, so replaying the same lines twice never duplicates a
record, and the file is deleted only after every line reached the database.

Several processes may share one spill file (gateway replicas on one host, a CLI next to a
server). Appends and claims take an exclusive ``flock`` on the file: an append checks, under the
lock, that its open file is still the one at the path (a claim renames it away) and reopens
otherwise; a claim renames the file to a name of its own under the same lock. So an append never
lands in a file that was already read, and of two processes starting at once only one replays a
given file. A claimed file whose replay did not finish (the database failed, the process died)
keeps its ``.replay-*`` name and is claimed again by the next start. (On Windows there is no
``flock``; a file another process holds open cannot be renamed there, which a claim takes as
"busy, next time".)

Lines that cannot be replayed (not JSON, not a usage record, a truncated last line after a
crash) are skipped, reported with their line numbers, and copied as they were to the
``.rejected.jsonl`` file beside the spill file, so nothing is deleted unseen.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import IO, Any

from pydantic import TypeAdapter, ValidationError

from qwenkit._core.usage import UsageRecord
from qwenkit.storage._rows import record_to_row

if sys.platform != "win32":
    import fcntl

__all__ = [
    "ReplayResult",
    "SpillFile",
    "claim",
    "decode_line",
    "encode_row",
    "rejected_path",
    "replay",
]

_CLAIM_MARK = ".replay-"
_REPORTED_LINES = 20
"""How many bad line numbers a replay lists (it counts them all)."""


def encode_row(row: Mapping[str, Any]) -> str:
    """One spill line (with its newline) for a ``qk_usage`` row."""
    return json.dumps(row, default=_json_value, ensure_ascii=False, separators=(",", ":")) + "\n"


def _json_value(value: object) -> str:
    """Timestamps as ISO 8601; ``Decimal`` (and anything else JSON lacks) as its string."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


@cache
def _record_adapter() -> TypeAdapter[UsageRecord]:
    return TypeAdapter(UsageRecord)


def decode_line(line: str) -> dict[str, Any]:
    """The ``qk_usage`` row of a spill line; ``ValueError`` saying why when it is not one.

    The line is checked against ``UsageRecord`` (pydantic validates the dataclass: types,
    ``status`` values, the ISO timestamp, the decimal cost), and a line without a ``record_id``
    is refused, since a replay could not then tell whether the record is already stored."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object but {type(data).__name__}")
    if not isinstance(data.get("record_id"), str) or not data["record_id"]:
        raise ValueError("no record_id")
    if "ts" not in data:
        raise ValueError("no ts")
    data["timestamp"] = data.pop("ts")
    try:
        record = _record_adapter().validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"not a usage record ({where}: {first['msg']})") from None
    if record.timestamp.tzinfo is None:  # written by hand, or by an older qwenkit: UTC
        record = replace(record, timestamp=record.timestamp.replace(tzinfo=timezone.utc))
    return record_to_row(record)


def rejected_path(spill: Path) -> Path:
    """The file beside ``spill`` that keeps lines and rows the database refused."""
    stem = spill.name.removesuffix(".jsonl")
    return spill.with_name(f"{stem}.rejected.jsonl")


class SpillFile:
    """Appends lines to one spill file, safely against other threads and processes.

    The file (and its folder) is created on the first append; the handle stays open between
    appends and is reopened when a claim renamed the file away. After ``close()`` each append
    opens and closes the file (a ledger closed for good may still be handed records)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._handle: IO[str] | None = None
        self._closed = False

    def append(self, lines: Iterable[str]) -> None:
        """Write ``lines`` (each ending in a newline) in one write; ``OSError`` when it fails."""
        text = "".join(lines)
        if not text:
            return
        with self._lock:
            while True:
                handle = self._open()
                _lock(handle)
                try:
                    current = _is_current(handle, self.path)
                    if current:
                        handle.write(text)
                        handle.flush()
                finally:
                    _unlock(handle)
                    if self._closed:
                        self._close_handle()
                if current:
                    return
                self._close_handle()

    def close(self) -> None:
        """Close the handle; later appends open and close the file each time."""
        with self._lock:
            self._closed = True
            self._close_handle()

    def reset_after_fork(self) -> None:
        """A fresh lock in a forked child (the parent's may have been held at the fork)."""
        self._lock = threading.RLock()

    def _open(self) -> IO[str]:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115
        return self._handle

    def _close_handle(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            handle.close()


def _lock(handle: IO[Any]) -> None:
    if sys.platform != "win32":
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def _unlock(handle: IO[Any]) -> None:
    if sys.platform != "win32":
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _is_current(handle: IO[Any], path: Path) -> bool:
    """Whether the open ``handle`` is still the file at ``path`` (not renamed by a claim)."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(handle.fileno())
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)


def claim(path: Path) -> list[Path]:
    """Take the spill file at ``path`` and any unfinished earlier claims of it for replay:
    each is renamed (under its lock) to a name of this process. Returns the claimed files,
    oldest claims first; empty when there is nothing to replay."""
    if not path.parent.is_dir():
        return []
    candidates = sorted(path.parent.glob(f"{path.name}{_CLAIM_MARK}*"))
    candidates.append(path)
    claimed: list[Path] = []
    for candidate in candidates:
        target = path.with_name(f"{path.name}{_CLAIM_MARK}{os.getpid()}-{uuid.uuid4().hex[:12]}")
        try:
            with open(candidate, "rb") as handle:
                _lock(handle)
                if not _is_current(handle, candidate):
                    continue  # renamed by another claim while we waited for the lock
                os.rename(candidate, target)
        except (FileNotFoundError, PermissionError):
            continue  # claimed by another process first (or held open, on Windows)
        claimed.append(target)
    return claimed


@dataclass
class ReplayResult:
    """What one replay did: ``replayed`` valid lines sent to the database, ``bad`` line
    numbers (1-based) skipped, the first ``_REPORTED_LINES`` of them in ``bad_lines``."""

    replayed: int = 0
    bad: int = 0
    bad_lines: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def replay(
    path: Path,
    insert: Callable[[list[dict[str, Any]]], object],
    *,
    batch_size: int,
    rejected: SpillFile,
) -> ReplayResult:
    """Send the valid lines of the claimed file ``path`` to ``insert`` in batches, copy the bad
    ones to ``rejected``, then delete ``path``. An exception from ``insert`` (the database
    failed) propagates and leaves ``path`` in place for the next claim."""
    result = ReplayResult()
    batch: list[dict[str, Any]] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.decode("utf-8", errors="replace")
            if not text.strip():
                continue
            try:
                batch.append(decode_line(text))
            except ValueError as exc:
                result.bad += 1
                if len(result.bad_lines) < _REPORTED_LINES:
                    result.bad_lines.append(number)
                    result.reasons.append(str(exc))
                rejected.append([text if text.endswith("\n") else text + "\n"])
                continue
            if len(batch) >= batch_size:
                insert(batch)
                result.replayed += len(batch)
                batch = []
    if batch:
        insert(batch)
        result.replayed += len(batch)
    path.unlink(missing_ok=True)  # missing: another start claimed it meanwhile, finished first
    return result
