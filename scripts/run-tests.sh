#!/usr/bin/env bash
# The test command the README documents and CI runs: lint, then every pytest suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"

echo "==> ruff"
ruff check .
echo "==> pytest"
# -p no:locust: installing locust registers a pytest plugin (and gevent) we keep out.
exec pytest -p no:locust -q -rfEs --durations=15 "$@"
