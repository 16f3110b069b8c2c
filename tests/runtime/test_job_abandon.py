"""A loky batch that is cancelled, or whose job raises, never leaves loky a cancelled future to
settle (``InvalidStateError: CANCELLED`` in its manager thread, which then dies and leaves its
workers alive at exit), and no worker of the batch outlives it (runtime/job_loky.py)."""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Iterator

import pytest
from _support.waiting import wait_until

from aistock_actors.errors import JobCancelledError, JobTimeoutError
from aistock_actors.runtime.job_loky import run_loky


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[BaseException]]:
    """Exceptions that ended a thread (loky's manager thread) during the test."""
    seen: list[BaseException] = []

    def record(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            traceback.print_exception(args.exc_value)  # shown with the failure
            seen.append(args.exc_value)

    monkeypatch.setattr(threading, "excepthook", record)
    yield seen


def manager_threads_finished() -> bool:
    return not [t for t in threading.enumerate() if "ExecutorManager" in type(t).__name__]


def worker_pid() -> int:
    (pid,) = run_loky(os.getpid, [()], n_jobs=1, timeout=60, cancelled=lambda: None)
    return pid


def test_a_cancelled_batch_with_queued_jobs_is_abandoned_cleanly(
    thread_errors: list[BaseException],
) -> None:
    worker = worker_pid()
    # One worker: the first sleep runs, one is in the call queue, the rest are still pending in
    # loky's own queue when the halt arrives (the futures loky fails on its kill_workers shutdown).
    with pytest.raises(JobCancelledError, match="sleep cancelled: halted"):
        run_loky(time.sleep, [(30,)] * 6, n_jobs=1, timeout=60, cancelled=lambda: "halted")
    wait_until(manager_threads_finished, 20, "loky's manager thread to end")
    wait_until(lambda: not alive(worker), 20, "the worker to be killed")
    assert thread_errors == []
    assert run_loky(pow, [(2, 5)], n_jobs=1, timeout=60, cancelled=lambda: None) == [32]


def test_a_job_that_raises_abandons_the_batch_and_its_workers(
    thread_errors: list[BaseException],
) -> None:
    worker = worker_pid()
    with pytest.raises(ValueError, match="non-negative"):  # sleep(-1) raises at once
        run_loky(time.sleep, [(-1,), *[(30,)] * 5], n_jobs=1, timeout=60,
                 cancelled=lambda: None)
    # The 30 s sleeps neither run on nor wait in loky's queue, cancelled, for the next kill
    # (here a timeout) to set an exception on them.
    wait_until(lambda: not alive(worker), 20, "the worker to be killed")
    with pytest.raises(JobTimeoutError):
        run_loky(time.sleep, [(30,)] * 4, n_jobs=1, timeout=0.5, cancelled=lambda: None)
    wait_until(manager_threads_finished, 20, "loky's manager thread to end")
    assert thread_errors == []
    assert run_loky(pow, [(2, 5)], n_jobs=1, timeout=60, cancelled=lambda: None) == [32]
