#!/usr/bin/env bash
# `make test-docker`: the compose deployment run for real (tests/docker/).
#
#   1. a private Docker engine (scripts/docker-engine.sh; installs docker.io when missing)
#   2. docker compose v2 built from source (scripts/build-compose.sh, cached by version)
#   3. stand-ins for the pinned base images (scripts/docker-standins.sh, cached)
#   4. pytest tests/docker (one compose project for the whole lane)
#   5. the engine is stopped again, whatever happened
# No engine = a failure with the reason, never a skip. Extra arguments go to pytest.
# WORKSHOP_DOCKER_KEEP_ENGINE=1 leaves the engine running (for a second, warm run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
start=$(date +%s)

started=0
# vfs stores every layer as a full copy: each rebuild leaves the previous image dangling
# (~0.4-0.7 GB apiece). Dropping them keeps repeated runs on one machine from filling its
# disk (72 GB after a few dozen runs here); the tagged images stay as the next run's cache.
prune() {
  docker image prune -f >/dev/null 2>&1 || true
  docker builder prune -f >/dev/null 2>&1 || true
}
NEED_GB=8
cleanup() {
  # An engine that died under the lane (a panic, the OOM killer) says why only in its own log.
  if [[ "$started" == "1" && -n "${DOCKER_LOG:-}" ]] \
    && ! bash "$ROOT/scripts/docker-engine.sh" status >/dev/null 2>&1; then
    echo "test-docker: the Docker engine is gone; the end of $DOCKER_LOG:" >&2
    tail -n 40 "$DOCKER_LOG" >&2 || true
  elif [[ -n "${DOCKER_HOST:-}" ]]; then
    prune
  fi
  if [[ "$started" == "1" && "${WORKSHOP_DOCKER_KEEP_ENGINE:-0}" != "1" ]]; then
    bash "$ROOT/scripts/docker-engine.sh" stop || true
  fi
  echo "==> docker lane: $(( $(date +%s) - start )) s"
}
trap cleanup EXIT

echo "==> docker engine"
if ! bash "$ROOT/scripts/docker-engine.sh" status >/dev/null 2>&1; then
  started=1
fi
eval "$(bash "$ROOT/scripts/docker-engine.sh" start)"
export DOCKER_HOST
prune
# shellcheck source=scripts/docker-lib.sh
source "$ROOT/scripts/docker-lib.sh"
free_gb=$(( $(df --output=avail -k "$DOCKER_DATA_ROOT" | tail -n1) / 1024 / 1024 ))
if (( free_gb < NEED_GB )); then
  echo "test-docker: ${free_gb} GB free under $DOCKER_DATA_ROOT; the lane needs about ${NEED_GB} GB" \
    "(vfs copies every layer). Free space, or remove unused images:" \
    "DOCKER_HOST=$DOCKER_HOST docker image prune -a" >&2
  exit 1
fi
echo "==> docker compose"
WORKSHOP_COMPOSE_BIN="$(bash "$ROOT/scripts/build-compose.sh" | tail -n1)"
export WORKSHOP_COMPOSE_BIN
echo "==> stand-in base images"
bash "$ROOT/scripts/docker-standins.sh"
echo "==> pytest tests/docker"
pytest -p no:locust -q -rfEs --durations=10 tests/docker "$@"
