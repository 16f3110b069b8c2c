"""One autopilot per state directory: ``DaemonLock`` (T1).

What an operator relies on: a second daemon on the same state folder is refused with a message
naming the running one, and a crashed (even SIGKILLed) daemon never blocks the restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _support.store_helpers import load_helper

from aistock_actors.errors import LockHeldError
from aistock_actors.store.lock import DaemonLock

HELPERS = Path(__file__).resolve().parent / "_helpers"
HOLDER = HELPERS / "lock_holder.py"


procs = load_helper("procs")


def expected_refusal(state_dir: Path, holder: str) -> str:
    return (
        f"another autopilot process ({holder}) is already running on {state_dir}; "
        "refusing to start a second one"
    )


def test_second_lock_on_the_same_dir_is_refused_naming_the_holder(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with DaemonLock(state, "daemon"):
        with pytest.raises(LockHeldError) as info:
            DaemonLock(state, "run-once").acquire()
        assert "already running" in str(info.value)
        assert str(info.value) == expected_refusal(state, f"pid {os.getpid()} (daemon)")
    # Released on exit: the next one gets it and records itself as the holder.
    with DaemonLock(state, "run-once") as lock:
        assert lock.path.read_text() == f"pid {os.getpid()} (run-once)\n"


def test_locks_on_different_dirs_do_not_interfere(tmp_path: Path) -> None:
    with DaemonLock(tmp_path / "a"), DaemonLock(tmp_path / "b"):
        pass


def test_release_is_idempotent(tmp_path: Path) -> None:
    lock = DaemonLock(tmp_path)
    lock.acquire()
    lock.release()
    lock.release()
    with DaemonLock(tmp_path):
        pass


def test_lock_is_released_when_the_holder_is_sigkilled(tmp_path: Path) -> None:
    state = tmp_path / "state"
    child = subprocess.Popen(
        [sys.executable, str(HOLDER), str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        bufsize=0,
    )
    try:
        reader = procs.LineReader(child)
        # The child prints only once it holds the lock.
        assert reader.wait_for_lines(1, timeout=30.0), "lock holder never reported the lock"
        assert reader.lines[0] == "locked"

        with pytest.raises(LockHeldError) as info:
            DaemonLock(state).acquire()
        assert str(info.value) == expected_refusal(state, f"pid {child.pid} (daemon)")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=15)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL

    # The stale lock file still names the dead process, but it no longer blocks anyone.
    assert (state / "daemon.lock").read_text() == f"pid {child.pid} (daemon)\n"
    with DaemonLock(state, "daemon") as lock:
        assert lock.path.read_text() == f"pid {os.getpid()} (daemon)\n"


def test_deleting_the_lock_file_does_not_release_the_directory_lock(tmp_path: Path) -> None:
    """#17: the flock on the state directory itself holds after ``rm state/daemon.lock``."""
    state = tmp_path / "state"
    with DaemonLock(state, "daemon") as held:
        assert held.check() is None
        (state / "daemon.lock").unlink()
        with pytest.raises(LockHeldError):
            DaemonLock(state, "run-once").acquire()
        lock_file = state / "daemon.lock"
        assert held.check() == f"lock file {lock_file} was deleted while the daemon held it"
        (state / "daemon.lock").write_text("pid 1 (forged)\n")
        assert held.check() == f"lock file {lock_file} was replaced while the daemon held it"
    with DaemonLock(state, "daemon") as again:  # released on exit as before
        assert again.check() is None
