"""Batch jobs: thousands of chat requests from a JSONL file, resumable, within limits.

``read_items`` parses the input (``qwenkit.batch._input``), ``ResultFile`` appends the output
rows and knows which lines are done (``qwenkit.batch._output``), ``run_batch`` drives the
requests through an ``AsyncQwen`` under an adaptive concurrency limit, client-side rate limits
and a budget (``qwenkit.batch._runner``, ``qwenkit.batch._limits``). ``qwenkit batch run`` is the
command over them (``qwenkit.cli._batch``); see ``docs/batch.md``.
"""

from __future__ import annotations

from qwenkit.batch._input import BadLine, Item, read_items
from qwenkit.batch._limits import AIMDLimit, TokenBucket
from qwenkit.batch._output import ResultFile
from qwenkit.batch._runner import BatchOptions, BatchRun, Progress, Summary, run_batch

__all__ = [
    "AIMDLimit",
    "BadLine",
    "BatchOptions",
    "BatchRun",
    "Item",
    "Progress",
    "ResultFile",
    "Summary",
    "TokenBucket",
    "read_items",
    "run_batch",
]
