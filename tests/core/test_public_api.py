"""The public door: ``qwenkit.__all__`` and the package namespace agree (cf. httpx)."""

from __future__ import annotations

import subprocess
import sys

import qwenkit


def test_all_names_exist_and_nothing_public_is_missing() -> None:
    exported = set(qwenkit.__all__)
    assert len(exported) == len(qwenkit.__all__), "duplicates in __all__"
    for name in exported:
        assert hasattr(qwenkit, name), name
    public = {
        name
        for name, value in vars(qwenkit).items()
        if not name.startswith("_") and not isinstance(value, type(sys))  # modules are subpackages
    }
    assert public == exported - {"__version__"}


def test_every_exception_is_a_qwen_error() -> None:
    for name in qwenkit.__all__:
        value = getattr(qwenkit, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, qwenkit.QwenError), name


def test_import_is_light() -> None:
    # Importing qwenkit must not load a tokenizer vocabulary, the emulator, the CLI or a store's
    # drivers. (rich is
    # not in the list: httpx imports its own CLI, and with it rich, whenever rich is installed.)
    code = (
        "import sys, qwenkit, qwenkit.storage; "
        "heavy = [m for m in ('tiktoken', 'starlette', 'uvicorn', 'typer', 'qwenkit.emulator', 'qwenkit.cli', "
        "'sqlalchemy', 'alembic', 'aiosqlite', 'psycopg', 'redis') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
