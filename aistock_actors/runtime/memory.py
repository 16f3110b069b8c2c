"""Handing memory back to the operating system (RSS), without changing any data.

* :func:`trim_heap`: glibc keeps the memory of freed small and medium blocks (pandas and
  scikit-learn free many while building a feature panel or fitting), so a process's RSS stays at
  its peak long after the data is gone; ``malloc_trim(0)`` returns it.
* :func:`release_mapped_pages`: a pool worker gets a big job argument as a read-only
  ``np.memmap`` of a shared file (``aistock_actors.runtime.jobs``); every page it has read stays in
  its RSS while the job runs, although the data lives once, in the shared file.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
from typing import Any

import numpy as np
import numpy.typing as npt

_LIBC: Any = None


def trim_heap() -> None:
    """Return freed heap memory to the OS (glibc ``malloc_trim``; a no-op elsewhere)."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


def release_mapped_pages(array: npt.NDArray[Any]) -> None:
    """Drop this process's mapping of the pages of the read-only memory map behind ``array``.

    Once a job has copied what it needs from a memory-mapped argument,
    ``madvise(MADV_DONTNEED)`` takes the pages it read out of its RSS: the shared file keeps the
    data, and a later read maps the pages again (a minor fault, no copy, the same bytes). A
    no-op for an array that is not a view of a read-only (shared) ``np.memmap`` (a copy-on-write
    map would lose its writes), or without ``madvise``.
    """
    base: object = array
    while isinstance(base, np.ndarray):
        handle = getattr(base, "_mmap", None)
        if isinstance(base, np.memmap) and handle is not None:
            if base.mode == "r" and hasattr(mmap, "MADV_DONTNEED"):
                # closed, or refused: the pages just stay
                with contextlib.suppress(OSError, ValueError):
                    handle.madvise(mmap.MADV_DONTNEED)
            return
        base = base.base


def install_core_hooks() -> None:
    """Let the pure model code (``core/model/memory_hints.py``) call these two functions."""
    from aistock_actors.core.model import memory_hints

    memory_hints.install(release_mapped_pages, trim_heap)
