"""Is an autopilot process running on this state directory? From the lock holder and the heartbeat.

``state/daemon.lock`` is held with ``flock`` by the running process (released by the OS even on
SIGKILL) and names its pid; ``state/heartbeat.json`` is rewritten every second by its supervisor
loop. Who holds the lock is read from ``/proc/locks`` (Linux), so asking never takes the lock
itself; elsewhere the pid in the file is probed with signal 0. Three answers:

- ``running``: a live process holds the lock and its heartbeat is fresh;
- ``stale_lock``: a live process holds the lock but its heartbeat is older than
  :data:`STALE_AFTER_S` (hung, or stopped with SIGSTOP);
- ``not_running``: nobody holds the lock (the last heartbeat's age is shown when there is one).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import msgspec

from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock

STALE_AFTER_S = 30.0
"""A held lock whose heartbeat is older than this is reported as a stale lock."""
LOCK_FILE = "daemon.lock"
HEARTBEAT_FILE = "heartbeat.json"


class Liveness(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a process runs the autopilot on this state directory, and how sure we are."""

    state: str
    """``running``, ``stale_lock`` or ``not_running``."""
    pid: int | None
    """The lock holder's pid (or the last one recorded in ``daemon.lock``)."""
    purpose: str | None
    """``daemon`` or ``run-once``, as the holder wrote it."""
    heartbeat_age_s: float | None
    """Seconds since the last heartbeat (None: no heartbeat was ever written)."""
    summary: str
    """One line: ``running, pid 12, heartbeat 2 s ago`` / ``not running (last heartbeat …)``."""


def _lock_file_holder(path: Path) -> tuple[int | None, str | None]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, None
    found = re.match(r"\s*pid (\d+)(?: \(([^)]*)\))?", text)
    if found is None:
        return None, None
    return int(found.group(1)), found.group(2)


def _proc_locks_holder(path: Path) -> tuple[bool, int | None]:
    """``(readable, pid)``: the pid holding a flock on ``path`` per ``/proc/locks``."""
    try:
        st = path.stat()
        lines = Path("/proc/locks").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return False, None
    for line in lines:
        parts = line.split()
        if "->" in parts:  # a waiter, not a holder
            continue
        if len(parts) < 6 or parts[1] != "FLOCK":
            continue
        dev_ino = parts[5].split(":")
        same_dev = len(dev_ino) == 3 and (int(dev_ino[0], 16), int(dev_ino[1], 16)) == (
            os.major(st.st_dev), os.minor(st.st_dev))
        if same_dev and int(dev_ino[2]) == st.st_ino:
            return True, int(parts[4])
    return True, None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _heartbeat_at(path: Path) -> float | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        ts = json.loads(raw).get("ts")
        return float(ts) if isinstance(ts, (int, float)) else path.stat().st_mtime
    except (ValueError, AttributeError, OSError):
        return None


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 0.0):.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def liveness(state_dir: Path, clock: Clock = SYSTEM_CLOCK) -> Liveness:
    """Read-only liveness of the autopilot on ``state_dir`` (see the module docstring)."""
    state_dir = Path(state_dir)
    lock = state_dir / LOCK_FILE
    file_pid, purpose = _lock_file_holder(lock)
    readable, holder = _proc_locks_holder(lock) if lock.exists() else (True, None)
    if not readable:  # no /proc/locks: trust the recorded pid if that process lives
        holder = file_pid if file_pid is not None and _alive(file_pid) else None
    beat = _heartbeat_at(state_dir / HEARTBEAT_FILE)
    age = None if beat is None else round(clock.time() - beat, 1)
    pid = holder if holder is not None else file_pid
    if holder is not None:
        what = f"pid {holder}" + (f" ({purpose})" if purpose and holder == file_pid else "")
        if age is not None and age <= STALE_AFTER_S:
            return Liveness(state="running", pid=holder, purpose=purpose, heartbeat_age_s=age,
                            summary=f"running, {what}, heartbeat {_ago(age)}")
        beat_text = "no heartbeat yet" if age is None else f"last heartbeat {_ago(age)}"
        if age is None:
            return Liveness(state="running", pid=holder, purpose=purpose, heartbeat_age_s=None,
                            summary=f"running, {what}, starting ({beat_text})")
        return Liveness(state="stale_lock", pid=holder, purpose=purpose, heartbeat_age_s=age,
                        summary=f"stale lock: {what} holds {lock.name} but its {beat_text} "
                        f"(over {STALE_AFTER_S:.0f} s: hung or stopped?)")
    last = "no heartbeat ever" if age is None else f"last heartbeat {_ago(age)}"
    return Liveness(state="not_running", pid=pid, purpose=purpose, heartbeat_age_s=age,
                    summary=f"not running ({last})")
