"""The output of a batch: an append-only JSONL file of rows in the OpenAI batch output shape.

Each row is ``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error":
null, "usage", "cost"}`` or, for a failure, ``"response": null, "error": {"code", "message"}``.
Rows are written and flushed one by one (a killed process loses none it wrote) and ``fsync``'ed
every ``sync_every`` rows and on close (a crashed machine loses at most the last batch).

Opening an existing file reads the ``custom_id`` of every row (``done``) so a rerun skips them; a
torn last line (a crash in the middle of a write) is cut off, a bad line elsewhere is an error.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from qwenkit._exceptions import DataError

__all__ = ["ResultFile", "error_row", "success_row"]


def success_row(
    custom_id: str, body: dict[str, Any], request_id: str | None, usage: Any, cost: str | None
) -> dict[str, Any]:
    """A row of a request that was answered."""
    response = {"status_code": 200, "request_id": request_id, "body": body}
    return {
        "id": _row_id(), "custom_id": custom_id, "response": response, "error": None,
        "usage": usage, "cost": cost,
    }  # fmt: skip


def error_row(custom_id: str, code: str, message: str, **extra: Any) -> dict[str, Any]:
    """A row of a request that failed (or of a line that could not be sent)."""
    error = {"code": code, "message": message, **extra}
    return {
        "id": _row_id(), "custom_id": custom_id, "response": None, "error": error,
        "usage": None, "cost": None,
    }  # fmt: skip


def _row_id() -> str:
    return f"batch_req_{uuid.uuid4().hex}"


class ResultFile:
    """The output file, opened for appending; ``done`` holds the ``custom_id``s already there."""

    def __init__(self, path: str | Path, *, sync_every: int = 50) -> None:
        self.path = Path(path)
        self.sync_every = sync_every
        self.truncated = 0
        """Bytes of a torn last line cut off when the file was opened."""
        self.done: set[str] = self._recover()
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._unsynced = 0

    def _recover(self) -> set[str]:
        if not self.path.exists():
            return set()
        data = self.path.read_bytes()
        good = data.rfind(b"\n") + 1
        lines = data[:good].split(b"\n")[:-1]
        done: set[str] = set()
        for number, raw in enumerate(lines, start=1):
            try:
                done.add(str(json.loads(raw)["custom_id"]))
            except (ValueError, KeyError, TypeError):
                if number < len(lines):
                    raise DataError(f"{self.path}: line {number} is not a result row") from None
                good -= len(raw) + 1  # a last line cut short by a crash: drop it
        if good < len(data):
            self.truncated = len(data) - good
            with open(self.path, "r+b") as handle:
                handle.truncate(good)
                os.fsync(handle.fileno())
        return done

    def write(self, row: dict[str, Any]) -> None:
        """Append one row (flushed to the OS at once; synced to disk every ``sync_every``)."""
        self._handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        self._handle.flush()
        self.done.add(str(row["custom_id"]))
        self._unsynced += 1
        if self._unsynced >= self.sync_every:
            self.sync()

    def sync(self) -> None:
        if self._unsynced:
            os.fsync(self._handle.fileno())
            self._unsynced = 0

    def close(self) -> None:
        if not self._handle.closed:
            self.sync()
            self._handle.close()

    def __enter__(self) -> ResultFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
