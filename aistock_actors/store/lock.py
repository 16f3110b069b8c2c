"""One daemon per state directory: an exclusive, non-blocking ``flock`` on ``state/daemon.lock``.

The OS releases the lock when the process dies (even by SIGKILL), so a stale lock file never blocks
a restart. The file records the holder's pid for the message a refused second process prints.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from aistock_actors.errors import LockHeldError


class DaemonLock:
    """Context manager holding the state directory's process lock."""

    def __init__(self, state_dir: Path, purpose: str = "daemon") -> None:
        self.path = Path(state_dir) / "daemon.lock"
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockHeldError` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise LockHeldError(
                f"another autopilot process ({holder}) is already running on {self.path.parent}; "
                "refusing to start a second one"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({self.purpose})\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Release the lock (also released by the OS when the process exits)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
