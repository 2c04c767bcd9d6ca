#!/usr/bin/env bash
# Rebuild every notebooks/*.ipynb from its paired jupytext script (outputs stripped).
# The scripts themselves are generated from labs/specs: `python -m labs.guides notebooks`.
set -euo pipefail
cd "$(dirname "$0")/.."
for py in notebooks/*.py; do
  .venv/bin/jupytext --quiet --to ipynb --output "${py%.py}.ipynb" "$py"
done
echo "notebooks stripped and in sync with their .py pairs"
