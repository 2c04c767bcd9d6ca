#!/usr/bin/env bash
# `make lock`: pin every Python dependency, with hashes, for the three environments the kit
# installs. pyproject.toml keeps the ranges; these files are what actually gets installed:
#
#   requirements/native.lock   scripts/bootstrap.sh (.venv: every extra)
#   requirements/runtime.lock  stack/Dockerfile's runtime image ([project].dependencies)
#   requirements/lab.lock      stack/Dockerfile's lab image (+ the labs and load extras)
#
# The image and the checkout get the same versions: runtime and lab are resolved under the
# native lock as constraints. Resolved for CPython 3.11.2 on x86-64 Linux, the oldest Python
# the kit runs on (Debian bookworm's python3.11, the image's stand-in base), so one lock fits
# both. The current pins are kept unless pyproject.toml's ranges exclude them (uv reads an
# existing output file as preferences); `make lock UPGRADE=1` moves every pin to the newest.
# tests/deploy/test_lock.py checks the locks against pyproject.toml offline.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
UV="${UV:-.venv/bin/uv}"
[ -x "$UV" ] || { echo "lock: $UV not found — run \`make bootstrap\` (uv is in the dev extra)" >&2; exit 2; }
common=(--quiet --generate-hashes --python-version 3.11.2 --python-platform x86_64-unknown-linux-gnu
        --custom-compile-command "make lock")
[ "${UPGRADE:-0}" = "1" ] && common+=(--upgrade)
"$UV" pip compile pyproject.toml "${common[@]}" \
  --extra load --extra labs --extra room --extra dev -o requirements/native.lock
"$UV" pip compile pyproject.toml "${common[@]}" \
  -c requirements/native.lock -o requirements/runtime.lock
"$UV" pip compile pyproject.toml "${common[@]}" \
  --extra labs --extra load -c requirements/native.lock -o requirements/lab.lock
wc -l requirements/*.lock
