"""The operator's side: argument parsing and exit codes, operator commands, the status view
and the report. ``main`` is the console script ``aistock``."""

from aistock_actors.cli.app import main

__all__ = ["main"]
