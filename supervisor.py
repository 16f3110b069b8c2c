"""Thin entry point: ``python supervisor.py CONFIG --run-once | --daemon | --kill | ...``."""

from __future__ import annotations

import sys

from aistock_actors.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
