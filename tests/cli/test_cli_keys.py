"""``qwenkit keys``: create prints the key once (alone on stdout; ``--json`` exactly key and id),
list never shows it, revoke says what happened; bad values are one line and exit 2, an unknown id
exits 1. Run through the real entry point (``qwenkit.cli.main``) against a SQLite store in
``tmp_path``."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from qwenkit.cli import main
from qwenkit.storage import KeyInfo, Limits
from qwenkit.storage._keys import open_keys

KEY = re.compile(r"qk-[0-9a-f]{12}-[A-Za-z0-9_-]{43}")


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keys.db'}"


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def qwenkit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``qwenkit ARGS`` in process: exit code, stdout, stderr."""
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def verify(store: str, key: str) -> KeyInfo | None:
    async def check() -> KeyInfo | None:
        keys = open_keys(store, migrate=False)
        try:
            return await keys.verify(key)
        finally:
            await keys.aclose()

    return asyncio.run(check())


def test_create_list_revoke(capsys: pytest.CaptureFixture[str], store: str) -> None:
    code, out, err = qwenkit(
        capsys, "keys", "create", "billing", "--env", "prod", "--daily-budget", "2.50",
        "--rpm", "60", "--tpm", "100000", "--models", "qwen-plus, qwen-max", "--store", store,
    )  # fmt: skip
    assert code == 0, err
    key = out.strip()
    assert KEY.fullmatch(key)  # the key alone on stdout
    assert "only time" in err
    key_id = key.split("-")[1]
    assert key_id in err
    info = verify(store, key)
    assert info is not None
    assert info.limits == Limits(Decimal("2.5"), 60, 100_000)
    assert info.models == ("qwen-plus", "qwen-max")

    code, out, err = qwenkit(capsys, "keys", "list", "--store", store)
    assert code == 0, err
    secret = key.split("-", 2)[2]
    assert secret not in out
    for shown in (key_id, "billing", "prod", "2.5/day", "60 rpm", "100000 tpm", "qwen-plus"):
        assert shown in out
    assert "never" not in out  # last used: the verify above

    code, out, err = qwenkit(capsys, "keys", "revoke", key_id, "--store", store)
    assert code == 0, err
    assert f"Revoked key {key_id}" in out
    assert verify(store, key) is None
    code, out, _ = qwenkit(capsys, "keys", "revoke", key_id, "--store", store)
    assert code == 0
    assert "already revoked" in out
    code, out, _ = qwenkit(capsys, "keys", "list", "--store", store)
    assert key_id not in out
    code, out, _ = qwenkit(capsys, "keys", "list", "--all", "--store", store)
    assert key_id in out
    assert "revoked" in out


def test_json_output(capsys: pytest.CaptureFixture[str], store: str) -> None:
    code, out, err = qwenkit(capsys, "keys", "create", "ci", "--json", "--store", store)
    assert code == 0, err
    created = json.loads(out)
    assert set(created) == {"key", "id"}
    assert KEY.fullmatch(created["key"])
    assert created["key"].split("-")[1] == created["id"]

    code, out, err = qwenkit(capsys, "keys", "list", "--json", "--store", store)
    assert code == 0, err
    listed = json.loads(out)["keys"]
    assert [row["id"] for row in listed] == [created["id"]]
    assert listed[0]["models"] is None
    assert listed[0]["last_used_at"] is None
    assert listed[0]["revoked_at"] is None
    secret = created["key"].split("-", 2)[2]
    assert secret not in out
    assert "hash" not in listed[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--rpm", "0"), "'--rpm'"),
        (("--tpm", "-1"), "'--tpm'"),
        (("--daily-budget", "-5"), "positive"),
        (("--daily-budget", "five"), "not an amount"),
        (("--models", "a,,b"), "'--models'"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], store: str, args: tuple[str, ...], needle: str
) -> None:
    code, out, err = qwenkit(capsys, "keys", "create", "x", *args, "--store", store)
    assert code == 2
    assert out == ""
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_an_empty_name_exits_2(capsys: pytest.CaptureFixture[str], store: str) -> None:
    code, out, err = qwenkit(capsys, "keys", "create", " ", "--store", store)
    assert code == 2
    assert "name" in err
    assert out == ""


def test_revoking_an_unknown_id_exits_1(capsys: pytest.CaptureFixture[str], store: str) -> None:
    code, _, err = qwenkit(capsys, "keys", "revoke", "0123456789ab", "--store", store)
    assert code == 1
    assert "no key with id '0123456789ab'" in err


def test_a_redis_store_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = qwenkit(capsys, "keys", "list", "--store", "redis://127.0.0.1:6379/0")
    assert code == 1
    assert "keys store needs" in err


def test_a_key_carries_its_reasoning_policy(capsys: pytest.CaptureFixture[str], store: str) -> None:
    code, out, err = qwenkit(
        capsys, "keys", "create", "debug", "--reasoning", "pass", "--store", store
    )
    assert code == 0, err
    info = verify(store, out.strip())
    assert info is not None
    assert info.reasoning == "pass"
    code, out, err = qwenkit(capsys, "keys", "create", "x", "--reasoning", "show", "--store", store)
    assert code == 2
    assert "reasoning must be one of strip, pass, log" in err


def test_a_key_carries_its_max_tokens_cap(capsys: pytest.CaptureFixture[str], store: str) -> None:
    code, out, err = qwenkit(
        capsys, "keys", "create", "summaries", "--max-tokens", "256", "--store", store
    )
    assert code == 0, err
    assert "max_tokens 256" in err
    info = verify(store, out.strip())
    assert info is not None
    assert info.max_tokens == 256
    code, out, _ = qwenkit(capsys, "keys", "list", "--json", "--store", store)
    assert [row["max_tokens"] for row in json.loads(out)["keys"]] == [256]
    code, _, err = qwenkit(capsys, "keys", "create", "x", "--max-tokens", "0", "--store", store)
    assert code == 2
    assert "--max-tokens" in err
