"""#17: loky pool workers do not outlive a SIGKILLed daemon (runtime/worker_guard.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from _support.waiting import wait_until

SCRIPT = textwrap.dedent("""
    import os, sys, time
    from aistock_actors.runtime.jobs import JobRunner
    runner = JobRunner("loky", n_jobs=2)
    pids = runner.map(os.getpid, [(), (), (), ()], timeout=120)
    print(" ".join(str(p) for p in sorted(set(pids))), flush=True)
    time.sleep(600)
""")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too (reaped by init later)
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().split(") ", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_pool_workers_exit_when_the_daemon_is_sigkilled() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        used = [int(p) for p in proc.stdout.readline().split()]
        workers = children(proc.pid)  # every worker (used or not) and loky's resource tracker
        assert used and set(used) <= set(workers) and proc.pid not in workers
        assert all(alive(pid) for pid in workers)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    start = time.monotonic()
    wait_until(lambda: not any(alive(pid) for pid in workers), timeout=30,
               what=f"the pool processes {workers} to exit after the daemon's SIGKILL")
    assert time.monotonic() - start < 30
