"""The one deadline-bounded wait of the tests: poll a condition, fail naming what never came."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               log: Path | None = None, poll: float = 0.02) -> float:
    """Poll ``condition`` every ``poll`` s until it holds and return the seconds it took; past
    ``timeout`` s fail naming ``what`` (with the tail of ``log``, e.g. a daemon's output)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            tail = f"\n{log.read_text()[-3000:]}" if log is not None and log.exists() else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{tail}")
        time.sleep(poll)
    return time.monotonic() - start
