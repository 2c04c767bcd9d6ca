#!/usr/bin/env bash
# Builds the kit's images one at a time, then `up -d` needs no --build:
#
#   scripts/compose-build.sh docker compose -f docker-compose.vm.yml [-f ...] [--profile lab]
#
# Why not `docker compose build` or `up --build`: compose starts one build per service at once,
# and builds that share the Dockerfile's stages crash Debian bookworm's dockerd 20.10.24 (its
# vendored BuildKit: `panic: ... solver.(*sharedOp).CalcSlowCache` in solver/jobs.go, seen in
# our CI; the checksum race is fixed in later BuildKit). One build per image, in order, never
# shares a solve: the kit image (target runtime) first, then the lab image (target lab) on its
# cache. Every service with a `build:` uses one of these two images (tests/unit checks it).
set -euo pipefail
BUILDERS=(api-gateway jupyter)
if (($# == 0)); then
  echo "usage: $0 <compose command and its -f/-p/--profile flags>" >&2
  exit 2
fi
services="$("$@" config --services)"
for svc in "${BUILDERS[@]}"; do
  if grep -qx "$svc" <<<"$services"; then
    echo "==> building the image of $svc" >&2
    "$@" build "$svc"
  fi
done
