"""The manual's three commands as thin entry points over the one CLI (``scripts/*.py``).

``scripts/run_autopilot.py`` (manual mode: verdicts recorded, nothing promoted),
``scripts/supervised_autopilot.py`` (supervised mode: promotions wait for ``--approve``;
``--schedule`` is ``--daemon``) and ``scripts/headless_autopilot.py`` (the config's mode, headless
in the manual) take the CLI's arguments; the config path may be left out when ``config.json``
is in the working directory, as the manual's ``scripts/run_autopilot.py --run-once`` assumes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from aistock_actors.cli import app
from aistock_actors.config.sections import Mode

DEFAULT_CONFIG = Path("config.json")
"""The config used when the command names none (relative to the working directory)."""
ALIASES = {"--schedule": "--daemon"}
"""The manual's spellings of CLI flags."""


def script_main(argv: Sequence[str] | None = None, *, mode: Mode | None = None) -> int:
    """Run the CLI with the manual's spellings and an optional forced ``mode``."""
    args = [ALIASES.get(a, a) for a in (sys.argv[1:] if argv is None else argv)]
    wants_help = any(a in ("-h", "--help", "--version") for a in args)
    if not wants_help and (not args or args[0].startswith("-")):
        if not DEFAULT_CONFIG.is_file():
            print(f"aistock: no config given and no {DEFAULT_CONFIG} in {Path.cwd()}; "
                  "pass the config path first", file=sys.stderr)
            return app.EXIT_USAGE
        args.insert(0, str(DEFAULT_CONFIG))
    return app.main(args, mode=mode)
