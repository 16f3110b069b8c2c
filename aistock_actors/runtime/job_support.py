"""Support for the job backends: large arguments sent once, and waiting for a batch.

**Large arguments are sent once.** A job argument of at least :data:`SHARE_MIN_BYTES` (numpy
arrays, pandas objects, and tuples / lists / dicts of them) is not pickled into each job: with
loky it is written once per batch with ``joblib.dump`` to a temp folder (``/dev/shm`` when
usable) and memory-mapped read-only by the workers (``SpillFolder``); with dask it is scattered
once to the cluster. **Waiting** (:func:`collect`) takes a batch's results in job order within a
deadline, checking every :data:`CANCEL_POLL_SECONDS` whether the batch was cancelled (a halt, or
the process stopping), so a cancelled batch is abandoned at once instead of after its fits.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aistock_actors.errors import JobCancelledError, JobTimeoutError
from aistock_actors.runtime.clock import SYSTEM_CLOCK
from aistock_actors.runtime.memory import install_core_hooks, trim_heap

log = logging.getLogger("aistock_actors.runtime.jobs")

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

SHARE_MIN_BYTES = 1 << 20
"""Job arguments at least this big are sent once per batch (memory map / scatter)."""
CANCEL_POLL_SECONDS = 0.1
"""How often a waiting batch checks whether it was cancelled."""

Cancelled = Callable[[], str | None]
"""Why the batch is cancelled (e.g. ``"halted"``), or ``None`` to keep waiting."""


class ResultFuture(Protocol[R_co]):
    """What :func:`collect` needs of a loky or dask future."""

    def result(self, timeout: float | None = ...) -> R_co: ...

    def cancel(self) -> Any: ...


def collect(
    futures: Sequence[ResultFuture[R]],
    *,
    name: str,
    timeout: float,
    cancelled: Cancelled,
    abandon: Callable[[], None],
    drop: Callable[[], None] | None = None,
) -> list[R]:
    """The results of ``futures`` in order, within ``timeout`` seconds.

    On timeout or cancellation ``abandon()`` is called (it kills what still runs), then
    :class:`JobTimeoutError` / :class:`JobCancelledError` is raised. A job that raises re-raises
    here. Without ``drop`` every future is then cancelled (``Future.cancel()``, any exit but
    success). A backend whose own shutdown settles its futures passes ``drop``: it is called
    instead when a job raised, and nothing is cancelled after ``abandon()`` (loky would set an
    exception on a cancelled future in its manager thread: ``InvalidStateError: CANCELLED``).
    """
    deadline = SYSTEM_CLOCK.monotonic() + timeout
    results: list[R] = []
    abandoned = False
    try:
        for future in futures:
            while True:
                why = cancelled()
                if why is not None:
                    log.warning("job %s cancelled (%s); abandoning its workers", name, why)
                    abandoned = True
                    abandon()
                    raise JobCancelledError(f"{name} cancelled: {why}")
                left = deadline - SYSTEM_CLOCK.monotonic()
                try:
                    results.append(future.result(timeout=max(0.0, min(CANCEL_POLL_SECONDS, left))))
                    break
                except TimeoutError:
                    if left > CANCEL_POLL_SECONDS:
                        continue
                    log.error("job %s exceeded %.1fs; abandoning its workers", name, timeout)
                    abandoned = True
                    abandon()
                    raise JobTimeoutError(f"{name} did not finish within {timeout:g}s") from None
    except BaseException:
        if drop is None:
            for other in futures:
                other.cancel()
        elif not abandoned:
            drop()
        raise
    return results


def delayed_call(fn: Callable[..., R], seconds: float, *args: Any) -> R:
    """A pool job that sleeps ``seconds`` first (the fault seam's ``slow_job``: a long fit)."""
    time.sleep(seconds)
    return fn(*args)


def job_name(fn: Callable[..., Any]) -> str:
    """A job function's name for log lines and errors."""
    return getattr(fn, "__name__", repr(fn))


def estimated_nbytes(value: Any, depth: int = 0) -> int:
    """Bytes of the arrays inside ``value`` (numpy, pandas, and containers of them), roughly."""
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):  # numpy arrays, pandas Index / Series
        return nbytes
    memory_usage = getattr(value, "memory_usage", None)
    if callable(memory_usage):  # pandas DataFrame (index included)
        return int(memory_usage(index=True, deep=False).sum())
    if depth >= 3:
        return 0
    if isinstance(value, (tuple, list)):
        return sum(estimated_nbytes(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return sum(estimated_nbytes(item, depth + 1) for item in value.values())
    return 0


def large_args(jobs: Sequence[tuple[Any, ...]]) -> dict[int, Any]:
    """``{id: arg}`` of every distinct job argument of at least :data:`SHARE_MIN_BYTES`."""
    large: dict[int, Any] = {}
    sizes: dict[int, int] = {}
    for job in jobs:
        for arg in job:
            key = id(arg)
            if key not in sizes:
                sizes[key] = estimated_nbytes(arg)
                if sizes[key] >= SHARE_MIN_BYTES:
                    large[key] = arg
    return large


class MappedArg:
    """Placeholder for a large argument written with ``joblib.dump``; loaded memory-mapped."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (MappedArg, (self.path,))


def call_job(fn: Callable[..., R], job: tuple[Any, ...]) -> R:
    """Worker side of a loky job: load the memory-mapped arguments, call ``fn``, then hand the
    job's freed heap back to the OS (an idle worker would otherwise keep its peak)."""
    import joblib

    install_core_hooks()  # the fit may drop pages of its memory-mapped arguments
    args = [joblib.load(a.path, mmap_mode="r") if isinstance(a, MappedArg) else a for a in job]
    try:
        return fn(*args)
    finally:
        del args
        release_memory()


def release_memory() -> None:
    """Return freed heap memory to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    glibc keeps the memory of freed small and medium blocks (pandas and scikit-learn free many
    while building a feature panel or fitting), so a process's RSS stays at its peak long after
    the data is gone. Called before a batch of jobs fans out and after each pooled job.
    """
    trim_heap()


def shm_dir() -> str | None:
    """``/dev/shm`` if it is a writable folder (RAM-backed: nothing goes to disk), else None."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


SPILL_PREFIX = "aistock-jobs-"


def _new_spill_dir(parent: str | None) -> Path:
    """A fresh ``aistock-jobs-<pid>-*`` folder; first removes those of processes that died
    without cleaning up (SIGKILL, OOM): in ``/dev/shm`` they would hold RAM until reboot."""
    root = Path(parent if parent is not None else tempfile.gettempdir())
    for stale in root.glob(f"{SPILL_PREFIX}*-*"):
        pid = stale.name.removeprefix(SPILL_PREFIX).split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-", dir=parent))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class SpillFolder:
    """A per-batch temp folder holding the large arguments of one loky batch."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.count = 0

    def dump(self, value: Any) -> MappedArg:
        import joblib

        if self.path is None:
            self.path = _new_spill_dir(shm_dir())
        self.count += 1
        target = self.path / f"arg-{self.count}.pkl"
        try:
            joblib.dump(value, target)
        except OSError as exc:
            if self.path.parent == Path(tempfile.gettempdir()):
                raise
            # A small /dev/shm (containers default to 64 MB) fills up: use the temp dir instead.
            log.info("cannot write a job argument to %s (%s); using the temp dir", self.path, exc)
            self.close()
            self.path = _new_spill_dir(None)
            target = self.path / f"arg-{self.count}.pkl"
            joblib.dump(value, target)
        return MappedArg(str(target))

    def close(self) -> None:
        path, self.path = self.path, None
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


