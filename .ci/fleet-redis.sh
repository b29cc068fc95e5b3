#!/usr/bin/env bash
# --- fleet: Redis for the bus and working-memory tests ---
# Sourced by .ci/run. Installs redis-server (apt) when missing and starts a
# Redis on a free loopback port in a temporary directory, exported as
# AOS_TEST_REDIS_URL. The tests that restart Redis start their own servers
# (redis-server must be on PATH for them). Stopped by fleet_redis_stop.
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null 2>&1; } || true
  fi
fi
# The distribution's service is not wanted: tests start their own servers.
if command -v systemctl >/dev/null 2>&1; then systemctl stop redis-server >/dev/null 2>&1 || true; fi
if command -v redis-server >/dev/null 2>&1; then
  fleet_redis_dir=$(mktemp -d /tmp/aos-ci-redis-XXXXXX)
  fleet_redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$fleet_redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$fleet_redis_dir" \
    --daemonize yes --pidfile "$fleet_redis_dir/redis.pid" --logfile "$fleet_redis_dir/log" >/dev/null
  for _ in $(seq 50); do redis-cli -p "$fleet_redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export AOS_TEST_REDIS_URL="redis://127.0.0.1:$fleet_redis_port/"
  echo "Redis $(redis-server --version | awk '{print $3}') at $AOS_TEST_REDIS_URL"
  # Redis may still be writing its log while it shuts down: wait for the
  # process to go before removing its directory, and never fail the run here.
  fleet_redis_stop() {
    local pid=""
    if [ -f "$fleet_redis_dir/redis.pid" ]; then pid=$(cat "$fleet_redis_dir/redis.pid" 2>/dev/null || true); fi
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$fleet_redis_dir" 2>/dev/null || true
  }
else
  echo "redis-server could not be installed: the Redis tests will fail"
  fleet_redis_stop() { :; }
fi
# --- end fleet ---
