#!/usr/bin/env python3
"""The manual's ``python scripts/headless_autopilot.py CONFIG --run-once | --daemon | --kill ...``
(the config's mode; ``ps aux | grep headless_autopilot`` finds a daemon started this way)."""

from __future__ import annotations

import sys

from aistock_actors.cli.manual_scripts import script_main

if __name__ == "__main__":
    sys.exit(script_main())
