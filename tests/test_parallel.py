"""The process-pool seam: results in order, work in other processes, hung jobs killed."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from aistock_actors.parallel import JobRunner, JobTimeoutError


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False


def test_loky_runs_jobs_in_worker_processes_in_order() -> None:
    runner = JobRunner("loky", 2)
    assert runner.map(pow, [(2, 3), (3, 2), (10, 0)], timeout=60) == [8, 9, 1]
    assert runner.run(os.getpid, timeout=60) != os.getpid()


def test_hung_job_times_out_and_its_workers_are_killed() -> None:
    runner = JobRunner("loky", 2)
    worker = runner.run(os.getpid, timeout=60)
    start = time.monotonic()
    with pytest.raises(JobTimeoutError):
        runner.run(time.sleep, 60, timeout=1.0)
    assert time.monotonic() - start < 10
    deadline = time.monotonic() + 10
    while alive(worker):
        assert time.monotonic() < deadline, "the pool's worker survived the timeout"
        time.sleep(0.05)
    assert runner.run(pow, 2, 5, timeout=60) == 32  # a fresh pool serves the next job


def test_inline_runs_in_the_calling_thread() -> None:
    runner = JobRunner("inline", 2)
    assert runner.run(threading.get_ident, timeout=1) == threading.get_ident()


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="dask"):
        JobRunner("dask", 2)  # type: ignore[arg-type]
