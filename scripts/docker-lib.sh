# shellcheck shell=bash disable=SC2034
# Shared by scripts/docker-*.sh (sourced): where the Docker test harness keeps things.
# Everything heavy lives OUTSIDE the repo, keyed by version, so a second run on the same machine
# reuses it: /var/cache/workshop-kit when writable (root), else ~/.cache/workshop-kit.
if [[ -z "${WORKSHOP_CACHE:-}" ]]; then
  if mkdir -p /var/cache/workshop-kit 2>/dev/null && [[ -w /var/cache/workshop-kit ]]; then
    WORKSHOP_CACHE=/var/cache/workshop-kit
  else
    WORKSHOP_CACHE="$HOME/.cache/workshop-kit"
  fi
fi
export WORKSHOP_CACHE
# The engine's persistent state (images survive between runs) and its runtime files. The
# exec-root and socket live under /run (short paths: unix socket paths are limited to 108 bytes).
DOCKER_DATA_ROOT="${WORKSHOP_DOCKER_DATA_ROOT:-$WORKSHOP_CACHE/dockerd/data-root}"
DOCKER_RUN_DIR="${WORKSHOP_DOCKER_RUN_DIR:-/run/workshop-kit-docker}"
DOCKER_SOCKET="$DOCKER_RUN_DIR/docker.sock"
DOCKER_PIDFILE="$DOCKER_RUN_DIR/dockerd.pid"
DOCKER_LOG="$WORKSHOP_CACHE/dockerd/dockerd.log"
export DOCKER_HOST="unix://$DOCKER_SOCKET"

# apt-get with the shared lock timeout (other engineers may hold the lock).
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ "$(id -u)" != "0" ]]; then
    echo "error: Debian packages missing: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    return 1
  fi
  echo "installing Debian packages: ${missing[*]} ..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
    --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get -o DPkg::Lock::Timeout=600 update -q >&2 \
         && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
              --no-install-recommends "${missing[@]}" >&2; }
}
