"""The loky backend: joblib's reusable process pool, whose workers are killed to abandon a job.

Large arguments are written once per batch and memory-mapped by the workers
(:class:`~aistock_actors.runtime.job_support.SpillFolder`). A batch that times out or is
cancelled (a halt, the process stopping), or whose job raises, kills the pool's workers
(:func:`abandon_pool`): a thread cannot be interrupted, a process can. The next batch gets a
fresh pool.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from joblib.externals.loky import get_reusable_executor

from aistock_actors.runtime.job_support import (
    Cancelled,
    SpillFolder,
    call_job,
    collect,
    job_name,
    large_args,
    release_memory,
)
from aistock_actors.runtime.worker_guard import die_with_parent

R = TypeVar("R")

WORKER_IDLE_SECONDS = 300
"""Idle loky workers exit after this long (they are re-spawned on demand)."""


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
            timeout=WORKER_IDLE_SECONDS,
            initializer=die_with_parent,  # #17: no worker outlives a SIGKILLed daemon
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
