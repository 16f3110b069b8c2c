#!/usr/bin/env python3
"""The manual's phase 2, ``scripts/supervised_autopilot.py --schedule``: the daemon in supervised
mode (promotions wait for ``--approve``); ``--schedule`` is ``--daemon``."""

from __future__ import annotations

import sys

from aistock_actors.cli.manual_scripts import script_main

if __name__ == "__main__":
    sys.exit(script_main(mode="supervised"))
