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
opts=(-p no:locust -q -rfEs --durations=15 --ignore=tests/docker)
workers="${TEST_WORKERS:-2}"
if [[ $# -eq 0 && "$workers" != "0" ]]; then
  # Most live tests wait (traffic phases, fault windows, a browser), so two workers, each with
  # its own stack (tests/conftest.py), take about 55 % of the serial wall time on two cores.
  # A test file stays on one worker; tests marked `alone` read the whole machine's host
  # metrics and run afterwards by themselves.
  echo "==> pytest: $workers workers"
  failed="$(mktemp)"
  if ! PYTEST_FAILED_FILE="$failed" pytest "${opts[@]}" -n "$workers" --dist loadfile \
      -m "not alone"; then
    # A test that failed beside another worker's stack gets one more run on a quiet machine,
    # named here so contention-only failures stay visible; failing again fails the suite.
    # Only those tests (tests/conftest.py lists them): not the whole suite again.
    mapfile -t again < <(sort -u "$failed")
    echo "==> pytest: what failed on $workers workers, once more on one: ${again[*]:-?}"
    if ((${#again[@]})); then
      pytest "${opts[@]}" "${again[@]}" || rc=$?
    else
      rc=1  # failed without a failed test (a collection or internal error)
    fi
  fi
  rm -f "$failed"
  echo "==> pytest: alone"
  pytest "${opts[@]}" -m alone || rc=$?
else
  pytest "${opts[@]}" "$@" || rc=$?
fi
# The whole suite (no arguments, as `make test` and .ci/run call it) includes the docker lane.
if [[ $# -eq 0 || "${WITH_DOCKER:-0}" == "1" ]]; then
  echo "==> docker (make test-docker)"
  bash scripts/test-docker.sh || rc=$?
fi
exit "$rc"
