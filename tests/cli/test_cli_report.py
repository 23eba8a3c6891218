"""``qwenkit report`` and ``qwenkit db``: a ledger filled by real calls (the SDK with a SQLite
store against the emulator), reported as a table, JSON (``total.requests``) and CSV; the schema
migrated and shown; a store that cannot be read is one line."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest

from qwenkit.cli import main
from qwenkit.storage._migrate import head_revision
from qwenkit.testing import emulated


def qwenkit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture
def filled(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"

    async def calls() -> None:
        async with emulated(store=url, usage_sinks=[]) as client:
            for _ in range(3):
                await client.with_tags(endpoint="faq").chat("What is Qwen?", max_tokens=20)
            await client.with_tags(endpoint="summarize").chat(
                "Summarise: the sky is blue.", max_tokens=20
            )

    asyncio.run(calls())
    return url


def test_report_as_json_csv_and_table(capsys: pytest.CaptureFixture[str], filled: str) -> None:
    code, out, _ = qwenkit(capsys, "report", "--since", "1h", "--format", "json", "--store", filled)
    assert code == 0
    data = json.loads(out)
    assert data["total"]["requests"] == 4
    assert {row["group"]: row["requests"] for row in data["rows"]} == {"faq": 3, "summarize": 1}
    assert float(data["total"]["cost"]) > 0
    assert data["total"]["latency_p95"] >= data["total"]["latency_p50"] > 0

    code, out, _ = qwenkit(capsys, "report", "--by", "model", "--format", "csv", "--store", filled)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["group"] for row in rows] == ["qwen-plus", "total"]
    assert rows[-1]["requests"] == "4"

    code, out, _ = qwenkit(capsys, "report", "--store", filled)
    assert code == 0
    assert "faq" in out
    assert "summarize" in out
    assert "total" in out


def test_empty_ledger_and_bad_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert qwenkit(capsys, "db", "current", "--store", url)[1].startswith(
        "current: (never migrated)"
    )
    code, out, _ = qwenkit(capsys, "db", "upgrade", "--store", url)
    assert code == 0
    head = head_revision()
    assert f"-> {head}" in out
    assert f"already at revision {head}" in qwenkit(capsys, "db", "upgrade", "--store", url)[1]
    assert f"current: {head}" in qwenkit(capsys, "db", "current", "--store", url)[1]
    code, out, _ = qwenkit(capsys, "report", "--store", url)
    assert code == 0
    assert "no usage recorded between" in out
    assert qwenkit(capsys, "report", "--by", "colour", "--store", url)[0] == 2
    code, _, err = qwenkit(capsys, "report", "--since", "last week", "--store", url)
    assert code == 2
    assert "not a duration" in err


def test_a_store_that_cannot_be_read_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = qwenkit(capsys, "report", "--store", f"sqlite:///{tmp_path / 'new.db'}")
    assert code == 1
    assert "qwenkit db upgrade" in err
    assert "Traceback" not in err
    code, _, err = qwenkit(capsys, "report", "--store", "postgresql://u:pw@127.0.0.1:1/x")
    assert code == 1
    assert "cannot reach the store at postgresql://u:***@127.0.0.1:1/x" in err
