#!/usr/bin/env bash
# Command 2 of the README: create the environment, install with test extras, run every test.
# Extra arguments go to pytest (e.g. ./test.sh -k supervisor). pytest exits non-zero when no
# test ran (exit code 5), and this script passes that exit code on.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev,dask]"
# Byte-compile the environment and the package once (#18): where PYTHONDONTWRITEBYTECODE is
# set, pip installs no .pyc and Python never caches one, so every process (the CLI, each pool
# worker) would compile scikit-learn, scipy and pandas from source again: ~1.8 CPU-s a process.
# Reading a compiled file needs no write; files that do not compile are never imported.
.venv/bin/python -m compileall -q -j 0 .venv/lib aistock_actors >/dev/null 2>&1 || true
exec .venv/bin/python -m pytest "$@"
