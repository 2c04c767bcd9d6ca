#!/usr/bin/env bash
# A private Docker engine for the compose tests (tests/docker/), on machines without one.
#
#   scripts/docker-engine.sh start    # installs docker.io if missing, starts dockerd, prints
#                                     # `export DOCKER_HOST=...` on stdout
#   scripts/docker-engine.sh stop     # stops the dockerd this script started (by its pid)
#   scripts/docker-engine.sh status
#
# dockerd runs with the vfs storage driver (works on any filesystem, no overlay or fuse needed)
# and its own data-root / exec-root / socket / pidfile, so it never touches a system engine.
# The data-root is cached (scripts/docker-lib.sh) so images survive between runs.
# It runs in its own mount namespace with `/` made rshared: the collector's `/` -> /hostfs bind
# uses `propagation: rslave`, which the kernel refuses on a private mount.
# A machine where no engine can start is an ERROR (exit 1, with the reason), never a skip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/docker-lib.sh
source "$ROOT/scripts/docker-lib.sh"
log() { printf 'docker-engine: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

running_pid() {
  [[ -f "$DOCKER_PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$DOCKER_PIDFILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null \
    && echo "$pid"
}

engine_ok() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start() {
  [[ "$(id -u)" == "0" ]] || die "the test engine needs root (dockerd, iptables, mount namespaces); run as root"
  apt_install docker.io iptables || die "could not install docker.io"
  command -v dockerd >/dev/null || die "dockerd not found after installing docker.io"
  command -v unshare >/dev/null || die "unshare (util-linux) not found"
  if pid="$(running_pid)" && engine_ok; then
    log "already running (pid $pid, $DOCKER_HOST)"
    echo "export DOCKER_HOST=$DOCKER_HOST"
    return 0
  fi
  mkdir -p "$DOCKER_DATA_ROOT" "$DOCKER_RUN_DIR/exec" "$(dirname "$DOCKER_LOG")"
  rm -f "$DOCKER_SOCKET" "$DOCKER_PIDFILE"
  # Bridge networking needs forwarding; dockerd sets it too, but fails less obscurely this way.
  sysctl -qw net.ipv4.ip_forward=1 2>/dev/null || true
  log "starting dockerd (vfs, data-root $DOCKER_DATA_ROOT, log $DOCKER_LOG) ..."
  # exec chain: unshare -> sh -> dockerd keeps one pid (the one dockerd writes to its pidfile).
  setsid unshare --mount sh -c 'mount --make-rshared / && exec "$@"' dockerd \
    dockerd --storage-driver=vfs \
      --data-root="$DOCKER_DATA_ROOT" \
      --exec-root="$DOCKER_RUN_DIR/exec" \
      --pidfile="$DOCKER_PIDFILE" \
      -H "unix://$DOCKER_SOCKET" \
      --group docker \
      --containerd-namespace=workshop-kit --containerd-plugins-namespace=workshop-kit-plugins \
      >>"$DOCKER_LOG" 2>&1 </dev/null &
  local spawned=$!
  for _ in $(seq 1 120); do
    if engine_ok; then
      log "engine $(docker version --format '{{.Server.Version}}') ready at $DOCKER_HOST (pid $(cat "$DOCKER_PIDFILE" 2>/dev/null || echo "$spawned"))"
      echo "export DOCKER_HOST=$DOCKER_HOST"
      return 0
    fi
    kill -0 "$spawned" 2>/dev/null || break
    sleep 0.5
  done
  log "dockerd did not come up; last lines of $DOCKER_LOG:"
  tail -n 25 "$DOCKER_LOG" >&2 || true
  kill "$spawned" 2>/dev/null || true
  die "no Docker engine could start on this machine (see the log lines above: typical causes are no root, no iptables/nf_tables, or no mount namespaces in this container)"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    log "not running"
    return 0
  fi
  log "stopping dockerd (pid $pid) ..."
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { log "stopped"; rm -f "$DOCKER_PIDFILE"; return 0; }
    sleep 0.5
  done
  log "dockerd did not stop in 30 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

status() {
  if pid="$(running_pid)" && engine_ok; then
    echo "running (pid $pid, $DOCKER_HOST, data-root $DOCKER_DATA_ROOT)"
  else
    echo "not running"; return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
