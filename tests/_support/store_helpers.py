"""Load a script of ``tests/store/_helpers/`` (the child programs the store's SIGKILL tests run)
as a module, so a test can also call its functions in-process."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

HELPERS = Path(__file__).resolve().parents[1] / "store" / "_helpers"


def load_helper(name: str) -> Any:
    """``tests/store/_helpers/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"_store_helper_{name}", HELPERS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
