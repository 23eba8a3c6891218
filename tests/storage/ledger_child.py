"""A child process of the ledger's process tests (``test_ledger_processes.py``).

``python ledger_child.py run URL SPILL``: opens a ledger, prints ``ready``, then emits records at
5,000/s until it is killed, printing how many it has emitted after every 250.

``python ledger_child.py burst URL SPILL COUNT [own-handler]``: emits ``COUNT`` records at
5,000/s, prints ``emitted COUNT`` and sleeps until it is signalled. With ``own-handler`` the
process installs its own ``SIGTERM`` handler (before opening the ledger) that prints
``own handler`` and exits with status 3.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from types import FrameType

from qwenkit import UsageRecord
from qwenkit.storage._ledger import SQLLedger

BASE = UsageRecord(
    timestamp=datetime.now(timezone.utc), request_id=None, model="qwen-turbo", task="classify",
    endpoint="tickets", key_id="k1", region="ap-southeast-1", stream=False, prompt_tokens=300,
    completion_tokens=5, cached_tokens=0, cache_creation_tokens=0, reasoning_tokens=0,
    cost=Decimal("0.000015"), currency="USD", latency_s=0.2, ttft_s=None, status="ok",
    http_status=200, error_code=None, cache_hit=False, attempts=1, finish_reason="stop",
)  # fmt: skip
RATE = 5000.0


def emit(ledger: SQLLedger, count: int | None, report_every: int | None) -> int:
    start, index = time.monotonic(), 0
    while count is None or index < count:
        ahead = start + index / RATE - time.monotonic()
        if ahead > 0.01:
            time.sleep(ahead)
        ledger.emit(replace(BASE, record_id=f"{index:032x}"))
        index += 1
        if report_every and index % report_every == 0:
            print(index, flush=True)
    return index


def own_handler(signum: int, frame: FrameType | None) -> None:
    print("own handler", flush=True)
    sys.exit(3)


def main() -> None:
    mode, url, spill = sys.argv[1:4]
    if mode == "burst" and sys.argv[5:] == ["own-handler"]:
        signal.signal(signal.SIGTERM, own_handler)
    ledger = SQLLedger(url, spill_path=spill, migrate=False)
    print("ready", flush=True)
    if mode == "run":
        emit(ledger, None, report_every=250)
    else:
        count = emit(ledger, int(sys.argv[4]), report_every=None)
        print(f"emitted {count}", flush=True)
        while True:
            time.sleep(1)


if __name__ == "__main__":
    main()
