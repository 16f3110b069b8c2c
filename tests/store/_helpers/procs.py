"""Deadline-bounded helpers for talking to child processes through pipes (no sleeping).

Loaded by the tests with ``importlib`` (the test suite runs in ``--import-mode=importlib``).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path


class LineReader:
    """Collect complete lines from a child's unbuffered stdout pipe, waiting with a deadline."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.buf = b""
        self.lines: list[str] = []
        self.eof = False

    def _pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0.0))
        if not ready:
            return
        chunk = os.read(self.fd, 65536)
        if not chunk:
            self.eof = True
            return
        self.buf += chunk
        *complete, self.buf = self.buf.split(b"\n")
        self.lines.extend(line.decode() for line in complete)

    def wait_for_lines(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` lines arrived; False on deadline or EOF."""
        deadline = time.monotonic() + timeout
        for _ in range(1_000_000):
            if len(self.lines) >= count:
                return True
            remaining = deadline - time.monotonic()
            if self.eof or remaining <= 0:
                return False
            self._pump(remaining)
        return False

    def drain(self, timeout: float) -> None:
        """Read until EOF (the child is dead); a torn last line (no newline) is not a line."""
        deadline = time.monotonic() + timeout
        for _ in range(1_000_000):
            remaining = deadline - time.monotonic()
            if self.eof or remaining <= 0:
                return
            self._pump(remaining)


def kill_and_drain(proc: subprocess.Popen[bytes], reader: LineReader) -> None:
    """SIGKILL the child if it still runs, reap it, and read its last complete lines."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=15)
    reader.drain(timeout=15.0)
    assert proc.stdout is not None
    proc.stdout.close()


def assert_killed_cleanly(proc: subprocess.Popen[bytes], err_path: Path, where: str) -> None:
    """The child died of the SIGKILL (not on its own) and printed no traceback before it."""
    stderr = err_path.read_text(errors="replace")
    assert proc.returncode == -signal.SIGKILL, f"{where}: child ended on its own\n{stderr}"
    assert "Traceback" not in stderr, f"{where}\n{stderr}"
