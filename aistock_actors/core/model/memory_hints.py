"""Where pure model code may hand memory back to the OS: two hooks, no-ops until the runtime
plugs in its implementations (``aistock_actors.runtime.memory.install_core_hooks``).

The fits copy large, memory-mapped job arguments before they read them, and building a training
set frees many small blocks; telling the OS about both keeps a worker's RSS near its real use.
The data never changes either way, so core stays pure: no OS call, no ctypes, no clock here —
only the two seams through which the runtime adds them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy.typing as npt

__all__ = ["install", "release_pages", "trim_heap"]


def _no_release(_array: npt.NDArray[Any]) -> None:
    return None


def _no_trim() -> None:
    return None


_hooks: dict[str, Any] = {"release": _no_release, "trim": _no_trim}


def install(
    release: Callable[[npt.NDArray[Any]], None], trim: Callable[[], None]
) -> None:
    """Plug in the runtime's implementations (idempotent; called by the job runner)."""
    _hooks["release"] = release
    _hooks["trim"] = trim


def release_pages(array: npt.NDArray[Any]) -> None:
    """Drop this process's pages of a read-only memory map behind ``array`` (data unchanged)."""
    _hooks["release"](array)


def trim_heap() -> None:
    """Return freed heap memory to the OS (data unchanged)."""
    _hooks["trim"]()
