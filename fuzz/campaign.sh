#!/bin/sh
# A fuzzing campaign: every target in turn for SECONDS each (default 600),
# under `nice -n 19`, one at a time, on the corpora in fuzz/corpus/TARGET
# (seeded by .ci/fuzz-smoke's seeding step). Logs to fuzz/logs/TARGET.log;
# crashes land in fuzz/artifacts/TARGET/. Build first with fuzz/build.sh.
set -u
cd "$(dirname "$0")"
seconds="${SECONDS_PER_TARGET:-600}"
mkdir -p logs
for t in ${TARGETS:-check fmt parse ir}; do
  mkdir -p "corpus/$t" "artifacts/$t"
  start=$(date +%s)
  nice -n 19 "target/x86_64-unknown-linux-gnu/release/$t" "corpus/$t" \
    -artifact_prefix="artifacts/$t/" -max_total_time="$seconds" -timeout=60 -max_len=8192 \
    -rss_limit_mb=2048 -print_final_stats=1 >"logs/$t.log" 2>&1
  echo "$t exit=$? seconds=$(( $(date +%s) - start ))" >> logs/summary.txt
done
