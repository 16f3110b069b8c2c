#!/usr/bin/env bash
# Command 1 of the README: create the environment, install, generate the sample data once
# (20 symbols x 1,500 business days), and replay it bar by bar through real cycles: a candidate
# every 21 bars, the promotion gate, adaptive risk and paper trading, as a daemon would have run
# them over those years. Prints the summary at the end. Needs only Python 3.11+ and pip.
# Re-running is safe: setup is skipped when already done, an interrupted replay continues, and
# a finished one prints its summary again.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
# Byte-compile the environment and the package once (#18): where PYTHONDONTWRITEBYTECODE is
# set, pip installs no .pyc and Python never caches one, so every process (the CLI, each pool
# worker) would compile scikit-learn, scipy and pandas from source again: ~1.8 CPU-s a process.
# Reading a compiled file needs no write; files that do not compile are never imported.
.venv/bin/python -m compileall -q -j 0 .venv/lib aistock_actors >/dev/null 2>&1 || true
.venv/bin/python -m aistock_actors.cli.sample_data --out data/sample --symbols 20 --bars 1500 --seed 7
if [ -e state/supervisor.json ] && [ ! -e state/replay.json ]; then
  echo "demo: state/ holds an earlier run that is not a replay; move it aside first:" \
    "mv state state.old && mv models models.old" >&2
  exit 2
fi
exec .venv/bin/python supervisor.py configs/demo.json --replay "$@"
