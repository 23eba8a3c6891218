"""Input files for the batch tests: ``write_input`` writes ``count`` plain lines whose prompt
carries the line's id (``<<doc-00001>>``), so the emulator's request log says which line a
request was for.

Not a test module: imported by name (``from batch_lines import write_input``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["write_input"]


def write_input(path: Path, count: int, **params: Any) -> list[str]:
    """``count`` lines ``doc-00000``... with ``params`` (``max_tokens=8``...); their ids."""
    ids = [f"doc-{number:05d}" for number in range(count)]
    with path.open("w") as handle:
        for ident in ids:
            line = {"id": ident, "messages": [{"role": "user", "content": f"<<{ident}>>"}]}
            handle.write(json.dumps({**line, **params}) + "\n")
    return ids
