"""One daemon per state directory: exclusive ``flock`` on the state directory itself and on
``state/daemon.lock``.

The directory lock is what holds: ``rm state/daemon.lock`` cannot take it away (the directory
cannot be replaced while it holds files). The lock file records the holder's pid for the message a
refused second process prints; :meth:`DaemonLock.check` tells a running daemon that its lock file
was deleted or replaced, so it halts instead of sharing the state with a second process. The OS
releases both locks when the process dies (even by SIGKILL), so a stale file never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from aistock_actors.errors import LockHeldError

LOCK_NAME = "daemon.lock"


class DaemonLock:
    """Context manager holding the state directory's process lock."""

    def __init__(self, state_dir: Path, purpose: str = "daemon") -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self.purpose = purpose
        self._fd: int | None = None
        self._dir_fd: int | None = None
        self._identity: tuple[int, int] | None = None

    def _refuse(self, holder: str) -> LockHeldError:
        return LockHeldError(
            f"another autopilot process ({holder or 'unknown'}) is already running on "
            f"{self.path.parent}; refusing to start a second one"
        )

    def _holder(self) -> str:
        try:
            return self.path.read_text("utf-8", "replace").strip()[:200]
        except OSError:
            return ""

    def acquire(self) -> None:
        """Take both locks or raise :class:`LockHeldError` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(dir_fd)
            raise self._refuse(self._holder()) from None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            os.close(dir_fd)
            raise self._refuse(holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({self.purpose})\n".encode(), 0)
        st = os.fstat(fd)
        self._fd, self._dir_fd, self._identity = fd, dir_fd, (st.st_dev, st.st_ino)

    def check(self) -> str | None:
        """Return why the lock no longer guards the state directory, or ``None`` if it does.

        The lock file deleted or replaced by another file is reported (the daemon halts on it).
        """
        if self._identity is None:
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return f"lock file {self.path} was deleted while the daemon held it"
        except OSError as exc:
            return f"lock file {self.path} cannot be checked: {exc}"
        if (st.st_dev, st.st_ino) != self._identity:
            return f"lock file {self.path} was replaced while the daemon held it"
        return None

    def release(self) -> None:
        """Release the locks (also released by the OS when the process exits)."""
        for fd in (self._fd, self._dir_fd):
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        self._fd = self._dir_fd = None
        self._identity = None

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


def lock_holder(state_dir: Path) -> str | None:
    """Who holds ``state/daemon.lock`` right now (``pid N (daemon)``), or None; creates nothing.

    For a command that must refuse a busy state directory before writing anything to it.
    """
    path = Path(state_dir) / "daemon.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
