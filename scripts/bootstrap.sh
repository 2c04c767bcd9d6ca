#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: system packages, the Python environment in .venv/,
# and the collector binary. Safe to run again; each step skips what is already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Debian packages the native stack and the tests use.
PACKAGES=(redis-server nginx-light chromium openssl shellcheck)
COMMANDS=(redis-server nginx chromium openssl shellcheck)

missing=()
for i in "${!COMMANDS[@]}"; do
  if ! command -v "${COMMANDS[$i]}" >/dev/null 2>&1 && [ ! -x "/usr/sbin/${COMMANDS[$i]}" ]; then
    missing+=("${PACKAGES[$i]}")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "==> installing ${missing[*]} (sudo)"
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing system packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install ${missing[*]}" >&2
    # redis-server is required; the others only enable optional parts (nginx, browser tests).
    if ! command -v redis-server >/dev/null 2>&1; then exit 2; fi
  fi
fi

# Python environment from the lock (requirements/native.lock: every package pinned and
# hash-checked, `make lock` regenerates it), reinstalled only when pyproject.toml or the
# lock changes.
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Python >= 3.11 is required (found: $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml requirements/native.lock | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing Python dependencies into .venv (requirements/native.lock)"
  # --no-deps: the lock is the whole closure (uv resolved it), so pip installs it as written
  # and resolves nothing. Resolving, pip looks up a dependency's extra (pip-audit's
  # `CacheControl[filecache]>=0.13.0`) on the index, finds a newer release than the lock's
  # and refuses the lock in hash-checking mode. `pip check` then proves the closure complete.
  .venv/bin/python -m pip install -q --no-deps --require-hashes -r requirements/native.lock
  .venv/bin/python -m pip check
  # The kit itself, editable; its dependencies are the lock's (already there).
  .venv/bin/python -m pip install -q --no-deps -e .
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# The collector, built from the ocb manifest and cached by its hash.
bash scripts/build-collector.sh

# JupyterHub's proxy (configurable-http-proxy, npm) for the room: into the user's cache.
if command -v npm >/dev/null 2>&1; then
  .venv/bin/python -c "from labs.runtime.hub import chp_binary, install_chp
if chp_binary() is None:
    print('==> installing configurable-http-proxy (npm) for the room hub')
    install_chp()"
else
  echo "bootstrap: npm not found — \`workshop room hub\` will need Node.js and npm" >&2
fi
