#!/usr/bin/env bash
# Builds the base image `aos/debian-base:bookworm` locally, without an image
# registry: debootstrap a minimal Debian from Debian's package mirror, then
# `docker import` the tree. The Dockerfile beside this script builds on it.
#   sudo cli/docker/build-base.sh
set -euo pipefail
suite=${SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
image=${IMAGE:-aos/debian-base:$suite}
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image exists"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 2; }
root=$(mktemp -d /tmp/aos-base-XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=ca-certificates,python3,bubblewrap "$suite" "$root" "$mirror"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$image"
echo "built $image"
