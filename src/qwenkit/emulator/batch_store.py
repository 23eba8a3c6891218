"""The files and batches of the OpenAI-compatible Batch API, held by one ``EmulatorState``.

A ``StoredFile`` is an uploaded (``purpose="batch"``) or produced (``"batch_output"``) file with
its bytes; a ``StoredBatch`` is the batch object as the routes answer it plus the task that
answers its lines (``routes_batches``). ``clear()`` cancels every running batch and forgets all.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatchStore", "StoredBatch", "StoredFile"]


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "file", "bytes": len(self.content),
            "created_at": self.created_at, "filename": self.filename, "purpose": self.purpose,
        }  # fmt: skip


@dataclass
class StoredBatch:
    data: dict[str, Any]
    """The batch object, as answered."""
    task: asyncio.Task[None] | None = None
    output: list[dict[str, Any]] = field(default_factory=list)
    """Output lines of the requests answered so far."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    """Error-file lines of the requests that failed so far."""

    @property
    def id(self) -> str:
        return str(self.data["id"])


class BatchStore:
    """Files and batches by id (in memory, for the life of the app or until ``clear``)."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, StoredBatch] = {}

    def add_file(self, filename: str, purpose: str, content: bytes) -> StoredFile:
        stored = StoredFile(f"file-batch-{uuid.uuid4().hex}", filename, purpose, content)
        self.files[stored.id] = stored
        return stored

    def add_batch(self, data: dict[str, Any]) -> StoredBatch:
        data["id"] = f"batch_{uuid.uuid4()}"
        stored = StoredBatch(data)
        self.batches[stored.id] = stored
        return stored

    def clear(self) -> None:
        for batch in self.batches.values():
            if batch.task is not None and not batch.task.done():
                batch.task.cancel()
        self.batches.clear()
        self.files.clear()
