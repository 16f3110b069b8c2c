#!/usr/bin/env python3
"""The manual's phase 1, ``scripts/run_autopilot.py --run-once``: one cycle in manual mode
(verdicts are recorded, nothing is promoted); the config defaults to ./config.json."""

from __future__ import annotations

import sys

from aistock_actors.cli.manual_scripts import script_main

if __name__ == "__main__":
    sys.exit(script_main(mode="manual"))
