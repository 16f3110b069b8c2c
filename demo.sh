#!/usr/bin/env bash
# Command 1 of the README: create the environment, install, and run one cycle on sample data.
# Needs only Python 3.11+ and pip. Re-running is safe: setup is skipped when already done,
# sample data is generated only once, and each run adds a cycle (ingesting only new bars).
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
.venv/bin/python -m aistock_actors.cli.sample_data --out data/sample --symbols 20 --bars 1500 --seed 7
exec .venv/bin/python supervisor.py configs/demo.json --run-once "$@"
