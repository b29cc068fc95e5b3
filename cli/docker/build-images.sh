#!/usr/bin/env bash
# Builds the three images the compose file uses, locally, with no image
# registry: aos/debian-base (debootstrap, see build-base.sh), aos/services
# (PostgreSQL 15 and Redis from Debian's packages) and aos/aosc (the given
# aosc binary on the base image).
#   cli/docker/build-images.sh [AOSC_BINARY]     (default target/release/aosc)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:-$repo/target/release/aosc}
[ -x "$bin" ] || { echo "no aosc binary at $bin: run cargo build --release -p aosc first" >&2; exit 2; }
"$here/build-base.sh"
ctx=$(mktemp -d /tmp/aos-docker-ctx-XXXXXX)
trap 'rm -rf "$ctx"' EXIT
if ! docker image inspect aos/services:bookworm >/dev/null 2>&1; then
  cp "$here/services.Dockerfile" "$here/aos-postgres" "$ctx/"
  docker build -q -f "$ctx/services.Dockerfile" -t aos/services:bookworm "$ctx" >/dev/null
  echo "built aos/services:bookworm"
  rm -rf "${ctx:?}"/*
fi
# Debug symbols stay outside the image.
strip -o "$ctx/aosc" "$bin" 2>/dev/null || cp "$bin" "$ctx/aosc"
cp -r "$repo/examples" "$ctx/examples"
cp "$here/Dockerfile" "$ctx/Dockerfile"
docker build -q -t aos/aosc:latest "$ctx" >/dev/null
echo "built aos/aosc:latest from $bin"
