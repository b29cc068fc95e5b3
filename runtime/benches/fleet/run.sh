#!/usr/bin/env bash
# The fleet benchmark (docs/benchmarks.md): steps/s of 1, 2 and 4 `aosc
# worker` processes on one 10k-item fan-out of a zero-latency `sim` model,
# polling PostgreSQL and with Redis Streams dispatch, beside one embedded
# `aosc run` on SQLite. Starts its own PostgreSQL 15 (loopback, fsync=off)
# and redis-server in a temporary directory, and stops them at the end.
#
#   runtime/benches/fleet/run.sh [AOSC] [ROUNDS]      (as root, or as the postgres user)
#
# Environment: ITEMS (10000), CONCURRENCY (`aosc worker --concurrency`, 16),
# WORKERS ("1 2 4"), MODES ("polling redis"). A fleet figure runs from the
# first worker's start to the run's `run.succeeded` in the journal; the
# embedded one is the whole `aosc run` process (check included).
set -euo pipefail
aosc=$(realpath "${1:-target/release/aosc}")
rounds=${2:-1}
n=${ITEMS:-10000}
conc=${CONCURRENCY:-16}
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

tmp=$(as_pg mktemp -d /tmp/aos-fleet-bench-XXXXXX)
chmod 777 "$tmp"
pg_port=$(free_port); redis_port=$(free_port)
as_pg "$pg_bin/initdb" -D "$tmp/pg" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$tmp/pg" -o "-p $pg_port -k $tmp -c listen_addresses=127.0.0.1 -c fsync=off" -l "$tmp/pg.log" -w start >/dev/null
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" --daemonize yes --pidfile "$tmp/redis.pid" >/dev/null
cleanup() {
  as_pg "$pg_bin/pg_ctl" -D "$tmp/pg" -m fast -w stop >/dev/null 2>&1 || true
  [ -f "$tmp/redis.pid" ] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null || true
  sleep 0.3; rm -rf "$tmp"
}
trap cleanup EXIT
psql() { "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -qAt "$@"; }

# The program: bench.py's fan-out (runtime/benches/peers), its items as input.
python3 - "$tmp" "$n" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
open(f"{d}/fan.aos", "w").write(f'''model m = anthropic("claude-haiku-3.5") {{ input: $0.80/M, output: $4.00/M, context: 200000 }}
role executor = [m]
workflow fan(items: List<Int>) -> List<String> {{
  budget: ${max(1000, n // 2)}.00
  max_param_tokens: {8 * n + 100}
  step each: List<String> = for x in items => llm executor("item {{x}}") {{
    max_items: {n}
    max_tokens: 24
  }}
  return each
}}
''')
json.dump({"items": list(range(n))}, open(f"{d}/items.json", "w"))
PY
export AOS_LLM=sim AOS_HOME="$tmp/home"
unset AOS_DATABASE_URL AOS_REDIS_URL
now() { date +%s.%N; }
rate() { python3 -c "import sys; w=float(sys.argv[2])-float(sys.argv[1]); print(f'{w:.2f} s, {$n/w:.0f} steps/s')" "$1" "$2"; }

echo "aosc: $aosc; $n items; worker --concurrency $conc; $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
  rm -rf "$tmp/home"
  unset AOS_DATABASE_URL AOS_REDIS_URL
  t0=$(now); "$aosc" run "$tmp/fan.aos" --inputs-json "$tmp/items.json" --json >/dev/null 2>&1; t1=$(now)
  echo "round $r embedded aosc run (SQLite): $(rate "$t0" "$t1")"
  for mode in ${MODES:-polling redis}; do
    for w in ${WORKERS:-1 2 4}; do
      db="b${r}_${mode}_$w"
      psql -c "CREATE DATABASE $db" postgres
      export AOS_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/$db"
      if [ "$mode" = redis ]; then
        redis-cli -p "$redis_port" FLUSHALL >/dev/null
        export AOS_REDIS_URL="redis://127.0.0.1:$redis_port/"
      else
        unset AOS_REDIS_URL
      fi
      id=$("$aosc" run "$tmp/fan.aos" --inputs-json "$tmp/items.json" --detach 2>/dev/null)
      t0=$(now)
      pids=()
      for i in $(seq "$w"); do "$aosc" worker --concurrency "$conc" 2>"$tmp/w$i.log" & pids+=($!); done
      "$aosc" wait "$id" --timeout 1800 >/dev/null 2>&1
      # The run's end as journaled (`aosc wait` polls every 0.5 s at most,
      # which would round the wall time up by as much).
      t1=$(psql -c "SELECT at_ms / 1000.0 FROM journal WHERE run_id = '$id' AND kind = 'run.succeeded'" "$db")
      kill -TERM "${pids[@]}"; wait "${pids[@]}" || true
      done_items=$(psql -c "SELECT count(*) FROM journal WHERE run_id = '$id' AND kind = 'item.succeeded'" "$db")
      commits=$(cat "$tmp"/w*.log | grep -oE '[0-9]+ commit\(s\)' | awk '{s+=$1} END {print s+0}')
      echo "round $r $mode, $w worker(s): $(rate "$t0" "$t1"), $commits commits, $done_items items succeeded; load: $(cut -d' ' -f1-3 /proc/loadavg)"
      rm -f "$tmp"/w*.log
    done
  done
done
