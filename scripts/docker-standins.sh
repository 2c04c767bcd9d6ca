#!/usr/bin/env bash
# Stand-ins for the pinned upstream base images, for the compose tests only (Docker Hub is
# unreachable here). Each is tagged with the EXACT name docker-compose.vm.yml / stack/Dockerfile
# pin, so the shipped files run unchanged; nothing here is used in a real deployment.
#
#   scripts/docker-standins.sh     # needs DOCKER_HOST (scripts/docker-engine.sh start)
#
# - One Debian bookworm rootfs (debootstrap --variant=minbase, from the mirror apt uses), cached
#   as a tarball keyed by its package list, imported once as workshop-standin/rootfs; each
#   stand-in apt-installs its Debian packages on top (services are never started in builds).
# - python:3.11-slim-bookworm: Debian's python3.11 (+venv), /usr/local/bin/python, and this
#   machine's CA bundle with PIP_CERT (pip inside builds reaches the index only through it).
# - redis:<pin>: Debian's redis-server; the official image builds protected mode off, so the
#   stand-in passes --protected-mode no. /data owned by 999:1000 like the official image.
# - nginx:<pin>: Debian's nginx-light + wget (the health check); temp files moved from
#   /var/lib/nginx to /var/cache/nginx (the compose tmpfs), logs to stdout/stderr.
# - otel/opentelemetry-collector-contrib:<pin>: the ocb-built bin/otelcol-workshop (same
#   version and components) at /otelcol-contrib in a scratch image, USER 10001.
# An image already present with the same recipe hash (label) is not rebuilt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/docker-lib.sh
source "$ROOT/scripts/docker-lib.sh"
if [[ -n "${WORKSHOP_DOCKER_HOST_OVERRIDE:-}" ]]; then export DOCKER_HOST="$WORKSHOP_DOCKER_HOST_OVERRIDE"; fi
STANDINS="$ROOT/tests/docker/standins"
log() { printf 'standins: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

docker version >/dev/null 2>&1 || die "no Docker engine at $DOCKER_HOST (scripts/docker-engine.sh start)"

COMPOSE="$ROOT/docker-compose.vm.yml"
pin() { grep -oE "image: *$1:[^ \"]+" "$COMPOSE" | head -n1 | sed 's/^image: *//'; }
REDIS_IMAGE="$(pin redis)"
NGINX_IMAGE="$(pin nginx)"
COLLECTOR_IMAGE="$(pin otel/opentelemetry-collector-contrib)"
PYTHON_IMAGE="$(sed -n 's/^ARG PYTHON_IMAGE=//p' "$ROOT/stack/Dockerfile")"
[[ -n "$REDIS_IMAGE" && -n "$NGINX_IMAGE" && -n "$COLLECTOR_IMAGE" && -n "$PYTHON_IMAGE" ]] \
  || die "could not read the pinned images from docker-compose.vm.yml / stack/Dockerfile"

# --- the rootfs -------------------------------------------------------------------------
SUITE=bookworm
PACKAGES="ca-certificates"
MIRROR="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)"
MIRROR="${MIRROR:-$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
KEY="$(printf '%s %s %s' "$SUITE" "$PACKAGES" "$MIRROR" | sha256sum | cut -c1-16)"
TARBALL="$WORKSHOP_CACHE/rootfs/$SUITE-minbase-$KEY.tar"
ROOTFS_IMAGE="workshop-standin/rootfs:$KEY"

if [[ ! -s "$TARBALL" ]]; then
  apt_install debootstrap || die "could not install debootstrap"
  log "debootstrap $SUITE (minbase + $PACKAGES) from $MIRROR (~1 min) ..."
  dir="$(mktemp -d)"
  trap 'rm -rf "$dir"' EXIT
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$dir/rootfs" "$MIRROR" \
    >"$dir/debootstrap.log" 2>&1 || { tail -n 20 "$dir/debootstrap.log" >&2; die "debootstrap failed"; }
  # Services are never started inside the rootfs; drop apt lists and caches.
  rm -rf "$dir/rootfs/var/cache/apt/archives/"*.deb "$dir/rootfs/var/lib/apt/lists/"*
  # Like the official Debian images: packages installed in a build never start services.
  printf '#!/bin/sh\nexit 101\n' >"$dir/rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$dir/rootfs/usr/sbin/policy-rc.d"
  mkdir -p "$(dirname "$TARBALL")"
  tar -C "$dir/rootfs" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  rm -rf "$dir"; trap - EXIT
fi
if ! docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1; then
  log "importing $TARBALL as $ROOTFS_IMAGE ..."
  docker import "$TARBALL" "$ROOTFS_IMAGE" >/dev/null
fi

# --- the images -------------------------------------------------------------------------
# build TAG DIR [extra files...]: rebuild only when the recipe (Dockerfile + files) changed.
build() {
  local tag=$1 dir=$2; shift 2
  local hash
  hash="$( (cat "$dir"/*; echo "$ROOTFS_IMAGE"; for f in "$@"; do sha256sum "$f"; done) | sha256sum | cut -c1-16)"
  if [[ "$(docker image inspect -f '{{index .Config.Labels "workshop.standin"}}' "$tag" 2>/dev/null)" == "$hash" ]]; then
    log "$tag up to date"
    return 0
  fi
  local ctx
  ctx="$(mktemp -d)"
  cp -a "$dir/." "$ctx/"
  for f in "$@"; do cp -a "$f" "$ctx/"; done
  log "building stand-in $tag ..."
  docker build -q --build-arg "ROOTFS=$ROOTFS_IMAGE" --label "workshop.standin=$hash" -t "$tag" "$ctx" >/dev/null \
    || { rm -rf "$ctx"; die "building $tag failed"; }
  rm -rf "$ctx"
}

CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[[ -s "$CA_BUNDLE" ]] || die "no CA bundle at $CA_BUNDLE (apt-get install ca-certificates)"
build "$PYTHON_IMAGE" "$STANDINS/python" "$CA_BUNDLE"
build "$REDIS_IMAGE" "$STANDINS/redis"
build "$NGINX_IMAGE" "$STANDINS/nginx"

COLLECTOR_BIN="$ROOT/bin/otelcol-workshop"
if [[ ! -x "$COLLECTOR_BIN" ]]; then
  bash "$ROOT/scripts/build-collector.sh" >&2 || die "building the collector failed"
fi
build "$COLLECTOR_IMAGE" "$STANDINS/collector" "$COLLECTOR_BIN"
log "stand-ins ready: $PYTHON_IMAGE $REDIS_IMAGE $NGINX_IMAGE $COLLECTOR_IMAGE"
