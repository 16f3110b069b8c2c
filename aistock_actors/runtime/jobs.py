"""Where CPU-heavy work runs: a joblib/loky process pool, a dask cluster, or inline.

Training and backtesting are CPU-bound and may hang (a pathological fit, a stuck BLAS call). A
thread cannot be killed, a process can: so the Trainer and the Backtester hand their work to
:class:`JobRunner`, which submits it to a pool of worker processes and waits at most ``timeout``
seconds. On timeout the job is abandoned (see each backend) and :class:`JobTimeoutError` tells
the actor to report a ``timeout`` StepFailed instead of hanging until the supervisor abandons it.

**Cancellation.** A runner watches the events handed to :meth:`JobRunner.cancel_when` (a pool
actor hands it the system's halt flag and the supervisor's ``stopping`` event): the moment one
is set, the batch in flight is abandoned exactly like a timeout (loky workers killed, dask
futures cancelled) and :class:`JobCancelledError` is raised, and no later batch starts. So a
halt stops the training it would otherwise let finish and store, and SIGTERM ends the process
within seconds instead of after the running fit.

The backends live in ``job_loky.py`` and ``job_dask.py``; large arguments and the waiting loop
in ``job_support.py``.

Backends (config ``parallel.backend``):

- ``"loky"`` (default): joblib's reusable loky pool of ``parallel.n_jobs`` worker processes;
  :meth:`JobRunner.map` runs independent jobs (walk-forward folds, the training step's model
  fits) side by side, one per core.
  On timeout, cancellation or a job that raises, the pool's workers are KILLED (SIGKILL,
  :func:`~aistock_actors.runtime.job_loky.abandon_pool`) and the next job gets a fresh pool.
- ``"dask"``: a ``dask.distributed`` cluster. With ``parallel.scheduler_address`` (e.g.
  ``"tcp://scheduler:8786"``) jobs go to that running scheduler's workers, which must have this
  package installed (functions are sent by reference). Without an address a ``LocalCluster`` of
  ``n_jobs`` single-threaded worker processes on 127.0.0.1 (no dashboard) is created on the first
  job, shared by every runner of the process, and closed when the last runner is closed
  (:meth:`JobRunner.close`, called from the actors' ``on_stop``) or at interpreter exit. On
  timeout every future of the batch is cancelled (``Future.cancel()``); a local cluster is also
  torn down (its worker processes are killed, like loky's) and re-created by the next job. Dask
  cannot interrupt a task that is already running on a REMOTE worker: it keeps that worker thread
  busy until it returns, and its result is dropped. Dask is an optional extra
  (``pip install 'aistock-actors[dask]'``), imported only when this backend is used.
- ``"inline"``: every job runs in the calling (actor) thread, one after another. Nothing can be
  killed, so a hang is only ended by the supervisor's step timeout (which abandons and restarts
  the actor). Tests use it to inject faults with monkeypatching, which a separate worker process
  would not see.

**Large arguments are sent once.** A job argument of at least :data:`SHARE_MIN_BYTES` (numpy
arrays, pandas objects, and tuples / lists / dicts of them) is not pickled into each job: with
loky it is written once per batch with ``joblib.dump`` to a temp folder (``/dev/shm`` when
usable) and memory-mapped read-only by the workers (zero-copy, the pages are shared); with dask
it is scattered once to the cluster. The same object passed to several jobs of a batch is sent
once. So the walk-forward folds share one feature panel instead of each carrying its own copy.

Functions handed to a pooled runner must be importable module-level functions (they are pickled
by reference); their other arguments and their results are pickled. Job functions must not write
into array arguments (with loky they are read-only memory maps).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from aistock_actors.errors import (
    ConfigError,
    JobBackendError,
    JobCancelledError,
    JobTimeoutError,
)
from aistock_actors.runtime import faults
from aistock_actors.runtime.clock import SYSTEM_CLOCK
from aistock_actors.runtime.job_dask import DaskPool, acquire_dask_pool, release_dask_pool
from aistock_actors.runtime.job_loky import run_loky
from aistock_actors.runtime.job_support import (
    SHARE_MIN_BYTES,
    delayed_call,
    estimated_nbytes,
    job_name,
    release_memory,
)
from aistock_actors.runtime.memory import install_core_hooks

__all__ = [
    "BACKENDS",
    "SHARE_MIN_BYTES",
    "JobBackendError",
    "JobCancelledError",
    "JobRunner",
    "JobTimeoutError",
    "deadline_mapper",
    "estimated_nbytes",
    "make_mapper",
    "release_memory",
    "require_backend",
]

R = TypeVar("R")
Backend = Literal["loky", "inline", "dask"]
BACKENDS: tuple[Backend, ...] = ("loky", "inline", "dask")

DASK_INSTALL_HINT = "pip install 'aistock-actors[dask]'"


def dask_available() -> bool:
    """Whether ``dask.distributed`` is installed (checked without importing it)."""
    return importlib.util.find_spec("distributed") is not None


def require_backend(backend: str) -> None:
    """Raise :class:`ConfigError` if ``backend`` is unknown or its optional extra is missing."""
    if backend not in BACKENDS:
        expected = ", ".join(repr(b) for b in BACKENDS)
        raise ConfigError(f"unknown parallel backend {backend!r}; expected one of {expected}")
    if backend == "dask" and not dask_available():
        raise ConfigError(
            "parallel.backend is 'dask' but dask.distributed is not installed: "
            f"{DASK_INSTALL_HINT} (or set parallel.backend to 'loky')"
        )


class JobRunner:
    """Runs functions in the configured backend with a deadline (see the module docstring)."""

    def __init__(
        self, backend: Backend = "loky", n_jobs: int = 2, scheduler_address: str | None = None
    ) -> None:
        install_core_hooks()  # inline jobs and the training set built in this process
        if backend not in BACKENDS:
            raise ValueError(
                f"unknown parallel backend {backend!r}; expected 'loky', 'dask' or 'inline'"
            )
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
        self.backend: Backend = backend
        self.n_jobs = n_jobs
        self.scheduler_address = scheduler_address
        self._cancel: list[tuple[str, threading.Event]] = []
        self.owner: str | None = None
        """The actor that owns this runner (names it to the fault seam's ``slow_job``)."""
        # A missing dask extra does not stop the actor that owns this runner from starting (that
        # would be a restart storm): every job fails with the install hint instead. A start-up
        # check can refuse it earlier with a ConfigError: lifecycle.check_parallel().
        self._missing: str | None = None
        self._dask: DaskPool | None = None
        if backend == "dask":
            try:
                require_backend(backend)
            except ConfigError as exc:
                self._missing = str(exc)
            else:
                self._dask = acquire_dask_pool(scheduler_address, n_jobs)

    def cancel_when(self, reason: str, event: threading.Event) -> None:
        """Abandon the batch in flight (and refuse new ones) while ``event`` is set."""
        self._cancel.append((reason, event))

    def cancelled(self) -> str | None:
        """Why jobs are cancelled now (the first set event's reason), or ``None``."""
        return next((reason for reason, event in self._cancel if event.is_set()), None)

    def run(self, fn: Callable[..., R], *args: Any, timeout: float) -> R:
        """Run ``fn(*args)``; :class:`JobTimeoutError` if it takes longer than ``timeout``."""
        return self.map(fn, [args], timeout=timeout)[0]

    def map(
        self, fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]], *, timeout: float
    ) -> list[R]:
        """Run ``fn(*job)`` for every job (in parallel when pooled); results in job order.

        ``timeout`` bounds the whole batch. The first job that raises re-raises here (the other
        jobs are cancelled or left to finish in the pool). Jobs are started in the order given,
        so put the longest first. :class:`JobCancelledError` when cancelled (before or during).
        """
        why = self.cancelled()
        if why is not None:
            raise JobCancelledError(f"{job_name(fn)} not started: {why}")
        plan = faults.active()
        delay = plan.job_delay(self.owner) if plan is not None and self.owner else None
        if delay is not None:  # fault injection: a long fit, sleeping in the worker
            fn, jobs = delayed_call, [(fn, delay, *job) for job in jobs]
        if self.backend == "inline":
            return [fn(*job) for job in jobs]
        if self.backend == "dask":
            if self._missing is not None:
                raise JobBackendError(self._missing)
            if self._dask is None:
                raise JobBackendError("this job runner was closed")
            return self._dask.map(fn, jobs, timeout, self.cancelled)
        return run_loky(fn, jobs, n_jobs=self.n_jobs, timeout=timeout, cancelled=self.cancelled)

    def close(self) -> None:
        """Release the backend (idempotent): the last runner using a local dask cluster closes
        it. The loky pool is process-wide and reused; its idle workers exit by themselves."""
        pool, self._dask = self._dask, None
        if pool is not None:
            release_dask_pool(pool)

    def __enter__(self) -> JobRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_mapper(runner: JobRunner, timeout: float) -> Callable[..., list[Any]]:
    """A mapper bound to ``timeout`` seconds, for the pure pipeline's ``mapper`` argument."""

    def mapper(fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]]) -> list[R]:
        return runner.map(fn, jobs, timeout=timeout)

    return mapper


def deadline_mapper(runner: JobRunner, timeout: float) -> Callable[..., list[Any]]:
    """A mapper whose batches TOGETHER may take ``timeout`` seconds, counted from now.

    For a step that runs several dependent batches (training: the primary's fits, then the
    meta-labeler's): each batch gets what is left of the step's budget, and a batch that would
    start with none left raises :class:`JobTimeoutError` at once.
    """
    deadline = SYSTEM_CLOCK.monotonic() + timeout

    def mapper(fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]]) -> list[R]:
        left = deadline - SYSTEM_CLOCK.monotonic()
        if left <= 0:
            raise JobTimeoutError(f"{job_name(fn)} not started: the {timeout:g}s budget is spent")
        return runner.map(fn, jobs, timeout=left)

    return mapper
