"""``python -m aistock_actors CONFIG ...`` runs the CLI."""

from __future__ import annotations

import sys

from aistock_actors.cli.app import main

sys.exit(main())
