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
exec .venv/bin/python -m pytest "$@"
