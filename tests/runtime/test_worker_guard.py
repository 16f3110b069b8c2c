"""#17: loky pool workers do not outlive a SIGKILLed daemon (runtime/worker_guard.py).

The workers are forked by the pool's fork server (#18), so they are the daemon's grandchildren:
the test follows every descendant (fork server, workers, resource trackers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from _support.waiting import wait_until

from aistock_actors.runtime.worker_guard import EXIT_CODE

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


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        found += kids
        todo += kids
    return found


def test_pool_workers_exit_when_the_daemon_is_sigkilled() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        used = [int(p) for p in proc.stdout.readline().split()]
        workers = descendants(proc.pid)  # fork server, every worker (used or not), trackers
        assert used and set(used) <= set(workers) and proc.pid not in workers
        assert not set(used) & set(children(proc.pid)), "workers come from the fork server"
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


EXIT_SCRIPT = textwrap.dedent("""
    import atexit, os, resource
    from multiprocessing import forkserver
    from aistock_actors.runtime.jobs import JobRunner

    def children_cpu():
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def report():  # registered first, so it runs last: after the pool and the server stopped
        try:
            os.waitpid(server, os.WNOHANG)
            reaped = False
        except ChildProcessError:  # already waited for: by stop_fork_server
            reaped = True
        print(server, reaped, round(children_cpu() - before, 3), *sorted(set(pids)), flush=True)

    atexit.register(report)
    runner = JobRunner("loky", n_jobs=2)
    pids = runner.map(os.getpid, [(), (), (), ()], timeout=120)
    server = forkserver._forkserver._forkserver_pid
    before = children_cpu()
""")


def test_a_normal_exit_stops_and_reaps_the_fork_server_and_its_workers() -> None:
    """#18: at exit the pool's workers end, then the fork server is ended and reaped by the
    daemon: nothing is left behind, and the server's CPU (its imports) and its workers' count
    in the daemon's own children, so bench_cycle's CPU figures include them."""
    done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True,
                          timeout=120, check=True)
    server_pid, reaped, reaped_cpu, *pids = done.stdout.split()
    server, workers = int(server_pid), [int(p) for p in pids]
    assert workers and server not in workers
    assert reaped == "True"
    assert float(reaped_cpu) > 0.2  # at least the server's imports of scikit-learn and pandas
    wait_until(lambda: not any(alive(pid) for pid in (server, *workers)), timeout=10,
               what="the fork server and its workers to be gone after the daemon exited")


WATCH_SCRIPT = textwrap.dedent("""
    import os, subprocess, sys, threading
    from aistock_actors.runtime import worker_guard
    worker_guard.POLL_SECONDS = 0.05
    daemon = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    if sys.argv[1] == "poll":
        del os.pidfd_open  # a kernel or platform without pidfds
    worker_guard.die_with_daemon(daemon.pid)
    daemon.kill()
    daemon.wait()
    threading.Event().wait(20)  # the watcher ends this process long before
    sys.exit(0)
""")


@pytest.mark.parametrize("how", ["pidfd", "poll"])
def test_the_watcher_ends_the_worker_when_the_daemon_exits(how: str) -> None:
    """#17/#18: with a pidfd, or polling the pid where pidfds are missing, a worker whose
    daemon is gone exits at once with EXIT_CODE (it is not the daemon's child any more)."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", WATCH_SCRIPT, how], timeout=60, check=False)
    assert done.returncode == EXIT_CODE
    assert time.monotonic() - start < 15
