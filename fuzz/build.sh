#!/bin/sh
# Builds the fuzz targets the way `cargo fuzz build` does (libFuzzer's
# coverage instrumentation, debug assertions, `--cfg fuzzing`), for machines
# without cargo-fuzz installed. Usage: fuzz/build.sh [TARGET...]
set -eu
cd "$(dirname "$0")"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
args=""
for t in "$@"; do args="$args --bin $t"; done
exec cargo +nightly build --release --target x86_64-unknown-linux-gnu $args
