#!/usr/bin/env bash
# The test command the README documents and CI runs: lint, then every pytest suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"

echo "==> ruff"
ruff check .
ruff format --check .
echo "==> pytest"
# -p no:locust: installing locust registers a pytest plugin (and gevent) we keep out.
# tests/docker runs in its own lane (scripts/test-docker.sh: engine, stand-ins, compose).
rc=0
pytest -p no:locust -q -rfEs --durations=15 --ignore=tests/docker "$@" || rc=$?
# The whole suite (no arguments, as `make test` and .ci/run call it) includes the docker lane.
if [[ $# -eq 0 || "${WITH_DOCKER:-0}" == "1" ]]; then
  echo "==> docker (make test-docker)"
  bash scripts/test-docker.sh || rc=$?
fi
exit "$rc"
