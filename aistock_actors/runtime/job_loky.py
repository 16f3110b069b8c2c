"""The loky backend: joblib's reusable process pool, whose workers are killed to abandon a job.

Large arguments are written once per batch and memory-mapped by the workers
(:class:`~aistock_actors.runtime.job_support.SpillFolder`). A batch that times out or is
cancelled (a halt, the process stopping), or whose job raises, kills the pool's workers
(:func:`abandon_pool`): a thread cannot be interrupted, a process can. The next batch gets a
fresh pool.

**Workers start warm** (#18). They are forked from a ``multiprocessing`` fork server that
imported the fit code (:data:`PRELOAD`: scikit-learn, pandas, the job modules) once, instead of
each worker starting a fresh interpreter and importing it again (~1.5 CPU-s a worker, paid again
by every fresh pool: after an idle timeout, an abandoned batch, each ``--run-once``). The fork
server is a clean process started with no threads (forking the multi-threaded daemon itself
would not be safe). It lives as long as the daemon; :func:`stop_fork_server` ends it at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from multiprocessing import forkserver
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from joblib.externals.loky import get_reusable_executor

from aistock_actors.runtime.clock import SYSTEM_CLOCK
from aistock_actors.runtime.job_support import (
    Cancelled,
    SpillFolder,
    call_job,
    collect,
    job_name,
    large_args,
    release_memory,
)
from aistock_actors.runtime.worker_guard import die_with_daemon

R = TypeVar("R")

WORKER_IDLE_SECONDS = 300
"""Idle loky workers exit after this long (they are re-spawned on demand)."""

PRELOAD = (
    "aistock_actors.core.model.pipeline",
    "aistock_actors.core.strategy.walkforward",
    "aistock_actors.core.strategy.candidates",
)
"""Imported once by the fork server, so every worker forked from it has them (and with them
scikit-learn, scipy, pandas and numpy)."""

FORK_SERVER_STOP_SECONDS = 5.0
"""At exit, how long the fork server may take to end before it is killed."""

_context_lock = threading.Lock()
_context: BaseContext | None = None


def worker_context() -> BaseContext:
    """The ``forkserver`` start context with :data:`PRELOAD` (set before the server starts)."""
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(PRELOAD))
            atexit.register(stop_fork_server)
            _context = context
        return _context


def stop_fork_server(wait: float = FORK_SERVER_STOP_SECONDS) -> None:
    """End the fork server and reap it (its CPU then counts in this process's children).

    Closing its "alive" pipe asks it to exit once no worker holds the pipe either; a server
    still up after ``wait`` seconds (a worker stuck past the pool's own shutdown) is SIGKILLed,
    and its workers then end through their :func:`die_with_daemon` watch. Never blocks exit.
    """
    server: Any = forkserver._forkserver  # the stdlib has no public stop
    pid, alive = server._forkserver_pid, server._forkserver_alive_fd
    if pid is None or alive is None:
        return
    server._forkserver_pid = server._forkserver_alive_fd = None
    with contextlib.suppress(OSError):
        os.close(alive)
    deadline = SYSTEM_CLOCK.monotonic() + wait
    try:
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if SYSTEM_CLOCK.monotonic() >= deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
            threading.Event().wait(0.02)
    except ChildProcessError:  # already reaped
        return


def abandon_pool(executor: Any) -> None:
    """Kill the pool's workers (SIGKILL), then shut it down without waiting.

    Loky then takes its broken-pool path, which settles every future of the batch and ends its
    manager thread cleanly; the next batch gets a fresh pool. Not ``shutdown(kill_workers=True)``:
    with jobs still queued, loky 3.6 sets an exception on a future the caller cancelled
    (``InvalidStateError: CANCELLED``) or looks up a job it already dropped (``KeyError``), in
    its manager thread, which dies and leaves workers that hang the interpreter's exit. The
    futures are never ``cancel()``-ed either (``collect``'s ``drop``).
    """
    for pid in list(executor._processes):
        with contextlib.suppress(ProcessLookupError):  # it exited by itself (idle timeout)
            os.kill(pid, signal.SIGKILL)
    executor.shutdown(wait=False)


def run_loky(
    fn: Callable[..., R],
    jobs: Sequence[tuple[Any, ...]],
    *,
    n_jobs: int,
    timeout: float,
    cancelled: Cancelled,
) -> list[R]:
    """Run ``fn(*job)`` for every job in the pool; results in job order (see ``collect``)."""
    large = large_args(jobs)
    spill = SpillFolder()
    try:
        mapped = {key: spill.dump(value) for key, value in large.items()}
        shipped = [tuple(mapped.get(id(arg), arg) for arg in job) for job in jobs]
        executor = get_reusable_executor(
            max_workers=n_jobs,
            context=worker_context(),
            timeout=WORKER_IDLE_SECONDS,
            initializer=die_with_daemon,  # #17: no worker outlives a SIGKILLed daemon
            initargs=(os.getpid(),),
        )
        release_memory()  # the caller's garbage (e.g. building the feature panel) goes first
        futures = [executor.submit(call_job, fn, job) for job in shipped]
        kill = lambda: abandon_pool(executor)  # noqa: E731
        return collect(
            futures,
            name=job_name(fn),
            timeout=timeout,
            cancelled=cancelled,
            abandon=kill,
            drop=kill,  # a job that raised abandons the batch like a timeout
        )
    finally:
        spill.close()  # a worker still running keeps its mapping; the file name goes now
