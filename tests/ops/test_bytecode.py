"""The install compiles bytecode (#18): no process compiles scikit-learn, scipy or pandas again.

Where ``PYTHONDONTWRITEBYTECODE`` is set (containers, this CI), Python reads cached ``.pyc``
files but never writes one, so without the install's ``compileall`` every CLI and pool-worker
start compiled ~1,500 modules from source (~1.8 CPU-s a process). ``./test.sh`` and
``./demo.sh`` compile ``.venv`` and the package once; this checks the environment the suite runs
in got it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

import pytest

HEAVY = ("sklearn.utils.validation", "scipy.stats._stats_py", "pandas.core.frame", "numpy.linalg")
"""Installed packages only: a module of this checkout edited since the last ``./test.sh`` is
compiled again at import until the next one, which is fine for a developer."""


@pytest.mark.parametrize("name", HEAVY)
def test_every_heavy_module_a_process_imports_has_current_bytecode(name: str) -> None:
    source = Path(importlib.import_module(name).__file__ or "")
    cached = Path(importlib.util.cache_from_source(str(source)))
    assert cached.is_file(), f"{name}: no bytecode at {cached}; the install must compileall"
    assert os.stat(cached).st_mtime >= os.stat(source).st_mtime - 1, f"{name}: stale bytecode"


def test_both_setup_commands_compile_the_environment() -> None:
    root = Path(__file__).resolve().parents[2]
    for script in ("test.sh", "demo.sh"):
        lines = (root / script).read_text().splitlines()
        install = next(i for i, line in enumerate(lines) if "pip install --quiet -e" in line)
        compile_ = next(i for i, line in enumerate(lines) if "-m compileall" in line)
        assert install < compile_, f"{script} compiles before it installs"
