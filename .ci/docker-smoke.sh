#!/usr/bin/env bash
# The Docker deployment, end to end: builds the images locally (no registry:
# debootstrap + docker import, then Debian packages), brings
# cli/docker/compose.yaml up with docker-compose (PostgreSQL, Redis,
# aosc serve), creates a token in the serve container, runs
# examples/hello.aos through the API and checks that the run succeeded,
# that its journal is in PostgreSQL and its events on the Redis stream.
# Everything is torn down afterwards (containers, volumes, a dockerd this
# script started). Usage: .ci/docker-smoke.sh [AOSC_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/aosc}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need dockerd || ! need docker-compose || ! need debootstrap; then
  if [ "$(id -u)" = 0 ] && need apt-get; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose debootstrap >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose debootstrap >/dev/null; }
  fi
fi
need docker && need docker-compose && need debootstrap || { echo "docker.io, docker-compose and debootstrap are needed" >&2; exit 1; }

work=$(mktemp -d /tmp/aos-ci-docker-XXXXXX)
started_dockerd=
project=aosci$$
cleanup() {
  if [ -n "${compose_up:-}" ]; then
    docker-compose -p "$project" -f cli/docker/compose.yaml down -v >/dev/null 2>&1 || true
  fi
  if [ -n "$started_dockerd" ]; then
    kill "$(cat "$work/dockerd.pid")" 2>/dev/null || true
    sleep 2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if ! docker info >/dev/null 2>&1; then
  # Our own engine on a private socket; its images persist in
  # /var/lib/aos-ci-docker so a rerun on the same machine reuses them.
  dockerd --host "unix://$work/docker.sock" --data-root /var/lib/aos-ci-docker --exec-root "$work/exec" \
    --pidfile "$work/dockerd.pid" >"$work/dockerd.log" 2>&1 &
  started_dockerd=1
  export DOCKER_HOST="unix://$work/docker.sock"
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start:" >&2; tail -20 "$work/dockerd.log" >&2; exit 1; }
fi

t0=$(date +%s)
cli/docker/build-images.sh "$bin" 2>&1 | grep -v -i -e buildx -e deprecated -e '^$' || { echo "building the images failed" >&2; exit 1; }
echo "images ready in $(( $(date +%s) - t0 )) s"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export AOS_PORT=$port AOS_PG_PASSWORD="ci-$RANDOM$RANDOM"
compose() { docker-compose -p "$project" -f cli/docker/compose.yaml "$@"; }
compose_up=1
compose up -d >/dev/null 2>&1 || { compose logs --tail 30; exit 1; }

base="http://127.0.0.1:$port"
for _ in $(seq 1 90); do curl -fsS "$base/v1/openapi.json" >/dev/null 2>&1 && break; sleep 1; done
curl -fsS "$base/v1/openapi.json" >/dev/null || { echo "aosc serve did not answer on $base" >&2; compose logs --tail 40; exit 1; }

token=$(compose exec -T serve aosc token create --name ci --trust admin | tail -n 1 | tr -d '\r')
case "$token" in aos_*) ;; *) echo "no token from aosc token create: $token" >&2; exit 1 ;; esac

# Without a token the API refuses.
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/runs")
[ "$code" = 401 ] || { echo "GET /v1/runs without a token gave $code, expected 401" >&2; exit 1; }

body=$(python3 -c 'import json,sys; print(json.dumps({"source": open("examples/hello.aos").read(), "inputs": {"name": "Ada"}}))')
run_id=$(curl -fsS -X POST -H "Authorization: Bearer $token" -H 'content-type: application/json' "$base/v1/runs" -d "$body" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
status=
for _ in $(seq 1 60); do
  status=$(curl -fsS -H "Authorization: Bearer $token" "$base/v1/runs/$run_id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  [ "$status" = succeeded ] && break
  sleep 1
done
[ "$status" = succeeded ] || { echo "run $run_id ended $status" >&2; compose logs --tail 40 serve; exit 1; }

rows=$(compose exec -T postgres psql -U aos -tAc "SELECT count(*) FROM journal WHERE run_id = '$run_id'" | tr -d '\r ')
[ "${rows:-0}" -gt 0 ] || { echo "no journal rows for $run_id in PostgreSQL" >&2; exit 1; }
events=$(compose exec -T redis redis-cli XLEN "aos:run:$run_id" | tr -d '\r ')
[ "${events:-0}" -gt 0 ] || { echo "no events for $run_id on the Redis stream" >&2; exit 1; }
echo "docker: run $run_id succeeded through the API in the compose deployment ($rows journal rows in PostgreSQL, $events events on Redis)"
