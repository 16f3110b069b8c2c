"""The process-pool seam: results in order, work in other processes, hung jobs killed, large
arguments sent once, backend selection (the dask backend itself: ``test_dask_backend.py``)."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import cloudpickle
import joblib
import numpy as np
import pandas as pd
import pytest
from _support.waiting import wait_until

from aistock_actors.config import parse_config
from aistock_actors.errors import ConfigError, JobCancelledError
from aistock_actors.runtime import job_support
from aistock_actors.runtime import jobs as parallel
from aistock_actors.runtime.jobs import JobBackendError, JobRunner, JobTimeoutError
from aistock_actors.services import pipeline_params as lifecycle


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
    wait_until(lambda: not alive(worker), 10, "the pool's worker to die after the timeout")
    assert runner.run(pow, 2, 5, timeout=60) == 32  # a fresh pool serves the next job


def test_a_set_cancel_event_abandons_the_running_batch_and_refuses_the_next() -> None:
    runner = JobRunner("loky", 2)
    halted = threading.Event()
    runner.cancel_when("halted", halted)
    worker = runner.run(os.getpid, timeout=60)
    setter = threading.Timer(0.5, halted.set)  # the halt arrives while the fit runs
    start = time.monotonic()
    setter.start()
    try:
        with pytest.raises(JobCancelledError, match="sleep cancelled: halted"):
            runner.run(time.sleep, 60, timeout=120)
    finally:
        setter.cancel()
    assert time.monotonic() - start < 10  # not after the 60 s "fit"
    wait_until(lambda: not alive(worker), 10, "the pool's worker to die after the cancellation")
    with pytest.raises(JobCancelledError, match="pow not started: halted"):
        runner.run(pow, 2, 5, timeout=60)  # nothing new starts while the halt holds
    halted.clear()  # the operator resumed
    assert runner.run(pow, 2, 5, timeout=60) == 32


def test_inline_runs_in_the_calling_thread() -> None:
    runner = JobRunner("inline", 2)
    assert runner.run(threading.get_ident, timeout=1) == threading.get_ident()


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="'loky', 'dask' or 'inline'"):
        JobRunner("ray", 2)  # type: ignore[arg-type]


# --- large arguments, backend selection -------------------------------------------------------


def describe(array: np.ndarray, offset: int) -> tuple[str, bool, float]:
    """A pool job: how the array arrived, whether it is writable, and a checksum."""
    return type(array).__name__, bool(array.flags.writeable), float(array.sum()) + offset


# Workers cannot import this test module: send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_large_arguments_reach_loky_workers_memory_mapped_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = np.arange(400_000, dtype=np.float64)  # 3.2 MB >= SHARE_MIN_BYTES
    assert parallel.estimated_nbytes(big) >= parallel.SHARE_MIN_BYTES
    dumps: list[str] = []
    real_dump = job_support.SpillFolder.dump

    def counting_dump(self: job_support.SpillFolder, value: object) -> job_support.MappedArg:
        arg = real_dump(self, value)
        dumps.append(arg.path)
        return arg

    monkeypatch.setattr(job_support.SpillFolder, "dump", counting_dump)
    runner = JobRunner("loky", 2)
    results = runner.map(describe, [(big, 0), (big, 1), (big, 2)], timeout=60)
    total = float(big.sum())
    assert results == [("memmap", False, total), ("memmap", False, total + 1),
                       ("memmap", False, total + 2)]
    assert len(dumps) == 1  # the same object in three jobs is written once
    assert not Path(dumps[0]).parent.exists()  # the batch's temp folder is gone afterwards
    small = runner.map(describe, [(np.ones(10), 0)], timeout=60)
    assert small == [("ndarray", True, 10.0)]  # small arguments are pickled as before


def test_estimated_nbytes_sees_arrays_inside_containers() -> None:
    frame = pd.DataFrame({"a": np.zeros(1000), "b": np.zeros(1000)})
    assert parallel.estimated_nbytes(frame) >= 16_000
    assert parallel.estimated_nbytes({"x": frame, "y": (np.zeros(100), 3)}) >= 16_800
    assert parallel.estimated_nbytes("text") == 0


def test_dask_without_the_extra_is_a_config_error_naming_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "dask_available", lambda: False)
    config = parse_config('{"parallel": {"backend": "dask"}}')[0]
    with pytest.raises(ConfigError, match=r"pip install 'aistock-actors\[dask\]'"):
        lifecycle.check_parallel(config)  # start-up refuses it
    runner = lifecycle.job_runner(config)  # an actor owning it still starts (no restart storm)
    with pytest.raises(JobBackendError, match=r"pip install 'aistock-actors\[dask\]'"):
        runner.run(pow, 2, 2, timeout=10)  # and its step fails with the same hint
    runner.close()
    lifecycle.check_parallel(parse_config("{}")[0])  # the other backends never need it


def test_config_accepts_dask_with_a_scheduler_address() -> None:
    config, _ = parse_config(
        '{"parallel": {"backend": "dask", "scheduler_address": "tcp://scheduler:8786"}}'
    )
    assert config.parallel.backend == "dask"
    assert config.parallel.scheduler_address == "tcp://scheduler:8786"
    assert parse_config("{}")[0].parallel.scheduler_address is None
    with pytest.raises(ConfigError, match=re.escape("'dask' | 'inline' | 'loky'")):
        parse_config('{"parallel": {"backend": "ray"}}')


def test_a_full_ram_folder_falls_back_to_the_temp_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ram = tmp_path / "shm"  # stands in for a small /dev/shm (containers: 64 MB)
    ram.mkdir()
    monkeypatch.setattr(job_support, "shm_dir", lambda: str(ram))
    real_dump = joblib.dump
    targets: list[Path] = []

    def dump(value: object, target: Path) -> object:
        targets.append(Path(target))
        if Path(target).is_relative_to(ram):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_dump(value, target)

    monkeypatch.setattr(joblib, "dump", dump)
    big = np.ones(200_000)
    assert JobRunner("loky", 2).map(describe, [(big, 0)], timeout=60) == [
        ("memmap", False, 200_000.0)
    ]
    assert [t.is_relative_to(ram) for t in targets] == [True, False]
    assert list(ram.iterdir()) == []  # the half-written folder was removed


def test_spill_folders_of_dead_processes_are_removed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ram = tmp_path / "shm"
    ram.mkdir()
    monkeypatch.setattr(job_support, "shm_dir", lambda: str(ram))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = ram / f"aistock-jobs-{dead}-abc"  # left by a SIGKILLed autopilot
    live = ram / "aistock-jobs-1-abc"  # pid 1 is alive: another process's batch in flight
    for folder in (stale, live):
        folder.mkdir()
        (folder / "arg-1.pkl").write_bytes(b"x" * 100)
    big = np.ones(200_000)
    assert JobRunner("loky", 2).map(describe, [(big, 0)], timeout=60) == [
        ("memmap", False, 200_000.0)
    ]
    assert not stale.exists()
    assert live.exists()
    assert [p.name for p in ram.iterdir()] == [live.name]  # our own folder is gone too
