#!/usr/bin/env bash
# Create .venv/ in the project root and install the project (editable) with its test extras.
# Safe to re-run. Uses only PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
# This machine sets PYTHONDONTWRITEBYTECODE=1; without .pyc files `import mlflow` is ~3x slower.
# The project's own modules too: each job, MLflow helper and test process imports ~70 of them.
.venv/bin/python -m compileall -q -j 2 .venv/lib >/dev/null 2>&1 || true
.venv/bin/python -m compileall -q -j 2 gamma baselines >/dev/null 2>&1 || true
# Compile the cost-model kernel and the guard's busiest-PE bound once (numba caches them next to
# the sources).
.venv/bin/python -c "import gamma.costmodel.warmup as w; w.warm_up()"
.venv/bin/python -c "import gamma.objectives.pe_bound as b; b.warm_up()"
echo "installed into $(pwd)/.venv"
